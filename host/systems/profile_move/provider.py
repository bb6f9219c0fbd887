"""Seed 003's profile provider (102): the move as a recorded transaction.

A move request arrives from the MNO (FIG. 5 step 515) or from a profile
manager on behalf of the first terminal (FIG. 6 step 620): `POST /moves`,
idempotent under the request ID. The provider's worker (`tick`) then drives
each unfinished move through the states below, writing each state with what
it learnt (the backup, the rebuilt profile sealed to itself, the new K wrapped
under K4) in one SQLite transaction before acting on it, so a provider killed
at any point resumes from its log; every message it sends carries an ID the
receiver deduplicates on (order IDs, the move ID at the AuC), so sending again
is always safe.

    requested        520 find the source's manager, 525 order the backup
    backup_ordered   (530-545 at the manager and the terminal) -> 550 rebuild:
                     new eSE ID, new K (OPc from the MNO's OP), binding re-signed
    rebuilt          555 find the target's manager and eSE certificate,
                     560 order the install of the profile sealed for that eSE
    install_ordered  installed -> 565 ask the AuC to switch K (570 its answer)
    k_switched       575 order the deletion of the source profile -> done
    rolling_back     207 order the deletion of the target's copy, then the
                     AuC's restoration of the old K -> rolled_back
    aborted          the backup or the install was refused: nothing changed

All or nothing hinges on one step, the AuC's K: before it the old profile
authenticates and the new one cannot (its K is not the AuC's); after it the
reverse. Deleting the loser is hygiene the seed asks for (208, 207), not what
makes it safe. A K update whose fate stays unknown after `MAX_K_ATTEMPTS`
tries is rolled back; the AuC's restore applies only if that move's update
is the one in force.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from starlette.applications import Starlette

from applets.profile_move.wire import (
    ESE_OU,
    PROVIDER_OU,
    TAG_ESE_ID,
    TAG_ICCID,
    TAG_MOVE_ID,
    CertError,
    SealError,
    Variant,
    check_certificate,
    delete_order_data,
    install_signed_data,
    seal,
    unseal,
)
from card import tlv
from card.crypto.milenage import opc_from_op
from card.crypto.rng import CardRng
from card.uicc.profile import Profile, ProfileFormatError
from host.servers.web import Store
from host.systems.profile_move.card import bind
from host.systems.profile_move.common import Refused, json_app, new_id, text
from host.systems.profile_move.pki import MovePki

__all__ = ["ProfileProvider", "create_app", "SCHEMA", "FINAL_STATES", "MAX_K_ATTEMPTS"]

FINAL_STATES = frozenset({"done", "rolled_back", "aborted"})
MAX_K_ATTEMPTS = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (iccid TEXT PRIMARY KEY, imsi TEXT NOT NULL,
    msisdn TEXT NOT NULL, profile_id TEXT NOT NULL, mno TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS moves (move_id TEXT PRIMARY KEY, request_id TEXT UNIQUE NOT NULL,
    trigger TEXT NOT NULL, iccid TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,
    parts INTEGER NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL, result TEXT,
    k_attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, move_id TEXT NOT NULL,
    step INTEGER NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL)
"""


