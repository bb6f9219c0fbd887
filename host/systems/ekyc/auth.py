"""The authentication server (eKYC) of seed 000: S14-S15, S20-S24, S28-S29.

    auth = AuthServer("auth.sqlite", key=demo_pki().auth)
    app = create_app(auth)                     # cardemu server ekyc-auth

Routes (JSON; refusals are problems with a `reason`, `host.systems.ekyc.http`):

- `POST /verifications` {eid, document, dak, requester, application}: a
  management server forwards an identity verification (S14). The answer is
  the request for ID photo data (S15): {verification, state "photo_requested",
  photo_request}. One data-acquisition key, one verification: the same
  request again (a retry after a crash) gets the same answer; any other
  request with that key is refused "replayed-key" (409) and nothing changes.
- `POST /verifications/{id}/photo` {requester, photo}: the ID photo data (S20).
  The verifier (S22) decides; on success the server signs the EID and stores
  the certificate under the data-acquisition key with the photo data (S23),
  in the same transaction as the verification's new state, and answers
  "passed" (S24). A refused photo answers "photo" (403) and stores nothing;
  after `MAX_ATTEMPTS` refusals the verification fails for good.
- `GET /certificates/{dak}`: the certificate stored under a key, for the
  relay server (S28-S29); "unknown-key" (404) otherwise.
- `GET /issuer`: the server's X.509 certificate (what carriers check it with).

A certificate is issued at most once per key and only with a passed
verification: the two rows are written in one SQLite transaction.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from host.pki import Credential
from host.servers.web import Store, role_app
from host.systems.ekyc.http import Refused, endpoint
from host.systems.ekyc.proofs import EkycCertificate, certificate_tbs
from host.systems.ekyc.verifier import FaceLivenessVerifier, IdentityVerifier

__all__ = ["AuthServer", "MAX_ATTEMPTS", "create_app", "check_dak", "check_eid"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verifications (
    id TEXT PRIMARY KEY,
    dak TEXT NOT NULL UNIQUE,
    eid TEXT NOT NULL,
    requester TEXT NOT NULL,
    application TEXT NOT NULL,
    document TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    dak TEXT PRIMARY KEY,
    eid TEXT NOT NULL,
    serial TEXT NOT NULL UNIQUE,
    issued INTEGER NOT NULL,
    signature BLOB NOT NULL,
    verification TEXT NOT NULL UNIQUE REFERENCES verifications(id),
    photo TEXT NOT NULL
)
"""

_DAK = re.compile(r"^[0-9A-F]{64}$")
_EID = re.compile(r"^[0-9]{32}$")


def check_dak(value: Any) -> str:
    """A data-acquisition key: 32 bytes as hex (upper case).

    Raises:
        Refused: 400 "bad-request".
    """
    if not isinstance(value, str) or not _DAK.match(value.upper()):
        raise Refused(400, "bad-request", "a data-acquisition key is 64 hex digits")
    return value.upper()


def check_eid(value: Any) -> str:
    """An EID: 32 decimal digits.

    Raises:
        Refused: 400 "bad-request".
    """
    if not isinstance(value, str) or not _EID.match(value):
        raise Refused(400, "bad-request", "an EID is 32 digits")
    return value


def _text(body: dict[str, Any], name: str, limit: int = 128) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise Refused(400, "bad-request", f"{name} is missing or not a short string")
    return value


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise Refused(400, "bad-request", f"{name} is missing or not an object")
    return value


