"""A carrier's management server (seed 000, JP 7639532 B2): contracts on top of the SM-DP+.

    mgmt = ManagementServer(CARRIERS["carrier1"], "mgmt1.sqlite", pki=default_pki(),
                            auth_url=..., relay_url=..., address="localhost:8443")
    app = create_app(mgmt)        # the contract routes beside ES9+ (cardemu server ekyc-mgmt)

One SQLite store holds the SM-DP+'s orders and sessions and the carrier's
contract applications. Routes besides ES9+ (JSON; refusals are problems with a
`reason`, `host.systems.ekyc.http`):

- `POST /contracts` {plan, customer}: a contract application (S5, S41). The answer
  asks for the information the contract needs (S6, S42), with a fresh challenge
  the local-authentication result must be made over.
- `POST /contracts/{id}/information`: EID, CERT.EUICC, CERT.EUM, the
  local-authentication result, a data-acquisition key, and either the identity
  document (first contract, S12) or the authentication server's certificate
  (later contract, S48). The server checks the local-authentication result
  (S13, S49: chain, EID, signature, *this* challenge, success). First
  contract: it forwards identity verification to the authentication server
  (S14) and relays its request for ID photo data (S15-S16). Later contract: it
  checks the certificate (S50: signed by an authentication server a trusted CA
  certified, over this EID) and generates the profile at once (S51-S52).
- `POST /contracts/{id}/photo` {photo}: the ID photo data (S19), passed to the
  authentication server (S20); on its success (S24) the profile is generated
  (S25) and registered under the data-acquisition key with an SM-DS event (S26).
- `GET /contracts/{id}`: where an application stands (what a terminal retries from).

Profile generation is the carrier's ES2+ order into its own SM-DP+ (SGP.22
§5.3.2 DownloadOrder + ConfirmOrder, here `SmdpPlus.add_order`), bound to the
EID, with a matching ID and ICCID derived from the application, so a retry
after a crash finds the same order instead of making a second one. The SM-DP+
registers the order's event at the relay, cardemu's SM-DS (ES12.RegisterEvent),
after the order exists, and deletes it once the eUICC reports the installation
(ES9+.HandleNotification → ES12.DeleteEvent, made sure of by `reconcile`), so
an event never points at a missing order and none outlives its download.

A refusal consumes the application (state "refused", its challenge dead) and
issues nothing: no order, no event, no call to the authentication server after
a failed local authentication (S13: "the EID ... are not transmitted").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from starlette.applications import Starlette
from starlette.routing import Route

from host.es9plus import SC_EVENT_ID_IN_USE, SC_EVENT_ID_UNKNOWN, Es9Error
from host.lpa.es9 import Es9TransportError, HttpHook
from host.pki import TestPki
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import OrderState, SmdpPlus
from host.servers.smds import Es12Client
from host.servers.web import SEQ_SCHEMA, Store, is_store_url
from host.systems.ekyc.auth import check_dak, check_eid
from host.systems.ekyc.demo import Carrier
from host.systems.ekyc.http import JsonClient, Refused, endpoint
from host.systems.ekyc.proofs import (
    EkycCertificate,
    ProofError,
    verify_certificate,
    verify_local_auth,
)

__all__ = ["CarrierSmdp", "ManagementServer", "create_app"]

log = logging.getLogger(__name__)

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    customer TEXT NOT NULL,
    challenge BLOB NOT NULL,
    state TEXT NOT NULL,
    kind TEXT,
    eid TEXT,
    dak TEXT UNIQUE,
    info_digest TEXT,
    verification TEXT,
    matching_id TEXT UNIQUE,
    iccid TEXT,
    event_registered INTEGER NOT NULL DEFAULT 0,
    event_deleted INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    updated REAL NOT NULL,
    seq INTEGER
);
"""
    + SEQ_SCHEMA
)

CHALLENGE_SIZE = 16


def _migrate(store: Store) -> None:
    """Give a store made before `seq` the column; on SQLite, its rows' order is their rowid.

    `seq` numbers the applications in the order they came (the listing's order): PostgreSQL
    has no rowid. `Store.next_seq` hands the numbers out, never one twice.
    """
    if "seq" in store.columns("applications"):
        return
    store.apply_schema("ALTER TABLE applications ADD COLUMN seq INTEGER")
    if not is_store_url(store.path):
        with store.transaction() as c:
            c.execute("UPDATE applications SET seq = rowid")


