"""Seed 003's AuC: K per IMSI, authentication vectors, the switch to a new K and its undo.

- `POST /vectors {imsi}`: a 3G authentication vector (TS 33.102 §6.3.2) with
  Milenage (TS 35.206): RAND, AUTN = SQN xor AK || AMF || MAC; the AuC keeps
  XRES under a session ID. `POST /attach {session, res}` compares RES with
  XRES (the serving network's check, §6.3.3), once. A profile whose K is not
  the AuC's fails here for real: its USIM finds the MAC wrong (9862).
- `POST /k-update {imsi, move_id, k, opc}` (steps 206/565): K and OPc arrive
  wrapped under the transport key K4 (RFC 3394), as operators carry Ki; the
  old pair is kept with the move ID. Idempotent: the same move again answers
  "switched" without touching the kept pair, also when two copies arrive at once
  at two AuC processes (the subscriber's row is locked before the move is looked
  up). A subscription locked for changes refuses (409): the seed's "AuC update fails".
- `POST /k-restore {imsi, move_id}` (step 207): the kept pair back, only if that
  move's update is the one in force; otherwise nothing (idempotent).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap
from starlette.applications import Starlette

from card.crypto.milenage import Milenage
from host.servers.web import Store
from host.systems.profile_move.common import Refused, hexbytes, json_app, text

__all__ = ["Auc", "create_app", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscribers (imsi TEXT PRIMARY KEY, k BLOB NOT NULL,
    opc BLOB NOT NULL, seq INTEGER NOT NULL, prev_k BLOB, prev_opc BLOB, move_id TEXT,
    locked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sessions (session TEXT PRIMARY KEY, imsi TEXT NOT NULL,
    xres BLOB NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS updates (move_id TEXT PRIMARY KEY, imsi TEXT NOT NULL,
    action TEXT NOT NULL)
"""

AMF = bytes.fromhex("8000")
IND_BITS = 5


class Auc:
    """The authentication centre (see the module docstring).

    Args:
        store: the SQLite file.
        k4: the transport key shared with the provider.
    """

    def __init__(self, store: str, k4: bytes) -> None:
        self.store = Store(store, SCHEMA)
        self._k4 = k4

    def provision(self, imsi: str, k: bytes, opc: bytes) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO subscribers (imsi, k, opc, seq) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (imsi) DO UPDATE SET k = excluded.k, opc = excluded.opc, seq = 1,"
                " prev_k = NULL, prev_opc = NULL, move_id = NULL, locked = 0",
                (imsi, k, opc),
            )

    def lock(self, imsi: str, locked: bool = True) -> None:
        """Lock a subscription against K changes (the seed's failed AuC update)."""
        with self.store.transaction() as c:
            c.execute("UPDATE subscribers SET locked = ? WHERE imsi = ?", (int(locked), imsi))

    def current_k(self, imsi: str) -> bytes | None:
        row = self.store.query_one("SELECT k FROM subscribers WHERE imsi = ?", (imsi,))
        return None if row is None else bytes(row["k"])

    def vectors(self, body: dict[str, Any]) -> dict[str, Any]:
        imsi = text(body, "imsi", limit=15)
        rand = secrets.token_bytes(16)
        session = secrets.token_hex(16)
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM subscribers WHERE imsi = ?" + self.store.for_update, (imsi,)
            ).fetchone()
            if row is None:
                raise Refused(404, "unknown IMSI")
            seq = row["seq"] + 1
            sqn = (seq << IND_BITS).to_bytes(6, "big")  # TS 33.102 C.3.2, IND 0
            m = Milenage(bytes(row["k"]), bytes(row["opc"]))
            mac = m.f1(rand, sqn, AMF)
            xres, _ck, _ik, ak = m.f2345(rand)
            autn = bytes(a ^ b for a, b in zip(sqn, ak, strict=True)) + AMF + mac
            c.execute("UPDATE subscribers SET seq = ? WHERE imsi = ?", (seq, imsi))
            c.execute(
                "INSERT INTO sessions (session, imsi, xres) VALUES (?, ?, ?)", (session, imsi, xres)
            )
        return {"session": session, "rand": rand.hex(), "autn": autn.hex()}

    def attach(self, body: dict[str, Any]) -> dict[str, Any]:
        session = text(body, "session")
        res = hexbytes(body, "res")
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM sessions WHERE session = ?" + self.store.for_update, (session,)
            ).fetchone()
            if row is None or row["used"]:
                raise Refused(404, "no such authentication session")
            c.execute("UPDATE sessions SET used = 1 WHERE session = ?", (session,))
        return {"attached": hmac.compare_digest(bytes(row["xres"]), res)}

    def _unwrap(self, body: dict[str, Any], name: str) -> bytes:
        try:
            return aes_key_unwrap(self._k4, hexbytes(body, name))
        except (InvalidUnwrap, ValueError):
            raise Refused(400, f"{name}: does not unwrap under K4") from None

    def k_update(self, body: dict[str, Any]) -> dict[str, Any]:
        imsi, move_id = text(body, "imsi", limit=15), text(body, "move_id")
        k, opc = self._unwrap(body, "k"), self._unwrap(body, "opc")
        with self.store.transaction() as c:
            # The subscriber's row first: a second copy of this update (or its restore) in
            # another process waits here for the first to commit, then reads its outcome
            # below, rather than switching again and hitting `updates`' key (a 500).
            row = c.execute(
                "SELECT * FROM subscribers WHERE imsi = ?" + self.store.for_update, (imsi,)
            ).fetchone()
            done = c.execute("SELECT action FROM updates WHERE move_id = ?", (move_id,)).fetchone()
            if done is not None:
                return {"status": "switched" if done["action"] == "update" else done["action"]}
            if row is None:
                raise Refused(404, "unknown IMSI")
            if row["locked"]:
                raise Refused(409, "the subscription is locked against K changes")
            c.execute(
                "UPDATE subscribers SET prev_k = k, prev_opc = opc, k = ?, opc = ?, move_id = ? "
                "WHERE imsi = ?",
                (k, opc, move_id, imsi),
            )
            c.execute("INSERT INTO updates VALUES (?, ?, 'update')", (move_id, imsi))
        return {"status": "switched"}

    def k_restore(self, body: dict[str, Any]) -> dict[str, Any]:
        imsi, move_id = text(body, "imsi", limit=15), text(body, "move_id")
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM subscribers WHERE imsi = ?" + self.store.for_update, (imsi,)
            ).fetchone()
            if row is None:
                raise Refused(404, "unknown IMSI")
            if row["move_id"] != move_id:
                # Never switched by this move (refused, or never arrived): bar it for good.
                c.execute(
                    "INSERT INTO updates VALUES (?, ?, 'restored') ON CONFLICT DO NOTHING",
                    (move_id, imsi),
                )
                return {"status": "unchanged"}
            c.execute(
                "UPDATE subscribers SET k = prev_k, opc = prev_opc, prev_k = NULL, "
                "prev_opc = NULL, move_id = NULL WHERE imsi = ?",
                (imsi,),
            )
            c.execute("UPDATE updates SET action = 'restored' WHERE move_id = ?", (move_id,))
        return {"status": "restored"}

    def close(self) -> None:
        self.store.close()


def create_app(auc: Auc) -> Starlette:
    return json_app(
        "move-auc",
        [
            ("POST", "/vectors", auc.vectors),
            ("POST", "/attach", auc.attach),
            ("POST", "/k-update", auc.k_update),
            ("POST", "/k-restore", auc.k_restore),
        ],
    )
