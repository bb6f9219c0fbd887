"""Seed 003's MNO front end (502): a user's move request, user authentication, the forward.

FIG. 5: step 505 the user's request (source and target eSE, the profile by
ICCID, IMSI or MSISDN, the parts to move); step 510 user authentication, "to
block requests from a user who is not the right one": a challenge answered
with HMAC-SHA-256 under the user's password-derived key (PBKDF2-HMAC-SHA-256,
the MNO keeps salt and derived key, never the password), and the profile must
be one of the user's subscriptions; step 515 the request forwarded to the
profile provider by the front end's worker (`tick`), with the request ID as
the provider's idempotency key, so a forward that is lost or repeated moves
the profile once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

from host.servers.web import Store
from host.systems.profile_move.common import Refused, hexbytes, json_app, new_id, text

__all__ = ["MnoFrontEnd", "create_app", "derive_key", "SCHEMA", "PBKDF2_ITERATIONS"]

PBKDF2_ITERATIONS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS users ("user" TEXT PRIMARY KEY, salt BLOB NOT NULL, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS subscriptions (iccid TEXT PRIMARY KEY, "user" TEXT NOT NULL,
    imsi TEXT NOT NULL, msisdn TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, "user" TEXT NOT NULL,
    challenge BLOB NOT NULL, iccid TEXT NOT NULL, imsi TEXT NOT NULL, source TEXT NOT NULL,
    target TEXT NOT NULL, parts INTEGER NOT NULL, authenticated INTEGER NOT NULL DEFAULT 0,
    move_id TEXT)
"""


def derive_key(password: str, salt: bytes) -> bytes:
    """The user's key: PBKDF2-HMAC-SHA-256 (NIST SP 800-132)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)


class MnoFrontEnd:
    """The MNO's front end (see the module docstring).

    Args:
        store: the SQLite file.
        provider_url: the profile provider's address.
        client: makes the HTTP client for a URL (the scenario's recorder hooks in here).
        ca_pem: the CA (PEM) the default client checks HTTPS servers against
            (`common.move_ca_pem`); None trusts the system's store.
        on_step: told when a seed step completes (number, detail).
    """

    def __init__(
        self,
        store: str,
        provider_url: str = "",
        *,
        client: Callable[[str], Any] | None = None,
        ca_pem: bytes | None = None,
        on_step: Callable[[int, str], None] | None = None,
    ) -> None:
        from host.systems.repository.terminal import JsonClient

        self.store = Store(store, SCHEMA)
        self.provider_url = provider_url
        self.client = client or (lambda url: JsonClient(url, ca_pem=ca_pem))
        self.on_step = on_step or (lambda n, d: None)

    def add_user(self, user: str, password: str) -> None:
        salt = secrets.token_bytes(16)
        with self.store.transaction() as c:
            c.execute(
                'INSERT INTO users VALUES (?, ?, ?) ON CONFLICT ("user")'
                " DO UPDATE SET salt = excluded.salt, key = excluded.key",
                (user, salt, derive_key(password, salt)),
            )

    def add_subscription(self, user: str, iccid: str, imsi: str, msisdn: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?) ON CONFLICT (iccid)"
                ' DO UPDATE SET "user" = excluded."user", imsi = excluded.imsi,'
                " msisdn = excluded.msisdn",
                (iccid, user, imsi, msisdn),
            )

    def request_move(self, body: dict[str, Any]) -> dict[str, Any]:
        """Step 505: the request; answers the challenge of step 510."""
        user = text(body, "user", limit=64)
        by = {k: str(body.get(k) or "") for k in ("iccid", "imsi", "msisdn")}
        parts = body.get("parts", 7)
        if not isinstance(parts, int) or not 0 <= parts <= 7:
            raise Refused(400, "parts: 0..7")
        sub = self.store.query_one(
            "SELECT * FROM subscriptions WHERE iccid = ? OR imsi = ? OR msisdn = ?",
            (by["iccid"], by["imsi"], by["msisdn"]),
        )
        row = self.store.query_one('SELECT salt FROM users WHERE "user" = ?', (user,))
        # An unknown user gets a challenge all the same: the answer cannot succeed.
        salt = (
            bytes(row["salt"]) if row is not None else hashlib.sha256(user.encode()).digest()[:16]
        )
        request_id, challenge = new_id(), secrets.token_bytes(16)
        with self.store.transaction() as c:
            c.execute(
                'INSERT INTO requests (request_id, "user", challenge, iccid, imsi, source, target,'
                " parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    user,
                    challenge,
                    sub["iccid"] if sub is not None else "",
                    sub["imsi"] if sub is not None else "",
                    text(body, "source_ese", limit=32),
                    text(body, "target_ese", limit=32),
                    parts,
                ),
            )
        return {"request_id": request_id, "salt": salt.hex(), "challenge": challenge.hex()}

    def authenticate(self, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        """Step 510: the user's proof; the request then waits for the forward (515)."""
        proof = hexbytes(body, "proof")
        with self.store.transaction() as c:
            req = c.execute(
                "SELECT * FROM requests WHERE request_id = ?" + self.store.for_update, (request_id,)
            ).fetchone()
            if req is None:
                raise Refused(404, "no such request")
            if req["authenticated"]:
                return {"authenticated": True}  # the same proof again: no change
            user = c.execute('SELECT * FROM users WHERE "user" = ?', (req["user"],)).fetchone()
            expected = (
                hmac.new(bytes(user["key"]), bytes(req["challenge"]), "sha256").digest()
                if user is not None
                else b""
            )
            if user is None or not hmac.compare_digest(expected, proof):
                raise Refused(403, "user authentication failed")
            owner = c.execute(
                'SELECT "user" FROM subscriptions WHERE iccid = ?', (req["iccid"],)
            ).fetchone()
            if owner is None or owner["user"] != req["user"]:
                raise Refused(403, "the profile is not this user's")
            c.execute("UPDATE requests SET authenticated = 1 WHERE request_id = ?", (request_id,))
        return {"authenticated": True}

    def tick(self) -> bool:
        """The worker: forward authenticated requests to the provider (step 515)."""
        from host.systems.repository.terminal import ServerRefused

        rows = self.store.query(
            "SELECT * FROM requests WHERE authenticated = 1 AND move_id IS NULL"
        )
        did = False
        for req in rows:
            try:
                out = self.client(self.provider_url).request(
                    "POST",
                    "/moves",
                    {
                        "request_id": req["request_id"],
                        "trigger": "mno",
                        "iccid": req["iccid"],
                        "source_ese": req["source"],
                        "target_ese": req["target"],
                        "parts": req["parts"],
                    },
                )
            except (OSError, ServerRefused):
                continue  # the next tick tries again: the request ID makes it safe
            with self.store.transaction() as c:
                c.execute(
                    "UPDATE requests SET move_id = ? WHERE request_id = ?",
                    (out["move_id"], req["request_id"]),
                )
            self.on_step(515, f"forwarded: move {out['move_id'][:8]}")
            did = True
        return did

    def close(self) -> None:
        self.store.close()


def create_app(mno: MnoFrontEnd) -> Starlette:
    return json_app(
        "move-mno",
        [
            ("POST", "/move-requests", mno.request_move),
            ("POST", "/move-requests/{request_id}/authenticate", mno.authenticate),
        ],
    )