class CarrierSmdp(SmdpPlus):
    """The carrier's SM-DP+: after each ES9+ notification it lets the carrier tidy its
    SM-DS events (an installed profile's event is deleted)."""

    on_notification: Callable[[], None] | None = None

    def handle_notification(self, body: dict[str, Any]) -> None:
        super().handle_notification(body)
        if self.on_notification is not None:
            self.on_notification()


def _digits(number: int, n: int) -> str:
    """The last `n` decimal digits of `number`, zero-padded."""
    return f"{number % 10**n:0{n}d}"


def _bytes_field(body: dict[str, Any], name: str, limit: int = 4096) -> bytes:
    value = body.get(name)
    try:
        if not isinstance(value, str) or len(value) > 2 * limit:
            raise ValueError
        return bytes.fromhex(value)
    except ValueError:
        raise Refused(400, "bad-request", f"{name} is missing or not hex") from None


class ManagementServer:
    """One carrier's management server (no HTTP in it; `create_app` serves it).

    Args:
        carrier: who this is (name, PLMN, ICCID range, subscriber key master).
        store: its SQLite file (the SM-DP+'s tables and the applications).
        pki: the GSMA test PKI: the SM-DP+'s credentials and the CI it trusts for eUICCs.
        trusted_cas: the CAs whose authentication servers it accepts (S50).
        auth_url: the authentication server; relay_url: the relay server (SM-DS).
        auth_ca_pem: the CA the authentication server's HTTPS certificate chains to.
        address: the SM-DP+ address LPAs use (host:port).
        hook: wraps its requests to the other servers (a scenario's recorder, faults).
        random: the source of application IDs and challenges.
    """

    def __init__(
        self,
        carrier: Carrier,
        store: str | os.PathLike[str],
        *,
        pki: TestPki,
        trusted_cas: list[x509.Certificate],
        auth_url: str,
        relay_url: str,
        address: str,
        auth_ca_pem: bytes | None = None,
        hook: HttpHook | None = None,
        random: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.carrier = carrier
        self.store = Store(store, _SCHEMA)
        _migrate(self.store)
        self.relay_address = urlsplit(relay_url).netloc
        ca_pem = pki.ci.pem
        self.smdp = CarrierSmdp(
            pki,
            address=address,
            store=self.store,
            clock=clock,
            smds_client=lambda smds: Es12Client(
                smds, requester=self.smdp.address, ca_pem=ca_pem, hook=hook
            ),
        )
        self.smdp.on_notification = self.reconcile
        self.trusted_cis = [pki.ci.cert]
        self.trusted_cas = list(trusted_cas)
        self.auth = JsonClient(auth_url, ca_pem=auth_ca_pem, hook=hook)
        self.relay = JsonClient(relay_url, ca_pem=ca_pem, hook=hook)
        self._random = random
        self._clock = clock
        #: told as the server reaches a seed step: (S-number, one line); a scenario's recorder
        self.on_step: Callable[[int, str], None] | None = None

    def _reached(self, number: int, detail: str) -> None:
        if self.on_step is not None:
            self.on_step(number, detail)

    @property
    def address(self) -> str:
        return self.smdp.address

    @address.setter
    def address(self, value: str) -> None:
        self.smdp.address = value

    def close(self) -> None:
        self.store.close()

    # -- S5-S6, S41-S42 -------------------------------------------------------------------

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """A contract application; the request for the contract's information, with a challenge."""
        plan = body.get("plan")
        customer = body.get("customer", {})
        if not isinstance(plan, str) or not 0 < len(plan) <= 64 or not isinstance(customer, dict):
            raise Refused(400, "bad-request", "a plan (text) and customer details (object)")
        app_id = self._random(16).hex().upper()
        challenge = self._random(CHALLENGE_SIZE)
        with self.store.transaction() as c:
            c.execute(
                "INSERT INTO applications (id, plan, customer, challenge, state, updated, seq)"
                " VALUES (?, ?, ?, ?, 'applied', ?, ?)",
                (app_id, plan, json.dumps(customer), challenge, self._clock(),
                 self.store.next_seq(c, "applications")),
            )  # fmt: skip
        return {
            "application": app_id,
            "carrier": self.carrier.name,
            "request": {
                "challenge": challenge.hex().upper(),
                "fields": [
                    "eid",
                    "euiccCertificate",
                    "eumCertificate",
                    "localAuth",
                    "dak",
                    "document or certificate",
                ],
            },
        }

    def _application(self, app_id: str) -> Any:
        row = self.store.query_one("SELECT * FROM applications WHERE id = ?", (app_id,))
        if row is None:
            raise Refused(404, "unknown-application", "no such contract application")
        return row

    def _refuse(self, app_id: str, status: int, reason: str, detail: str) -> Refused:
        """Consume the application: its challenge is dead; nothing was issued."""
        with self.store.transaction() as c:
            c.execute(
                "UPDATE applications SET state = 'refused', reason = ?, updated = ?"
                " WHERE id = ? AND state IN ('applied', 'verifying')",
                (reason, self._clock(), app_id),
            )
        log.info("application %s refused: %s", app_id, reason)
        return Refused(status, reason, detail)

    # -- S12-S16, S48-S52 -----------------------------------------------------------------

    def information(self, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The information required for the contract (S12 / S48)."""
        row = self._application(app_id)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if row["state"] != "applied":
            if row["state"] in ("verifying", "ordered") and row["info_digest"] == digest:
                return self._resume(row, body)  # the same information again: a retry
            raise Refused(409, "state", f"the application is {row['state']}")
        first = body.get("certificate") is None
        self._reached(
            12 if first else 48,
            f"{self.carrier.name} received the information for application {app_id[:8]}",
        )
        eid = check_eid(body.get("eid"))
        dak = check_dak(body.get("dak"))
        try:
            result = verify_local_auth(
                _bytes_field(body, "localAuth"),
                bytes(row["challenge"]),
                _bytes_field(body, "euiccCertificate"),
                _bytes_field(body, "eumCertificate"),
                self.trusted_cis,
                eid=eid,
            )
        except ProofError as e:
            raise self._refuse(app_id, 403, "local-auth", str(e)) from None
        document, cert_json = body.get("document"), body.get("certificate")
        if (document is None) == (cert_json is None):
            raise self._refuse(app_id, 400, "bad-request", "send a document or a certificate")
        if self.store.query_one("SELECT id FROM applications WHERE dak = ?", (dak,)) is not None:
            raise self._refuse(
                app_id, 409, "replayed-key", "this data-acquisition key was used before"
            )
        if cert_json is not None:  # a later contract (S50)
            try:
                cert = EkycCertificate.from_json(cert_json)
                verify_certificate(cert, self.trusted_cas, eid=eid)
            except ProofError as e:
                raise self._refuse(app_id, 403, "certificate", str(e)) from None
            kind = "later"
        else:
            if not isinstance(document, dict):
                raise self._refuse(app_id, 400, "bad-request", "the document is an object")
            kind = "first"
        self._claim(app_id, dak, eid)
        with self.store.transaction() as c:
            cur = c.execute(
                "UPDATE applications SET state = 'verifying', kind = ?, eid = ?, dak = ?,"
                " info_digest = ?, updated = ? WHERE id = ? AND state = 'applied'",
                (kind, eid, dak, digest, self._clock(), app_id),
            )
            if cur.rowcount != 1:
                raise Refused(409, "state", "the application changed meanwhile")
        log.info(
            "application %s: local authentication (%s) verified, %s contract",
            app_id,
            result.method_name,
            kind,
        )
        self._reached(
            13 if kind == "first" else 49,
            f"local-auth result ({result.method_name}) verified"
            + ("" if kind == "first" else ", the certificate too")
            + "; the key claimed at the relay",
        )
        if kind == "later":
            return self._issue(self._application(app_id))
        return self._verify_identity(self._application(app_id), document)

    def _claim(self, app_id: str, dak: str, eid: str) -> None:
        """Claim the key at the relay (the SM-DS every carrier registers with) before anything
        is issued under it: a key replayed at another carrier is refused here."""
        try:
            self.relay.post("/keys", {"dak": dak, "eid": eid, "owner": self._owner(app_id)})
        except Refused as e:
            if e.reason == "replayed-key":
                raise self._refuse(app_id, 409, e.reason, e.detail) from None
            raise Refused(502, "relay-unavailable", f"the relay server: {e}") from None
        except OSError as e:
            raise Refused(502, "relay-unavailable", f"the relay server: {e}") from None

    def _owner(self, app_id: str) -> str:
        return f"{self.carrier.name}/{app_id}"

    def _verify_identity(self, row: Any, document: Any) -> dict[str, Any]:
        """S14-S16: forward to the authentication server, relay its photo request."""
        try:
            answer = self.auth.post(
                "/verifications",
                {
                    "eid": row["eid"],
                    "dak": row["dak"],
                    "document": document,
                    "requester": self.carrier.name,
                    "application": row["id"],
                },
            )
        except Refused as e:
            if e.reason == "replayed-key":
                raise self._refuse(row["id"], 409, e.reason, e.detail) from None
            raise Refused(502, "auth-unavailable", f"the authentication server: {e}") from None
        except OSError as e:
            raise Refused(502, "auth-unavailable", f"the authentication server: {e}") from None
        with self.store.transaction() as c:
            c.execute(
                "UPDATE applications SET verification = ?, updated = ? WHERE id = ?",
                (answer["verification"], self._clock(), row["id"]),
            )
        if answer["state"] == "passed":  # verified before a crash: carry on
            return self._issue(self._application(row["id"]))
        self._reached(14, "identity verification forwarded; the authentication server asks "
                      "for ID photo data")  # fmt: skip
        if answer["state"] != "photo_requested":
            raise self._refuse(
                row["id"], 403, "verification-failed", "the identity verification has failed"
            )
        return {
            "application": row["id"],
            "state": "photo_requested",
            "photo_request": answer["photo_request"],
        }

    def _resume(self, row: Any, body: dict[str, Any]) -> dict[str, Any]:
        """The same information again (a retry after a crash or a lost answer): carry on from
        where the application stands. The identity document is not kept here; the retry
        brings it again (its digest is the stored one)."""
        if row["state"] == "ordered" or row["kind"] == "later":
            return self._issue(row)
        # First contract, verifying: the authentication server answers a repeated request
        # (same key, carrier and application) as the first time.
        return self._verify_identity(row, body.get("document"))

    # -- S19-S26 --------------------------------------------------------------------------

    def photo(self, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The ID photo data (S19), to the authentication server (S20); on success (S24) the
        profile (S25-S26)."""
        row = self._application(app_id)
        if row["state"] == "ordered":
            return self._issue(row)
        if row["state"] != "verifying" or row["kind"] != "first" or not row["verification"]:
            raise Refused(409, "state", f"no identity verification under way ({row['state']})")
        photo = body.get("photo")
        if not isinstance(photo, dict):
            raise Refused(400, "bad-request", "photo is an object")
        self._reached(19, f"{self.carrier.name} received the ID photo data")
        try:
            self.auth.post(
                f"/verifications/{row['verification']}/photo",
                {"requester": self.carrier.name, "photo": photo},
            )
        except Refused as e:
            if e.reason in ("photo", "verification-failed"):
                if e.reason == "verification-failed":
                    raise self._refuse(app_id, 403, e.reason, e.detail) from None
                raise Refused(403, e.reason, e.detail) from None
            raise Refused(502, "auth-unavailable", f"the authentication server: {e}") from None
        except OSError as e:
            raise Refused(502, "auth-unavailable", f"the authentication server: {e}") from None
        self._reached(20, "identity verified; the EID signed and stored under the key")
        return self._issue(self._application(app_id))

    # -- S25-S26, S51-S52: the profile, its order and its event ----------------------------

    def _order(self, row: Any) -> ProfileOrder:
        """The ES2+ order of this application's profile (the same one however often asked)."""
        seed = hashlib.sha256(f"{self.carrier.name}/{row['id']}".encode()).digest()
        number = int.from_bytes(seed[:8], "big")
        iccid_body = self.carrier.issuer + _digits(number, 18 - len(self.carrier.issuer))
        imsi = self.carrier.plmn + _digits(number, 15 - len(self.carrier.plmn))
        draft = ProfileOrder(
            f"{self.carrier.name.upper()}-{row['id'][:20]}",
            iccid_body,
            imsi,
            bytes(16),
            add_check_digit=True,
        )
        k, opc = self.carrier.subscriber_keys(draft.full_iccid)
        return ProfileOrder(
            draft.matching_id,
            iccid_body,
            imsi,
            k,
            opc,
            eid=row["eid"],
            spn=self.carrier.name,
            name=f"{self.carrier.name} {row['plan']}",
            add_check_digit=True,
        )

    def _issue(self, row: Any) -> dict[str, Any]:
        """Generate the profile (an ES2+ order, bound to the EID), register it under the
        data-acquisition key, then its SM-DS event. Each part is idempotent."""
        order = self._order(row)
        if self.smdp.order_state(order.matching_id) is None:
            try:
                self.smdp.add_order(order)
            except ValueError:  # made by a concurrent retry
                if self.smdp.order_state(order.matching_id) is None:
                    raise
        with self.store.transaction() as c:
            c.execute(
                "UPDATE applications SET state = 'ordered', matching_id = ?, iccid = ?,"
                " updated = ? WHERE id = ?",
                (order.matching_id, order.full_iccid, self._clock(), row["id"]),
            )
        self._reached(
            25 if row["kind"] == "first" else 51,
            f"profile {order.full_iccid} generated: ordered from the SM-DP+ for the EID",
        )
        if not row["event_registered"]:
            self._register_event(row["id"], order.matching_id, row["eid"], row["dak"])
        return {
            "application": row["id"],
            "state": "ordered",
            "kind": row["kind"],
            "matchingId": order.matching_id,
            "smdpAddress": self.smdp.address,
            "iccid": order.full_iccid,
        }

    def _register_event(self, app_id: str, event_id: str, eid: str, dak: str) -> None:
        """The order's SM-DS event (ES12.RegisterEvent by the SM-DP+), then the key's claim at
        the relay names it. An event the SM-DS already has (a retry after a lost answer)
        counts as registered."""
        try:
            self.smdp.register_event(event_id, self.relay_address)
        except Es9Error as e:
            if e.code != SC_EVENT_ID_IN_USE:
                raise Refused(502, "relay-unavailable", f"the relay server: {e}") from None
            with self.store.transaction() as c:  # what register_event records on success
                c.execute(
                    "UPDATE orders SET smds_address = ?, event_id = ? WHERE matching_id = ?",
                    (self.relay_address, event_id, event_id),
                )
        try:
            self.relay.post(
                "/keys",
                {"dak": dak, "eid": eid, "owner": self._owner(app_id), "eventId": event_id},
            )
        except (Refused, OSError) as e:
            raise Refused(502, "relay-unavailable", f"the relay server: {e}") from None
        with self.store.transaction() as c:
            c.execute(
                "UPDATE applications SET event_registered = 1, updated = ? WHERE id = ?",
                (self._clock(), app_id),
            )

    def reconcile(self) -> None:
        """Bring the SM-DS in line with the orders: register missing events, delete the
        events of installed profiles (ES12.DeleteEvent; the SM-DP+ tries once on the
        installation result, this makes sure). Best effort; run again later."""
        for row in self.store.query(
            "SELECT * FROM applications WHERE state = 'ordered' AND event_deleted = 0"
        ):
            try:
                if not row["event_registered"]:
                    self._register_event(row["id"], row["matching_id"], row["eid"], row["dak"])
                if self.smdp.order_state(row["matching_id"]) == OrderState.INSTALLED:
                    try:
                        self.smdp.es12(self.relay_address).delete_event(
                            row["eid"], row["matching_id"]
                        )
                    except Es9Error as e:
                        if e.code != SC_EVENT_ID_UNKNOWN:  # gone already: what we want
                            raise
                    with self.store.transaction() as c:
                        c.execute(
                            "UPDATE applications SET event_deleted = 1, updated = ? WHERE id = ?",
                            (self._clock(), row["id"]),
                        )
            except (Refused, Es9Error, Es9TransportError, OSError) as e:
                log.warning("SM-DS event of %s not reconciled yet: %s", row["id"], e)

    def status(self, app_id: str) -> dict[str, Any]:
        row = self._application(app_id)
        out = {"application": app_id, "state": row["state"], "kind": row["kind"]}
        if row["matching_id"]:
            out.update(matchingId=row["matching_id"], smdpAddress=self.smdp.address)
        if row["reason"]:
            out["reason"] = row["reason"]
        return out

    def applications(self) -> list[dict[str, Any]]:
        """Every application (for checks and reports), without challenges."""
        keys = ("id", "state", "kind", "eid", "dak", "matching_id", "iccid")
        flags = ("event_registered", "event_deleted")
        return [
            {k: r[k] for k in keys} | {f: bool(r[f]) for f in flags}
            for r in self.store.query("SELECT * FROM applications ORDER BY seq, id")
        ]


def create_app(mgmt: ManagementServer) -> Starlette:
    """The contract routes beside the SM-DP+'s ES9+ routes, in one app."""
    from host.servers.smdpp.app import create_app as es9_app

    app = es9_app(mgmt.smdp)
    app.state.role = "ekyc-mgmt"
    for route in (
        Route("/contracts", endpoint(mgmt.apply), methods=["POST"]),
        Route(
            "/contracts/{app_id}/information",
            endpoint(mgmt.information, params=("app_id",)),
            methods=["POST"],
        ),
        Route(
            "/contracts/{app_id}/photo",
            endpoint(mgmt.photo, params=("app_id",)),
            methods=["POST"],
        ),
        Route(
            "/contracts/{app_id}",
            endpoint(mgmt.status, body=False, params=("app_id",)),
            methods=["GET"],
        ),
    ):
        app.router.routes.append(route)
    return app
