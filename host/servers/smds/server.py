"""The SM-DS: ES11 to the LPA, ES12 from SM-DP+ servers (GSMA SGP.22 v2.x §3.6, §5.8, §5.9).

    smds = SmDs(default_pki(), address="localhost:8444")
    smds.register(eid, "EVT-1", "localhost:8443")     # what ES12.RegisterEvent does
    with smds.serve(port=8444):                        # HTTPS with CERT.DStls, loopback
        ...                                            # an LPA runs ES11 and finds EVT-1

- ES12.RegisterEvent (§5.8.1): an event record (EID, EventID, RSP server
  address). With the forwarding indicator, an alternative SM-DS first
  registers the same EventID at its root SM-DS with its own address (§3.6.1),
  so an LPA that only knows the root is sent on to it.
- ES12.DeleteEvent (§5.8.2): the record goes, and, for a forwarded one, the
  root's too.
- ES11.InitiateAuthentication (§5.9.1): as ES9+'s, signed with CERT.DSauth.
- ES11.AuthenticateClient (§5.9.2): the eUICC's chain and signature (with
  the CRLs held), then the events for its EID: all of them when ctxParams1
  has no matching ID, else the one whose EventID it names.

Event retrieval needs the eUICC's signature: an LPA learns only the events of
an eUICC it can make sign.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cryptography import x509

from host.es9plus import (
    SC_BAD_REQUEST,
    SC_CI_KEY_UNKNOWN,
    SC_EID_INVALID,
    SC_EVENT_ID_IN_USE,
    SC_EVENT_ID_UNKNOWN,
    SC_SMDS_ADDRESS_REFUSED,
    SC_SMDS_CERT_UNAVAILABLE,
    SC_SMDS_ERROR,
    SC_SMDS_INACCESSIBLE,
    SC_SMDS_SECURITY_CONFIG_UNSUPPORTED,
    SC_SMDS_SVN_UNSUPPORTED,
    SC_TRANSACTION_UNKNOWN,
    Es9Error,
    unb64,
)
from host.lpa.es9 import Es9TransportError, split_address
from host.pki import Credential, SmdsCredentials, TestPki, eid_is_valid
from host.servers import rsp_common
from host.servers.rsp_common import (
    AuthenticatedEuicc,
    RspRole,
    check_client,
    field,
    transaction_id,
)
from host.servers.smds.client import Es12Client
from host.servers.smds.store import EventRecord, EventStore
from host.servers.web import RoleServer, Store, TlsFiles

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["SmDs", "SessionState"]

log = logging.getLogger(__name__)

_ES11_ROLE = RspRole(
    "smdsAddress",
    SC_SMDS_ADDRESS_REFUSED,
    "SM-DS",
    "CERT.DSauth",
    svn_unsupported=SC_SMDS_SVN_UNSUPPORTED,
    security_config_unsupported=SC_SMDS_SECURITY_CONFIG_UNSUPPORTED,
    cert_unavailable=SC_SMDS_CERT_UNAVAILABLE,
)

_MAX_EVENT_ID = 255  # an EventID travels as a matching ID (UTF8String) in ctxParams1


class SessionState:
    """ES11 session states at the SM-DS."""

    INITIATED = "initiated"
    DONE = "done"
    FAILED = "failed"


class SmDs:
    """An SM-DS (root or alternative): event records, ES11 and ES12, state in SQLite.

    Args:
        credentials: CERT.DSauth sets (one per CI), or a `TestPki` (its
            `issue_smds` for the address's host).
        address: the SM-DS address LPAs and SM-DP+ servers use (`host[:port]`).
        store: an `EventStore`, a database file, ":memory:" or an open `Store`.
        root: the root SM-DS to forward registrations to (an alternative SM-DS);
            None for a root SM-DS.
        trusted_cis: CIs whose eUICCs it serves (default: the credentials' CIs).
        tls: CERT.DStls with its key, for `serve` (a `TestPki` brings its own).
        crls: CRLs of the CI and the EUMs, checked on every eUICC chain.
        random: the source of transaction IDs and server challenges.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        credentials: Sequence[SmdsCredentials] | SmdsCredentials | TestPki,
        *,
        address: str,
        store: EventStore | Store | str | os.PathLike[str] = ":memory:",
        root: Es12Client | None = None,
        trusted_cis: Sequence[x509.Certificate] | None = None,
        tls: Credential | None = None,
        crls: Sequence[x509.CertificateRevocationList] = (),
        random: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(credentials, TestPki):
            credentials = credentials.issue_smds(split_address(address)[0])
        if isinstance(credentials, SmdsCredentials):
            credentials = [credentials]
        if not credentials:
            raise ValueError("an SM-DS needs at least one CERT.DSauth")
        self.credentials = list(credentials)
        self.address = address
        self.root = root
        self.trusted_cis = (
            list(trusted_cis) if trusted_cis is not None else [c.ci for c in self.credentials]
        )
        self.tls = tls if tls is not None else self.credentials[0].dstls
        self.crls: list[x509.CertificateRevocationList] = list(crls)
        self.events = store if isinstance(store, EventStore) else EventStore(store, clock=clock)
        self._random = random
        self._clock = clock

    @property
    def store(self) -> Store:
        """The SQLite store (events, sessions, and whatever an extension added)."""
        return self.events.store

    # -- event records: the Python API behind ES12 --------------------------------------

    def register(
        self, eid: str, event_id: str, address: str, *, forward: bool = False
    ) -> EventRecord:
        """Register an event (ES12.RegisterEvent, §5.8.1).

        Args:
            eid: the eUICC.
            event_id: the EventID (unique for this EID).
            address: the SM-DP+ (or alternative SM-DS) holding the event.
            forward: also register it at the root SM-DS, pointing there to this one.

        Raises:
            Es9Error: a malformed EID or EventID, an EventID in use, or the root
                SM-DS refused (SC_SMDS_ERROR) or could not be reached
                (SC_SMDS_INACCESSIBLE); nothing is recorded then.
        """
        if not eid_is_valid(eid):
            raise Es9Error.of(SC_EID_INVALID, "the EID is not 32 digits with valid check digits")
        if not event_id or len(event_id) > _MAX_EVENT_ID:
            raise Es9Error.of(SC_BAD_REQUEST, f"an EventID has 1-{_MAX_EVENT_ID} characters")
        if not address:
            raise Es9Error.of(SC_BAD_REQUEST, "rspServerAddress is empty")
        if self.events.get(eid, event_id) is not None:
            raise Es9Error.of(SC_EVENT_ID_IN_USE, f"EID {eid} already has event {event_id!r}")
        forwarded_to = None
        if forward and self.root is not None:
            # The root learns the event first: an LPA asking the root is sent here.
            try:
                self.root.register_event(eid, event_id, self.address)
            except Es9TransportError as e:
                raise Es9Error.of(SC_SMDS_INACCESSIBLE, f"the root SM-DS: {e}") from None
            except Es9Error as e:
                # The cascade registration failed at the root (its own code in the message).
                raise Es9Error.of(SC_SMDS_ERROR, f"the root SM-DS refused: {e}") from None
            forwarded_to = self.root.address
        try:
            return self.events.register(eid, event_id, address, forwarded_to=forwarded_to)
        except KeyError:
            # Registered meanwhile by another request: take back the root's copy.
            if forwarded_to is not None:
                self._delete_at_root(eid, event_id)
            raise Es9Error.of(
                SC_EVENT_ID_IN_USE, f"EID {eid} already has event {event_id!r}"
            ) from None

    def delete(self, eid: str, event_id: str) -> EventRecord:
        """Delete an event (ES12.DeleteEvent, §5.8.2), at the root too if it was forwarded.

        Raises:
            Es9Error: no such event.
        """
        try:
            record = self.events.delete(eid, event_id)
        except KeyError as e:
            raise Es9Error.of(SC_EVENT_ID_UNKNOWN, str(e.args[0])) from None
        if record.forwarded_to is not None:
            self._delete_at_root(eid, event_id)
        return record

    def _delete_at_root(self, eid: str, event_id: str) -> None:
        if self.root is None:
            return
        try:
            self.root.delete_event(eid, event_id)
        except (Es9Error, Es9TransportError) as e:
            # The root keeps a record that leads to no event here: an LPA following it
            # finds nothing (eventIdUnknown), which is what an absent event means anyway.
            log.warning("event %s of %s not deleted at the root SM-DS: %s", event_id, eid, e)

    # -- ES12 functions (JSON in and out, without the header) ---------------------------

    def register_event(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES12.RegisterEvent (§5.8.1)."""
        forward = body.get("forwardingIndicator", False)
        if not isinstance(forward, bool):
            raise Es9Error.of(SC_BAD_REQUEST, "forwardingIndicator is not a boolean")
        self.register(
            _text(body, "eid"),
            _text(body, "eventId"),
            _text(body, "rspServerAddress"),
            forward=forward,
        )
        return {}

    def delete_event(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES12.DeleteEvent (§5.8.2)."""
        self.delete(_text(body, "eid"), _text(body, "eventId"))
        return {}

    # -- ES11 functions -----------------------------------------------------------------

    def initiate_authentication(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES11.InitiateAuthentication (§5.9.1): signed with CERT.DSauth."""
        return rsp_common.initiate_authentication(
            body,
            role=_ES11_ROLE,
            address=self.address,
            credentials=self.credentials,
            auth=lambda c: c.dsauth,
            random=self._random,
            store=self.store,
            now=self._clock(),
        )

    def authenticate_client(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES11.AuthenticateClient (§5.9.2): the eUICC's events."""
        tid = transaction_id(body)
        raw = unb64(field(body, "authenticateServerResponse"), "authenticateServerResponse")
        session = self.store.query_one("SELECT * FROM sessions WHERE transaction_id = ?", (tid,))
        if session is None or session["state"] != SessionState.INITIATED:
            raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "no ES11 session in that state")
        try:
            creds = next(c for c in self.credentials if c.ci_ski == bytes(session["ci_ski"]))
            client = check_client(
                raw, tid, bytes(session["server_challenge"]), creds.ci, crls=self.crls
            )
            if client.matching_id:
                one = self.events.get(client.eid, client.matching_id)
                if one is None:
                    raise Es9Error.of(
                        SC_EVENT_ID_UNKNOWN, f"no event {client.matching_id!r} for this eUICC"
                    )
                events = [one]
            else:
                events = self.events.for_eid(client.eid)
        except StopIteration:
            self._end(tid, SessionState.FAILED, "CI gone", None)
            raise Es9Error.of(
                SC_CI_KEY_UNKNOWN, "the session's CI is no longer configured"
            ) from None
        except Es9Error as e:
            self._end(tid, SessionState.FAILED, f"{e.subject_code}/{e.reason_code}", None)
            raise
        self._end(tid, SessionState.DONE, f"{len(events)} event(s)", client.eid)
        return {"transactionId": tid, "eventEntries": self.event_entries(client, events)}

    def event_entries(
        self, client: AuthenticatedEuicc, events: list[EventRecord]
    ) -> list[dict[str, Any]]:
        """The eventEntries of ES11.AuthenticateClient for an authenticated eUICC.

        A role built on the SM-DS overrides this to add what it relays beside each
        event (its own fields next to eventId and rspServerAddress, which an LPA
        that does not know them ignores).
        """
        return [e.to_json() for e in events]

    def _end(self, tid: str, state: str, outcome: str, eid: str | None) -> None:
        with self.store.transaction() as c:
            c.execute(
                "UPDATE sessions SET state = ?, outcome = ?, eid = ?, updated = ?"
                " WHERE transaction_id = ?",
                (state, outcome, eid, self._clock(), tid),
            )

    def session_state(self, transaction_id: str) -> str | None:
        """The state of an ES11 session, or None."""
        row = self.store.query_one(
            "SELECT state FROM sessions WHERE transaction_id = ?", (transaction_id.upper(),)
        )
        return None if row is None else str(row["state"])

    # -- HTTP ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ES11 and ES12 routes (SGP.22 §6.5) on the servers' web stack."""
        from host.servers.smds.app import create_app

        return create_app(self)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = True,
        allow_remote: bool = False,
    ) -> RoleServer:
        """A `RoleServer` for the ES11/ES12 routes (not started: use `with` or `.start()`).

        Raises:
            ValueError: a host outside loopback without `allow_remote`.
            OSError: the port cannot be bound.
        """
        files = TlsFiles(self.tls.pem, self.tls.key_pem) if tls else None
        return RoleServer(self.app(), host, port, tls=files, allow_remote=allow_remote, name="smds")


def _text(body: dict[str, Any], name: str) -> str:
    value = field(body, name)
    if not isinstance(value, str):
        raise Es9Error.of(SC_BAD_REQUEST, f"{name} is not a string")
    return value