class AuthServer:
    """The eKYC authentication server's logic (no HTTP in it).

    Args:
        store: its SQLite file (or ":memory:", or an open `Store`).
        key: its signing key with the X.509 certificate a CA issued for it.
        verifier: the identity verifier (default: the built-in simulated vendor).
        random: the source of IDs, serials and liveness challenges.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        *,
        key: Credential,
        verifier: IdentityVerifier | None = None,
        random: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store if isinstance(store, Store) else Store(store, _SCHEMA)
        self.key = key
        self.verifier: IdentityVerifier = verifier or FaceLivenessVerifier()
        self._random = random
        self._clock = clock

    def close(self) -> None:
        self.store.close()

    # -- S14-S15 ------------------------------------------------------------------------

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        """An identity-verification request from a management server (S14); the photo request
        (S15)."""
        eid = check_eid(body.get("eid"))
        dak = check_dak(body.get("dak"))
        requester = _text(body, "requester")
        application = _text(body, "application")
        document = _object(body, "document")
        with self.store.transaction() as c:
            row = c.execute(
                "SELECT * FROM verifications WHERE dak = ?" + self.store.for_update, (dak,)
            ).fetchone()
            if row is not None:
                same = (row["eid"], row["requester"], row["application"]) == (
                    eid,
                    requester,
                    application,
                )
                if not same:
                    raise Refused(
                        409,
                        "replayed-key",
                        "this data-acquisition key was used before: nothing is issued twice",
                    )
                return self._answer(row)
            vid = self._random(16).hex().upper()
            request = self.verifier.photo_request(self._random)
            c.execute(
                "INSERT INTO verifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
                (
                    vid,
                    dak,
                    eid,
                    requester,
                    application,
                    json.dumps(document, sort_keys=True),
                    json.dumps(request),
                    "photo_requested",
                    self._clock(),
                ),
            )
            row = c.execute("SELECT * FROM verifications WHERE id = ?", (vid,)).fetchone()
            log.info("verification %s started for %s (%s)", vid, requester, application)
            return self._answer(row)

    @staticmethod
    def _answer(row: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"verification": row["id"], "state": row["state"]}
        if row["state"] == "photo_requested":
            out["photo_request"] = json.loads(row["request"])
        return out

    # -- S20-S24 ------------------------------------------------------------------------

    def photo(self, vid: str, body: dict[str, Any]) -> dict[str, Any]:
        """The ID photo data (S20): verify (S22), sign the EID and store the certificate
        under the data-acquisition key (S23), notify success (S24)."""
        requester = _text(body, "requester")
        photo = _object(body, "photo")
        row = self.store.query_one("SELECT * FROM verifications WHERE id = ?", (vid,))
        if row is None:
            raise Refused(404, "unknown-verification", "no such identity verification")
        if row["requester"] != requester:
            raise Refused(403, "requester", "this verification was asked for by another carrier")
        if row["state"] == "passed":  # a retry: the notification again, nothing issued twice
            return {"verification": vid, "state": "passed"}
        if row["state"] == "failed":
            raise Refused(409, "verification-failed", "this identity verification has failed")
        verdict = self.verifier.verify(
            json.loads(row["document"]), photo, json.loads(row["request"])
        )
        with self.store.transaction() as c:
            now = self._clock()
            current = c.execute(
                "SELECT * FROM verifications WHERE id = ?" + self.store.for_update, (vid,)
            ).fetchone()
            if current["state"] == "passed":
                return {"verification": vid, "state": "passed"}
            if not verdict.ok:
                attempts = current["attempts"] + 1
                state = "failed" if attempts >= MAX_ATTEMPTS else "photo_requested"
                c.execute(
                    "UPDATE verifications SET attempts = ?, state = ?, reason = ?, updated = ?"
                    " WHERE id = ?",
                    (attempts, state, verdict.reason, now, vid),
                )
            else:
                serial = self._random(16)
                issued = int(now)
                signature = self.key.sign(certificate_tbs(row["eid"], serial, issued))
                c.execute(
                    "UPDATE verifications SET state = 'passed', reason = NULL, updated = ?"
                    " WHERE id = ?",
                    (now, vid),
                )
                c.execute(
                    "INSERT INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        row["dak"],
                        row["eid"],
                        serial.hex().upper(),
                        issued,
                        signature,
                        vid,
                        json.dumps(photo),
                    ),
                )
        if not verdict.ok:
            log.info("verification %s: photo refused (%s)", vid, verdict.reason)
            raise Refused(403, "photo", f"identity not verified: {verdict.detail}")
        log.info("verification %s passed: certificate issued", vid)
        return {"verification": vid, "state": "passed"}

    # -- S28-S29 ------------------------------------------------------------------------

    def certificate(self, dak: str) -> dict[str, Any]:
        """The certificate stored under a data-acquisition key (for the relay server)."""
        key = check_dak(dak)
        row = self.store.query_one("SELECT * FROM certificates WHERE dak = ?", (key,))
        if row is None:
            raise Refused(404, "unknown-key", "no certificate under this data-acquisition key")
        cert = EkycCertificate(
            row["eid"], bytes.fromhex(row["serial"]), row["issued"], bytes(row["signature"]),
            self.key.der,
        )  # fmt: skip
        return {"certificate": cert.to_json()}

    def issuer(self) -> dict[str, Any]:
        return {"certificate": self.key.der.hex().upper(), "verifier": self.verifier.name}


def create_app(auth: AuthServer) -> Starlette:
    """The authentication server's routes on the servers' web stack."""
    return role_app(
        "ekyc-auth",
        [
            Route("/verifications", endpoint(auth.start), methods=["POST"]),
            Route(
                "/verifications/{vid}/photo",
                endpoint(auth.photo, params=("vid",)),
                methods=["POST"],
            ),
            Route(
                "/certificates/{dak}",
                endpoint(auth.certificate, body=False, params=("dak",)),
                methods=["GET"],
            ),
            Route("/issuer", endpoint(auth.issuer, body=False), methods=["GET"]),
        ],
    )