class ProfileProvider:
    """The profile provider (see the module docstring).

    Args:
        store: the SQLite file (its log).
        pki: its key and certificate, the root, K4.
        url: its own address (where managers deliver results).
        resolver_url: the address resolution server.
        auc_url: the MNO's AuC.
        op: the MNO's OP (TS 35.206), from which the new OPc is computed.
        client: makes the HTTP client for a URL (the recorder hooks in here).
        ca_pem: the CA (PEM) the default client checks HTTPS servers against
            (`common.move_ca_pem`); None trusts the system's store.
        on_step: told when a seed step completes (number, detail).
    """

    def __init__(
        self,
        store: str,
        pki: MovePki,
        *,
        url: str = "",
        resolver_url: str = "",
        auc_url: str = "",
        op: bytes = bytes(16),
        variant: Variant = Variant.FULL,
        client: Callable[[str], Any] | None = None,
        ca_pem: bytes | None = None,
        on_step: Callable[[int, str], None] | None = None,
    ) -> None:
        from host.systems.repository.terminal import JsonClient

        self.store = Store(store, SCHEMA)
        self.pki = pki
        self.url, self.resolver_url, self.auc_url = url, resolver_url, auc_url
        self.op = op
        self.variant = variant
        self.client = client or (lambda u: JsonClient(u, ca_pem=ca_pem))
        self.on_step = on_step or (lambda n, d: None)

    # -- records ------------------------------------------------------------------------

    def add_subscription(self, iccid: str, imsi: str, msisdn: str, profile_id: str) -> None:
        """A profile this provider issued (the seed's provider holds its subscriptions)."""
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?) ON CONFLICT (iccid)"
                " DO UPDATE SET imsi = excluded.imsi, msisdn = excluded.msisdn,"
                " profile_id = excluded.profile_id, mno = excluded.mno",
                (iccid, imsi, msisdn, profile_id, self._mno()),
            )

    def _mno(self) -> str:
        cert = check_certificate(self.pki.provider_cert, self.pki.root.public, PROVIDER_OU)
        return cert.organization

    def move(self, move_id: str) -> dict[str, Any]:
        row = self.store.query_one("SELECT * FROM moves WHERE move_id = ?", (move_id,))
        if row is None:
            raise Refused(404, "no such move")
        return {"move_id": move_id, "state": row["state"], "iccid": row["iccid"]}

    def events(self, move_id: str) -> list[tuple[int, str, str]]:
        return [
            (r["step"], r["state"], r["detail"])
            for r in self.store.query(
                "SELECT * FROM events WHERE move_id = ? ORDER BY id", (move_id,)
            )
        ]

    def unfinished(self) -> list[str]:
        marks = ",".join("?" * len(FINAL_STATES))
        rows = self.store.query(
            f"SELECT move_id FROM moves WHERE state NOT IN ({marks}) ORDER BY created",  # noqa: S608
            tuple(FINAL_STATES),
        )
        return [r["move_id"] for r in rows]

    # -- HTTP operations ----------------------------------------------------------------------

    def create_move(self, body: dict[str, Any]) -> dict[str, Any]:
        """Steps 515/620: a move request; the same request ID again is the same move.

        Two copies may arrive at once at two provider processes (a retry, a duplicate).
        On PostgreSQL (READ COMMITTED) the subscription's row is locked first, so the
        second copy waits for the first to commit, and its next read then sees the first's
        move; the INSERT yields to an existing request ID (ON CONFLICT DO NOTHING) and the
        answer is read back, so a copy that still races (another subscription named under
        the same request ID) gets the move that won, never the UNIQUE violation (a 500).
        On SQLite, BEGIN IMMEDIATE serialises the two and the same reads hold.
        """
        request_id = text(body, "request_id")
        by = {k: str(body.get(k) or "") for k in ("iccid", "imsi", "msisdn")}
        parts = body.get("parts", 7)
        if not isinstance(parts, int) or not 0 <= parts <= 7:
            raise Refused(400, "parts: 0..7")
        source = text(body, "source_ese", limit=32).upper()
        target = text(body, "target_ese", limit=32).upper()
        if source == target:
            raise Refused(400, "source and target are the same eSE")
        with self.store.transaction() as c:
            sub = c.execute(
                "SELECT * FROM subscriptions WHERE iccid = ? OR imsi = ? OR msisdn = ?"
                + self.store.for_update,
                (by["iccid"], by["imsi"], by["msisdn"]),
            ).fetchone()
            old = c.execute("SELECT * FROM moves WHERE request_id = ?", (request_id,)).fetchone()
            if old is not None:
                return {"move_id": old["move_id"], "state": old["state"]}
            if sub is None:
                raise Refused(404, "no subscription of this provider matches")
            busy = c.execute(
                "SELECT move_id FROM moves WHERE iccid = ? AND state NOT IN "
                "('done', 'rolled_back', 'aborted')",
                (sub["iccid"],),
            ).fetchone()
            if busy is not None:
                raise Refused(409, "this profile is moving already")
            move_id = new_id()
            data = {"imsi": sub["imsi"], "profile_id": sub["profile_id"]}
            c.execute(
                "INSERT INTO moves (move_id, request_id, trigger, iccid, source, target, parts, "
                "state, data, created) VALUES (?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?)"
                " ON CONFLICT (request_id) DO NOTHING",
                (move_id, request_id, text(body, "trigger", optional=True) or "mno", sub["iccid"],
                 source, target, parts, json.dumps(data), time.time()),
            )  # fmt: skip
            won = c.execute(
                "SELECT move_id, state FROM moves WHERE request_id = ?", (request_id,)
            ).fetchone()
            if won["move_id"] != move_id:  # another copy's move, committed while this waited
                return {"move_id": won["move_id"], "state": won["state"]}
            self._event(c, move_id, 515, "requested", f"via {body.get('trigger', 'mno')}")
        return {"move_id": move_id, "state": "requested"}

    def take_result(self, body: dict[str, Any], move_id: str) -> dict[str, Any]:
        """Steps 545 (and the results of 560, 575, 207): an order's answer, kept in the log."""
        order_id = text(body, "order_id")
        status = text(body, "status")
        doc = {
            "order_id": order_id,
            "status": status,
            "data": str(body.get("data") or ""),
            "sw": str(body.get("sw") or ""),
        }
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM moves WHERE move_id = ?" + self.store.for_update, (move_id,)
            ).fetchone()
            if row is None:
                raise Refused(404, "no such move")
            data = json.loads(row["data"])
            if data.get("order") == order_id and row["result"] is None:
                c.execute(
                    "UPDATE moves SET result = ? WHERE move_id = ?", (json.dumps(doc), move_id)
                )
        return {"taken": True}

    # -- the worker ------------------------------------------------------------------------

    def tick(self) -> bool:
        """Advance every unfinished move as far as it goes now; True if any moved."""
        did = False
        for move_id in self.unfinished():
            while self._advance(move_id):
                did = True
        return did

    def _row(self, move_id: str) -> Any:
        return self.store.query_one("SELECT * FROM moves WHERE move_id = ?", (move_id,))

    @staticmethod
    def _event(c: Any, move_id: str, step: int, state: str, detail: str) -> None:
        c.execute(
            "INSERT INTO events (move_id, step, state, detail, at) VALUES (?, ?, ?, ?, ?)",
            (move_id, step, state, detail, time.time()),
        )

    def _set(
        self,
        move_id: str,
        state: str,
        step: int,
        detail: str,
        *,
        result: bool = True,
        report: bool = True,
        **data: Any,
    ) -> None:
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT data FROM moves WHERE move_id = ?" + self.store.for_update, (move_id,)
            ).fetchone()
            merged = {**json.loads(row["data"]), **data}
            clear = ", result = NULL" if result else ""
            c.execute(
                f"UPDATE moves SET state = ?, data = ?{clear} WHERE move_id = ?",  # noqa: S608
                (state, json.dumps(merged), move_id),
            )
            self._event(c, move_id, step, state, detail)
        if report:
            self.on_step(step, detail)

    def _call(self, url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client(url).request(method, path, body)

    def _order(self, row: Any, manager: str, ese_id: str, kind: str, args: dict[str, str]) -> str:
        order_id = f"{row['move_id']}:{kind}:{ese_id[-8:]}"
        self._call(
            manager,
            "POST",
            "/orders",
            {
                "order_id": order_id,
                "move_id": row["move_id"],
                "kind": kind,
                "ese_id": ese_id,
                "callback": self.url,
                "args": args,
            },
        )
        return order_id

    def _advance(self, move_id: str) -> bool:
        """One state of one move; False when it must wait (an answer, a retry)."""
        from host.systems.repository.terminal import ServerRefused

        row = self._row(move_id)
        if row is None or row["state"] in FINAL_STATES:
            return False
        try:
            return getattr(self, f"_on_{row['state']}")(row, json.loads(row["data"]))
        except (OSError, ServerRefused) as e:
            with self.store.transaction() as c:
                self._event(c, move_id, 0, row["state"], f"will retry: {type(e).__name__}: {e}")
            return False

    def _result(self, row: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to the order in flight, if it came; else send the order again (safe)."""
        if row["result"] is not None:
            result: dict[str, Any] = json.loads(row["result"])
            return result
        resend = data.get("resend")
        if resend:
            self._call(resend["url"], "POST", "/orders", resend["body"])
        return None

    def _order_and_log(
        self,
        row: Any,
        state: str,
        step: int,
        detail: str,
        manager: str,
        ese_id: str,
        kind: str,
        args: dict[str, str],
        **extra: Any,
    ) -> bool:
        """Send an order, then log the state that waits for its answer.

        A crash between the two resends the same order ID from the state before:
        the manager answers it once.
        """
        order_id = self._order(row, manager, ese_id, kind, args)
        body = {
            "order_id": order_id,
            "move_id": row["move_id"],
            "kind": kind,
            "ese_id": ese_id,
            "callback": self.url,
            "args": args,
        }
        # The step is over when the order's answer is in (install, delete), or now (backup).
        self._set(
            row["move_id"],
            state,
            step,
            detail,
            order=order_id,
            report=kind == "backup",
            resend={"url": manager, "body": body},
            **extra,
        )
        return False  # now wait for the answer

    # -- the states --------------------------------------------------------------------------

    def _on_requested(self, row: Any, data: dict[str, Any]) -> bool:
        where = self._call(self.resolver_url, "GET", f"/managers/{row['source']}")
        self.on_step(520, f"the source eSE's manager: {where['url']}")
        args = {
            "iccid": row["iccid"],
            "parts": str(row["parts"]),
            "certificate": self.pki.provider_cert.hex(),
        }
        return self._order_and_log(
            row, "backup_ordered", 525, "backup requested with the provider's certificate",
            where["url"], row["source"], "backup", args, source_manager=where["url"],
        )  # fmt: skip

    def _on_backup_ordered(self, row: Any, data: dict[str, Any]) -> bool:
        result = self._result(row, data)
        if result is None:
            return False
        if result["status"] != "ok":
            self._set(row["move_id"], "aborted", 550, f"backup refused by the eSE ({result['sw']})")
            return False
        header = (
            tlv.build(TAG_MOVE_ID, bytes.fromhex(row["move_id"]))
            + tlv.build(TAG_ESE_ID, bytes.fromhex(row["source"]))
            + tlv.build(TAG_ICCID, row["iccid"].encode())
        )
        try:
            old = Profile.from_bytes(
                unseal(self.pki.provider, bytes.fromhex(result["data"]), header)
            )
        except (SealError, ProfileFormatError, ValueError) as e:
            self._set(row["move_id"], "aborted", 550, f"backup unusable: {e}")
            return False
        if old.iccid != row["iccid"] or old.imsi != data["imsi"]:
            self._set(row["move_id"], "aborted", 550, "the backup is another profile")
            return False
        # Step 550: a new K (and its OPc), the target's eSE ID, the binding re-signed.
        from dataclasses import replace

        k = secrets.token_bytes(16)
        opc = opc_from_op(k, self.op)
        auth = replace(old.auth, k=k, opc=opc, op=None)
        new = bind(
            replace(old, auth=auth),
            key=self.pki.provider,
            certificate=self.pki.provider_cert,
            ese_id=bytes.fromhex(row["target"]),
            profile_id=data["profile_id"],
            variant=self.variant,
        )
        kept = seal(self.pki.provider.public, new.to_bytes(), b"kept", CardRng())
        self._set(
            row["move_id"], "rebuilt", 550,
            "rebuilt for the target: new eSE ID, new K, binding re-signed",
            rebuilt=kept.hex(),
            k=aes_key_wrap(self.pki.k4, k).hex(),
            opc=aes_key_wrap(self.pki.k4, opc).hex(),
            order=None, resend=None,
        )  # fmt: skip
        return True

    def _on_rebuilt(self, row: Any, data: dict[str, Any]) -> bool:
        where = self._call(self.resolver_url, "GET", f"/managers/{row['target']}")
        try:
            cert = check_certificate(
                bytes.fromhex(where["certificate"]), self.pki.root.public, ESE_OU
            )
        except (CertError, ValueError) as e:
            self._set(row["move_id"], "aborted", 555, f"the target eSE's certificate: {e}")
            return False
        if cert.common_name.upper() != row["target"]:
            self._set(row["move_id"], "aborted", 555, "the certificate is another eSE's")
            return False
        self.on_step(555, f"the target eSE's manager: {where['url']}")
        profile = unseal(self.pki.provider, bytes.fromhex(data["rebuilt"]), b"kept")
        move_id = bytes.fromhex(row["move_id"])
        target = bytes.fromhex(row["target"])
        header = tlv.build(TAG_MOVE_ID, move_id) + tlv.build(TAG_ESE_ID, target)
        package = seal(cert.public, profile, header, CardRng())
        signature = self.pki.provider.sign(install_signed_data(move_id, target, package))
        args = {
            "certificate": self.pki.provider_cert.hex(),
            "signature": signature.hex(),
            "package": package.hex(),
        }
        return self._order_and_log(
            row, "install_ordered", 560, "install ordered through the target's manager",
            where["url"], row["target"], "install", args, target_manager=where["url"],
        )  # fmt: skip

    def _on_install_ordered(self, row: Any, data: dict[str, Any]) -> bool:
        result = self._result(row, data)
        if result is None:
            return False
        if result["status"] != "ok":
            self._set(
                row["move_id"],
                "aborted",
                560,
                f"install refused ({result['sw']})",
                order=None,
                resend=None,
            )
            return False
        self._set(
            row["move_id"], "installed", 560, "installed on the target eSE", order=None, resend=None
        )
        return True

    def _on_installed(self, row: Any, data: dict[str, Any]) -> bool:
        from host.systems.repository.terminal import ServerRefused

        body = {"imsi": data["imsi"], "move_id": row["move_id"], "k": data["k"], "opc": data["opc"]}
        try:
            out = self._call(self.auc_url, "POST", "/k-update", body)
        except ServerRefused as e:
            if e.status >= 500:
                raise
            self.on_step(565, "K update asked of the AuC")
            self._set(row["move_id"], "rolling_back", 570, f"the AuC refused the new K: {e.detail}")
            return True
        except OSError:
            with self.store.transaction() as c:
                c.execute(
                    "UPDATE moves SET k_attempts = k_attempts + 1 WHERE move_id = ?",
                    (row["move_id"],),
                )
            if row["k_attempts"] + 1 >= MAX_K_ATTEMPTS:
                self._set(row["move_id"], "rolling_back", 570, "the AuC's answer never came")
                return True
            raise
        self.on_step(565, "K update asked of the AuC")
        if out.get("status") != "switched":
            self._set(row["move_id"], "rolling_back", 570, f"the AuC: {out.get('status')}")
            return True
        self._set(row["move_id"], "k_switched", 570, "the AuC switched to the new K")
        return True

    def _order_delete(
        self, row: Any, state: str, step: int, detail: str, manager: str, ese_id: str
    ) -> bool:
        """Order eSE `ese_id` (through `manager`) to delete the move's profile, signed."""
        move_id = bytes.fromhex(row["move_id"])
        order = delete_order_data(move_id, bytes.fromhex(ese_id), row["iccid"])
        args = {"signature": self.pki.provider.sign(order).hex()}
        return self._order_and_log(row, state, step, detail, manager, ese_id, "delete", args)

    def _on_k_switched(self, row: Any, data: dict[str, Any]) -> bool:
        return self._order_delete(
            row, "delete_ordered", 575, "deletion of the source profile ordered",
            data["source_manager"], row["source"],
        )  # fmt: skip

    def _on_delete_ordered(self, row: Any, data: dict[str, Any]) -> bool:
        result = self._result(row, data)
        if result is None:
            return False
        detail = (
            "the source profile deleted"
            if result["status"] == "ok"
            else (f"the source eSE refused the deletion ({result['sw']}): its K is stale anyway")
        )
        self._set(row["move_id"], "done", 575, detail, order=None, resend=None)
        return False

    def _on_rolling_back(self, row: Any, data: dict[str, Any]) -> bool:
        if "target_manager" not in data:  # pragma: no cover - installed implies it
            self._set(row["move_id"], "rolled_back", 207, "nothing installed")
            return False
        return self._order_delete(
            row, "rollback_ordered", 207, "deletion of the target's copy ordered",
            data["target_manager"], row["target"],
        )  # fmt: skip

    def _on_rollback_ordered(self, row: Any, data: dict[str, Any]) -> bool:
        result = self._result(row, data)
        if result is None:
            return False
        out = self._call(
            self.auc_url, "POST", "/k-restore", {"imsi": data["imsi"], "move_id": row["move_id"]}
        )
        self._set(
            row["move_id"],
            "rolled_back",
            207,
            f"target copy {'deleted' if result['status'] == 'ok' else 'refused'}; "
            f"AuC {out.get('status')}",
            order=None,
            resend=None,
        )
        return False

    def close(self) -> None:
        self.store.close()


def create_app(provider: ProfileProvider) -> Starlette:
    return json_app(
        "move-provider",
        [
            ("POST", "/moves", provider.create_move),
            ("GET", "/moves/{move_id}", lambda body, move_id: provider.move(move_id)),
            ("POST", "/moves/{move_id}/results", provider.take_result),
        ],
    )
