"""The SM-DP+: ES9+ (GSMA SGP.22 v2.x §5.6) over the servers' web stack, state in SQLite.

    smdp = SmdpPlus(default_pki(), address="localhost:8443")
    smdp.add_order(ProfileOrder("MATCH-1", iccid, imsi, k, opc))
    with smdp.serve(port=8443):          # HTTPS with CERT.DPtls, loopback
        ...                              # an LPA downloads "LPA:1$localhost:8443$MATCH-1"

What the SM-DP+ checks and signs, function by function:

- initiateAuthentication (§5.6.1): its own address, the SVN, a CI both sides
  know (euiccCiPKIdListForVerification / ForSigning of euiccInfo1); signs
  serverSigned1 with SK.DPauth.
- authenticateClient (§5.6.3): the session's state, CERT.EUICC ← CERT.EUM ←
  CI (signatures, role policies, the EID inside the EUM's permitted range),
  euiccSignature1 over the euiccSigned1 bytes as received, the
  serverChallenge, the matching ID and its order (EID binding, state); signs
  smdpSigned2 || euiccSignature1 with SK.DPpb.
- getBoundProfilePackage (§5.6.2): euiccSignature2 over euiccSigned2 ||
  smdpSignature2; a one-time ECKA key pair, ECDH with otPK.EUICC.ECKA, the
  X9.63 KDF (SGP.22 Annex G) and SCP03t segments (`card.sgp22.bsp`):
  InitialiseSecureChannel (signed over its data objects || otPK.EUICC.ECKA),
  ConfigureISDP ('87'), StoreMetadata ('88'), the profile elements ('86').
- handleNotification (§5.6.4): the ProfileInstallationResult signature,
  checked over the re-encoded ProfileInstallationResultData (canonical DER),
  or an other-signed notification with its certificate chain; always 204.
- cancelSession (§5.6.5): the eUICC's signature, the SM-DP+ OID, the
  transaction ID; the order becomes downloadable again.

A refused step answers "Failed" with its SGP.22 status code and changes no
order; the session it belonged to is over.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from card.sgp22 import asn1
from card.sgp22.bsp import (
    KEY_TYPE_AES,
    TAG_CONFIGURE_ISDP,
    TAG_PROFILE_ELEMENTS,
    TAG_STORE_METADATA,
    BspState,
    protect_all,
)
from card.tlv import decode_length, decode_tag
from host.es9plus import (
    SC_BAD_REQUEST,
    SC_CC_MISSING,
    SC_CC_REFUSED,
    SC_CC_RETRIES_EXCEEDED,
    SC_CI_KEY_UNKNOWN,
    SC_DOWNLOAD_REFUSED,
    SC_EID_REFUSED,
    SC_EUICC_SIGNATURE_INVALID,
    SC_MATCHING_ID_REFUSED,
    SC_SECURITY_CONFIG_UNSUPPORTED,
    SC_SMDP_ADDRESS_REFUSED,
    SC_SMDP_CERT_UNAVAILABLE,
    SC_SMDP_OID_INVALID,
    SC_SMDS_INACCESSIBLE,
    SC_SVN_UNSUPPORTED,
    SC_TRANSACTION_UNKNOWN,
    Es9Error,
    b64,
    unb64,
)
from host.lpa.es9 import Es9TransportError
from host.pki import ChainError, Credential, PkiError, TestPki, eid_of, verify_euicc_chain
from host.servers import rsp_common
from host.servers.rsp_common import check_client
from host.servers.smdpp.es2plus import OperatorLink, ReportQueue
from host.servers.smdpp.saip import ProfileOrder, build_upp, iccid_to_ef, upp_iccid
from host.servers.smds.client import Es12Client
from host.servers.web import RoleServer, Store, TlsFiles

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["SmdpCredentials", "SmdpPlus", "OrderState", "SessionState"]

log = logging.getLogger(__name__)

#: The decoding one ES9+ request may do, all its objects together (card.sgp22.asn1 limits
#: apply to each object; real requests decode in milliseconds).
REQUEST_DECODE_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    matching_id TEXT PRIMARY KEY,
    eid TEXT,
    iccid TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    upp BLOB NOT NULL,
    spn TEXT NOT NULL,
    name TEXT NOT NULL,
    profile_class INTEGER NOT NULL,
    updated REAL NOT NULL,
    profile_type TEXT,
    cc_hash BLOB,
    cc_failures INTEGER NOT NULL DEFAULT 0,
    smds_address TEXT,
    event_id TEXT,
    operator TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    transaction_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL,
    ci_ski BLOB NOT NULL,
    euicc_challenge BLOB NOT NULL,
    server_challenge BLOB NOT NULL,
    eid TEXT,
    euicc_cert BLOB,
    matching_id TEXT,
    smdp_signature2 BLOB,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    kind TEXT NOT NULL,
    transaction_id TEXT,
    eid TEXT,
    iccid TEXT,
    seq INTEGER,
    operation TEXT,
    result TEXT NOT NULL
)
"""


#: Columns later versions added to `orders`, and their types: added to an older store on open.
_ORDER_COLUMNS = {
    "profile_type": "TEXT",
    "cc_hash": "BLOB",
    "cc_failures": "INTEGER NOT NULL DEFAULT 0",
    "smds_address": "TEXT",
    "event_id": "TEXT",
    "operator": "TEXT",
}


def _migrate(store: Store) -> None:
    have = store.columns("orders")
    for name, kind in _ORDER_COLUMNS.items():
        if name not in have:
            store.apply_schema(f"ALTER TABLE orders ADD COLUMN {name} {kind}")


class OrderState:
    """Profile states at the SM-DP+ (SGP.22 §3.1.1 and the ES2+ functions of §5.3)."""

    AVAILABLE = "available"  # in the pool, ordered by no one (ES2+.DownloadOrder picks it)
    ALLOCATED = "allocated"  # DownloadOrder reserved it (linked when it names an EID)
    CONFIRMED = "confirmed"  # ConfirmOrder without releaseFlag: waiting for ReleaseProfile
    RELEASED = "released"  # ready for download
    DOWNLOADED = "downloaded"  # BPP handed out, installation result pending
    INSTALLED = "installed"  # the eUICC reported success
    UNAVAILABLE = "unavailable"  # CancelOrder took it out of use
    ERROR = "error"  # the confirmation code's retries ran out


#: The states an LPA may download in: released, or handed out and not yet installed (a retry).
DOWNLOADABLE = (OrderState.RELEASED, OrderState.DOWNLOADED)

# ES2+.HandleDownloadProgressInfo notification points (SGP.22 §5.3.5). 1-4 are the
# download steps, in the order §3.1.3 reaches them; no retrievable source gives SGP.22's
# own table, but a vendor's ES2+ interface document (a China Mobile International channel
# API, "esim 状态通知接口" handleDownloadProgressInfo) lists the same four with the same
# numbers: 1 eligibility and retry limit check, 2 failure, 3 BPP download, 4 BPP
# installation.
POINT_ELIGIBILITY = 1  # eligibility and retry limit check (AuthenticateClient)
POINT_CONFIRMATION_FAILURE = 2  # a wrong confirmation code
POINT_BPP_DOWNLOAD = 3  # GetBoundProfilePackage
POINT_BPP_INSTALLATION = 4  # the ProfileInstallationResult
# The eUICC's other notifications relayed to the operator. NOT VERIFIED against SGP.22:
# the only source found is that vendor document, which lists 5 "已删除" (deleted),
# 101 "已安装" (literally "installed"; used here for enabled, the notification an
# installed profile sends next) and 102 "已关闭" (switched off: disabled).
POINT_DELETED = 5
POINT_ENABLED = 101
POINT_DISABLED = 102
_OTHER_POINTS = {"enable": POINT_ENABLED, "disable": POINT_DISABLED, "delete": POINT_DELETED}


class SessionState:
    """RSP session states at the SM-DP+."""

    INITIATED = "initiated"  # after initiateAuthentication
    AUTHENTICATED = "authenticated"  # after authenticateClient
    BOUND = "bound"  # after getBoundProfilePackage
    DONE = "done"  # installation result received
    FAILED = "failed"  # a step was refused
    CANCELLED = "cancelled"


_ACTIVE = (SessionState.INITIATED, SessionState.AUTHENTICATED, SessionState.BOUND)
_PROFILE_CLASS = {"test": 0, "provisioning": 1, "operational": 2}
# SGP.22 NotificationEvent bits, in the order of the ASN.1 named bits.
_EVENTS = ("install", "enable", "disable", "delete")
_HOST_ID = b"cardemu-smdp"


@dataclass(frozen=True)
class SmdpCredentials:
    """The SM-DP+'s keys under one CI: CERT.DPauth and CERT.DPpb with their private keys."""

    ci: x509.Certificate
    dpauth: Credential
    dppb: Credential

    @classmethod
    def from_pki(cls, pki: TestPki) -> SmdpCredentials:
        return cls(pki.ci.cert, pki.dpauth, pki.dppb)

    @property
    def ci_ski(self) -> bytes:
        return self.ci.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest

    @property
    def smdp_oid(self) -> str:
        san = self.dpauth.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        oids = san.value.get_values_for_type(x509.RegisteredID)
        if not oids:
            raise PkiError("CERT.DPauth has no registeredID (the SM-DP+ OID)")
        return oids[0].dotted_string


# -- DER helpers: host.servers.rsp_common (shared with the SM-DS) ------------------------

_tlv = rsp_common.tlv
_sig_do = rsp_common.sig_do
_first_inner = rsp_common.first_inner
_decode = rsp_common.decode
_decode_lenient = rsp_common.decode_lenient
_verify = rsp_common.verify
_oid_key = rsp_common.oid_key
_code = rsp_common.error_code
_field = rsp_common.field
_tid = rsp_common.transaction_id

_ES9_ROLE = rsp_common.RspRole(
    "smdpAddress",
    SC_SMDP_ADDRESS_REFUSED,
    "SM-DP+",
    "CERT.DPauth",
    svn_unsupported=SC_SVN_UNSUPPORTED,
    security_config_unsupported=SC_SECURITY_CONFIG_UNSUPPORTED,
    cert_unavailable=SC_SMDP_CERT_UNAVAILABLE,
)


class _OrderRefused(Exception):
    """A refusal that names the order it concerns (for the operator's report)."""

    def __init__(self, error: Es9Error, order: Any) -> None:
        super().__init__(str(error))
        self.error, self.order = error, order


def pool_key(iccid: str) -> str:
    """The key of a package in the ES2+ pool (no matching ID yet); never a matching ID.

    It starts with a control character no matching ID holds: \\x01, not NUL, which
    PostgreSQL's text columns refuse.
    """
    return "\x01pool:" + iccid


def cc_hash_of(confirmation_code: str | None) -> bytes | None:
    """What the SM-DP+ keeps of a confirmation code: SHA-256(CC) (SGP.22 §3.1.3.4).

    The eUICC sends SHA-256(SHA-256(CC) || TransactionID); keeping only SHA-256(CC)
    is enough to check that, and the code itself is never stored.
    """
    if confirmation_code is None:
        return None
    return hashlib.sha256(confirmation_code.encode()).digest()


def _event_bits(events: Sequence[str]) -> tuple[bytes, int]:
    """A NotificationEvent BIT STRING in asn1tools' (bytes, bit count) form."""
    value = 0
    for e in events:
        value |= 0x80 >> _EVENTS.index(e)
    return bytes((value,)), 4


def _event_name(bits: Any) -> str:
    data, _ = bits
    byte = data[0] if data else 0
    names = [n for i, n in enumerate(_EVENTS) if byte & (0x80 >> i)]
    return "+".join(names) or "none"


# -- The SM-DP+ ---------------------------------------------------------------------------


class SmdpPlus:
    """An SM-DP+ with its orders and sessions in one store (SQLite, or PostgreSQL).

    Every RSP session lives in the store, not in this object: several processes
    (uvicorn workers, machines) on one PostgreSQL database serve one SM-DP+, any
    of them any step of a session.

    Args:
        credentials: the DPauth/DPpb sets it holds (one per CI), or a `TestPki`.
        address: the SM-DP+ address LPAs use (`host` or `host:port`, compared
            case-insensitively with the one they send, §5.6.1).
        store: a database file, ":memory:", a `postgresql://` URL, or an open `Store`
            (the schema is added).
        trusted_cis: CIs whose eUICCs it accepts (default: the credentials' CIs).
        tls: CERT.DPtls with its key, for `serve` (a `TestPki` brings its own).
        random: the source of transaction IDs and server challenges.
        clock: seconds since the epoch (tests move it).
        crls: CRLs of the CI and the EUMs (`host.pki.issue_crl`), checked on every
            eUICC chain.
        cc_attempts: wrong confirmation codes an order takes before it is refused
            for good (SGP.22 §3.1.3: the SM-DP+ limits the retries; 5 is what
            operators commonly configure).
        operators: ES2+ requester → where its HandleDownloadProgressInfo goes
            (`OperatorLink`).
        smds_client: the ES12 client for an SM-DS address (default: HTTPS,
            the credentials' CIs trusted, this SM-DP+'s address as requester).
    """

    def __init__(
        self,
        credentials: Sequence[SmdpCredentials] | TestPki,
        *,
        address: str,
        store: Store | str | os.PathLike[str] = ":memory:",
        trusted_cis: Sequence[x509.Certificate] | None = None,
        tls: Credential | None = None,
        random: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
        crls: Sequence[x509.CertificateRevocationList] = (),
        cc_attempts: int = 5,
        operators: Mapping[str, OperatorLink] | None = None,
        smds_client: Callable[[str], Es12Client] | None = None,
    ) -> None:
        #: wrong confirmation codes an order takes before it goes to the error state
        self.cc_attempts = cc_attempts
        #: where HandleDownloadProgressInfo goes, by the ES2+ requester that ordered
        self.operators: dict[str, OperatorLink] = dict(operators or {})
        self._smds_client = smds_client
        # Reports to operators leave from one background thread, in order: a slow or
        # absent operator never delays an LPA's download (SGP.22 §5.3.5 is one-way).
        self._reports = ReportQueue()
        #: CRLs of the CI and the EUMs: a revoked EUM or eUICC certificate is refused
        #: (SGP.22 §4.5.2.2); replace the list to load newer ones.
        self.crls: list[x509.CertificateRevocationList] = list(crls)
        if isinstance(credentials, TestPki):
            tls = tls or credentials.dptls
            credentials = [SmdpCredentials.from_pki(credentials)]
        if not credentials:
            raise ValueError("an SM-DP+ needs at least one DPauth/DPpb set")
        self.credentials = list(credentials)
        self.address = address
        self.trusted_cis = (
            list(trusted_cis) if trusted_cis is not None else [c.ci for c in self.credentials]
        )
        self.tls = tls
        self.store = Store.of(store, _SCHEMA)
        _migrate(self.store)
        self._random = random
        self._clock = clock

    # -- orders ---------------------------------------------------------------------

    def add_order(
        self,
        order: ProfileOrder,
        *,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
    ) -> None:
        """Prepare a profile for download under its matching ID.

        Args:
            order: the profile and its matching ID (and EID binding).
            confirmation_code: the code the user must give (ccRequiredFlag).
            smds_address: register the event at this SM-DS (the order needs an EID).

        Raises:
            ValueError: the matching ID or the ICCID is already ordered.
            Es9Error: the SM-DS refused the event or could not be reached.
        """
        self.add_package(
            order.matching_id,
            build_upp(order),
            eid=order.eid,
            spn=order.spn,
            name=order.name,
            profile_class=order.profile_class,
            confirmation_code=confirmation_code,
            smds_address=smds_address,
        )

    def add_package(
        self,
        matching_id: str | None,
        upp: bytes,
        *,
        eid: str | None = None,
        spn: str = "cardemu",
        name: str = "",
        profile_class: str = "operational",
        profile_type: str | None = None,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
    ) -> str:
        """Prepare a ready-made profile package (DER profile elements) for download.

        With a matching ID the order is released at once (an LPA may download it);
        without one the package goes into the pool (state "available") for an
        ES2+ DownloadOrder to pick.

        Args:
            matching_id: the order's matching ID, or None for the ES2+ pool.
            upp: the profile package.
            eid: only this eUICC may download it.
            profile_type: what ES2+.DownloadOrder's profileType selects it by.
            confirmation_code: the code the user must give (ccRequiredFlag).
            smds_address: register an event at this SM-DS (needs `eid`).

        Returns:
            The ICCID its header names.

        Raises:
            ValueError: not a profile package, the matching ID / ICCID is taken,
                or an SM-DS event without an EID.
            Es9Error: the SM-DS refused the event or could not be reached.
        """
        iccid = upp_iccid(upp)
        if profile_class not in _PROFILE_CLASS:
            raise ValueError(f"unknown profile class {profile_class!r}")
        if smds_address and not eid:
            raise ValueError("an SM-DS event needs the EID it is for")
        key = matching_id if matching_id is not None else pool_key(iccid)
        try:
            with self.store.transaction() as c:
                c.execute(
                    "INSERT INTO orders (matching_id, eid, iccid, state, upp, spn, name,"
                    " profile_class, updated, profile_type, cc_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        eid,
                        iccid,
                        OrderState.AVAILABLE if matching_id is None else OrderState.RELEASED,
                        upp,
                        spn,
                        name or matching_id or iccid,
                        _PROFILE_CLASS[profile_class],
                        self._clock(),
                        profile_type,
                        cc_hash_of(confirmation_code),
                    ),
                )
        except Exception as e:  # the database's own IntegrityError / UniqueViolation
            if Store.is_conflict(e):
                raise ValueError(
                    f"matching ID {matching_id!r} or ICCID {iccid} is already ordered"
                ) from None
            raise
        if smds_address and eid and matching_id is not None:
            try:
                self.register_event(key, smds_address)
            except Es9Error:
                with self.store.transaction() as c:
                    c.execute("DELETE FROM orders WHERE matching_id = ?", (key,))
                raise
        return iccid

    def order(self, matching_id: str) -> dict[str, Any] | None:
        """An order's row (without the profile package), or None."""
        row = self.store.query_one("SELECT * FROM orders WHERE matching_id = ?", (matching_id,))
        return None if row is None else {k: row[k] for k in row.keys() if k != "upp"}

    # -- SM-DS events (ES12) -------------------------------------------------------------

    def es12(self, smds_address: str) -> Es12Client:
        """The ES12 client for one SM-DS."""
        if self._smds_client is not None:
            return self._smds_client(smds_address)
        return Es12Client(
            smds_address,
            requester=self.address,
            ca_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.trusted_cis),
        )

    def register_event(self, matching_id: str, smds_address: str) -> str:
        """Register the order's event at an SM-DS (ES12.RegisterEvent, SGP.22 §3.6.1).

        The EventID is the order's matching ID: the LPA that retrieves the event
        downloads with it (SGP.22 §3.6.3). The forwarding indicator is set, so an
        alternative SM-DS also registers it at its root.

        Returns:
            The EventID.

        Raises:
            Es9Error: the SM-DS refused, or could not be reached (SC_SMDS_INACCESSIBLE).
            ValueError: no such order, or it names no EID.
        """
        row = self.store.query_one("SELECT * FROM orders WHERE matching_id = ?", (matching_id,))
        if row is None or not row["eid"]:
            raise ValueError(f"order {matching_id!r}: no such order, or no EID for an event")
        try:
            self.es12(smds_address).register_event(
                row["eid"], matching_id, self.address, forwarding=True
            )
        except Es9TransportError as e:
            raise Es9Error.of(SC_SMDS_INACCESSIBLE, str(e)) from None
        with self.store.transaction() as c:
            c.execute(
                "UPDATE orders SET smds_address = ?, event_id = ? WHERE matching_id = ?",
                (smds_address, matching_id, matching_id),
            )
        return matching_id

    def delete_event(self, order: Any) -> None:
        """Delete the order's SM-DS event, if it has one (ES12.DeleteEvent), best effort."""
        if not order["smds_address"] or not order["event_id"] or not order["eid"]:
            return
        try:
            self.es12(order["smds_address"]).delete_event(order["eid"], order["event_id"])
        except (Es9Error, Es9TransportError) as e:
            log.warning(
                "event %s not deleted at %s: %s", order["event_id"], order["smds_address"], e
            )
        with self.store.transaction() as c:
            c.execute(
                "UPDATE orders SET event_id = NULL WHERE matching_id = ?", (order["matching_id"],)
            )

    # -- the operator (ES2+.HandleDownloadProgressInfo) ----------------------------------

    def notify_progress(
        self,
        order: Any,
        point: int,
        *,
        error: Es9Error | None = None,
        result_data: bytes | None = None,
    ) -> None:
        """Tell the operator that ordered `order` how its download goes (SGP.22 §5.3.5).

        Best effort, as SGP.22 has it: a lost notification changes no order.
        """
        link = self.operators.get(order["operator"] or "")
        if link is None:
            return
        status: dict[str, Any] = {"status": "Executed-Success"}
        if error is not None:
            status = {
                "status": "Failed",
                "statusCodeData": {
                    "subjectCode": error.subject_code,
                    "reasonCode": error.reason_code,
                    "message": error.message,
                },
            }
        body: dict[str, Any] = {
            "iccid": order["iccid"],
            "profileType": order["profile_type"] or "",
            "timestamp": _dt.datetime.fromtimestamp(self._clock(), _dt.UTC).isoformat(
                timespec="seconds"
            ),
            "notificationPointId": point,
            "notificationPointStatus": status,
        }
        if order["eid"]:
            body["eid"] = order["eid"]
        if result_data is not None:
            body["resultData"] = b64(result_data)
        self._reports.put(link, self.address, body)

    def flush_progress(self, timeout: float = 10.0) -> bool:
        """Wait until every HandleDownloadProgressInfo queued so far has been tried.

        Returns:
            False if some were still queued after `timeout` seconds.
        """
        return self._reports.flush(timeout)

    def order_state(self, matching_id: str) -> str | None:
        """The state of an order (an `OrderState` value), or None if there is none."""
        row = self.store.query_one("SELECT state FROM orders WHERE matching_id = ?", (matching_id,))
        return None if row is None else str(row["state"])

    def orders(self) -> list[dict[str, Any]]:
        """Every order: matching ID, ICCID, EID binding, state (no profile data)."""
        return self.orders_of(self.store)

    @staticmethod
    def orders_of(store: Store) -> list[dict[str, Any]]:
        """The orders in `store`, as `orders`."""
        return [
            {
                "matching_id": r["matching_id"],
                "iccid": r["iccid"],
                "eid": r["eid"],
                "state": r["state"],
            }
            for r in store.query(
                "SELECT matching_id, iccid, eid, state FROM orders ORDER BY matching_id"
            )
        ]

    def session_state(self, transaction_id: str) -> str | None:
        """The state of a session (a `SessionState` value), or None."""
        row = self.store.query_one(
            "SELECT state FROM sessions WHERE transaction_id = ?", (transaction_id.upper(),)
        )
        return None if row is None else str(row["state"])

    def notifications(self) -> list[dict[str, Any]]:
        """The notifications received, oldest first."""
        return [dict(r) for r in self.store.query("SELECT * FROM notifications ORDER BY id")]

    # -- ES9+ functions (JSON objects in and out, without the header) ------------------

    def _creds_for(self, ci_ski: bytes) -> SmdpCredentials:
        for c in self.credentials:
            if c.ci_ski == ci_ski:
                return c
        raise Es9Error.of(SC_CI_KEY_UNKNOWN, "the session's CI is no longer configured")

    def _end(self, tid: str, state: str, outcome: str) -> None:
        with self.store.transaction() as c:
            c.execute(
                "UPDATE sessions SET state = ?, outcome = ?, updated = ? WHERE transaction_id = ?",
                (state, outcome, self._clock(), tid),
            )

    def _session(self, tid: str, states: Sequence[str]) -> Any:
        row = self.store.query_one("SELECT * FROM sessions WHERE transaction_id = ?", (tid,))
        if row is None or row["state"] not in states:
            raise Es9Error.of(
                SC_TRANSACTION_UNKNOWN, "no RSP session in that state for this transactionId"
            )
        return row

    def _session_step(
        self,
        body: dict[str, Any],
        field: str,
        states: Sequence[str],
        function: str,
        step: Callable[[str, Any, bytes], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run `step(tid, session, raw)` on the session `body` names, in one of `states`.

        `raw` is `body[field]` decoded from base64. A refusal (`Es9Error`) in the step
        ends the session as failed, naming `function` and the status code.
        """
        tid = _tid(body)
        raw = unb64(_field(body, field), field)
        session = self._session(tid, states)
        try:
            return step(tid, session, raw)
        except Es9Error as e:
            self._end(tid, SessionState.FAILED, f"{function} {e.subject_code}/{e.reason_code}")
            raise

    def initiate_authentication(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES9+.InitiateAuthentication (SGP.22 §5.6.1): signed with CERT.DPauth."""
        return rsp_common.initiate_authentication(
            body,
            role=_ES9_ROLE,
            address=self.address,
            credentials=self.credentials,
            auth=lambda c: c.dpauth,
            random=self._random,
            store=self.store,
            now=self._clock(),
        )

    def authenticate_client(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES9+.AuthenticateClient (SGP.22 §5.6.3)."""
        return self._session_step(
            body,
            "authenticateServerResponse",
            (SessionState.INITIATED,),
            "authenticateClient",
            self._authenticate_client,
        )

    def _authenticate_client(self, tid: str, session: Any, raw: bytes) -> dict[str, Any]:
        creds = self._creds_for(bytes(session["ci_ski"]))
        client = check_client(
            raw, tid, bytes(session["server_challenge"]), creds.ci, crls=self.crls
        )
        eid, euicc_der, signature1 = client.eid, client.certificate_der, client.signature1
        matching_id = client.matching_id
        try:
            return self._bind_session(tid, creds, eid, euicc_der, signature1, matching_id)
        except _OrderRefused as r:
            # An order found but refused to this eUICC: its operator hears of it (§5.3.5),
            # once the transaction is over.
            self.notify_progress(r.order, POINT_ELIGIBILITY, error=r.error)
            raise r.error from None

    def _bind_session(
        self,
        tid: str,
        creds: SmdpCredentials,
        eid: str,
        euicc_der: bytes,
        signature1: bytes,
        matching_id: str,
    ) -> dict[str, Any]:
        """AuthenticateClient's second half: the order for this eUICC, smdpSigned2."""
        # The order's row stays locked until the commit (on PostgreSQL; SQLite serialises
        # every writer): two eUICCs racing for one order from two workers cannot both pass.
        lock = self.store.for_update
        # Writes sessions only (the order moves at GetBoundProfilePackage): lost to a power
        # cut, the download fails at its next step and starts again; no disk wait.
        with self.store.transaction(durable=False) as c:
            if matching_id:
                order = c.execute(
                    "SELECT * FROM orders WHERE matching_id = ?" + lock, (matching_id,)
                ).fetchone()
            else:
                # The default SM-DP+ (SGP.22 §3.1.3.2): no matching ID, so the profile
                # released for this EID, the oldest first.
                order = c.execute(
                    "SELECT * FROM orders WHERE eid = ? AND state IN (?, ?)"
                    " ORDER BY updated, matching_id LIMIT 1" + lock,
                    (eid, *DOWNLOADABLE),
                ).fetchone()
            if order is None or order["state"] not in DOWNLOADABLE:
                raise Es9Error.of(
                    SC_MATCHING_ID_REFUSED, "no profile is waiting under this matching ID"
                )
            if order["eid"] is not None and order["eid"] != eid:
                raise _OrderRefused(
                    Es9Error.of(SC_EID_REFUSED, "this profile is ordered for another eUICC"), order
                )
            matching_id = order["matching_id"]
            others = c.execute(
                "SELECT eid FROM sessions WHERE matching_id = ? AND state IN (?, ?)"
                " AND transaction_id != ?",
                (matching_id, SessionState.AUTHENTICATED, SessionState.BOUND, tid),
            ).fetchall()
            if any(r["eid"] != eid for r in others):
                # Once a download has started, the profile is tied to that eUICC (SGP.22 §3.1.3).
                raise Es9Error.of(
                    SC_MATCHING_ID_REFUSED, "another eUICC is downloading this profile"
                )
            # The same eUICC starting again (an interrupted download): its old sessions end.
            c.execute(
                "UPDATE sessions SET state = ?, outcome = 'superseded', updated = ?"
                " WHERE matching_id = ? AND state IN (?, ?) AND transaction_id != ?",
                (
                    SessionState.FAILED,
                    self._clock(),
                    matching_id,
                    SessionState.AUTHENTICATED,
                    SessionState.BOUND,
                    tid,
                ),
            )
            smdp_signed2 = asn1.encode(
                "SmdpSigned2",
                {
                    "transactionId": bytes.fromhex(tid),
                    "ccRequiredFlag": order["cc_hash"] is not None,
                },
            )
            signature2 = _sig_do(creds.dppb.sign(smdp_signed2 + _sig_do(signature1)))
            metadata = self._metadata(order)
            c.execute(
                "UPDATE sessions SET state = ?, updated = ?, eid = ?, euicc_cert = ?,"
                " matching_id = ?,"
                " smdp_signature2 = ? WHERE transaction_id = ? AND state = ?",
                (
                    SessionState.AUTHENTICATED,
                    self._clock(),
                    eid,
                    euicc_der,
                    matching_id,
                    signature2,
                    tid,
                    SessionState.INITIATED,
                ),
            )
        self.notify_progress(order, POINT_ELIGIBILITY)
        return {
            "transactionId": tid,
            "profileMetadata": b64(metadata),
            "smdpSigned2": b64(smdp_signed2),
            "smdpSignature2": b64(signature2),
            "smdpCertificate": b64(creds.dppb.der),
        }

    def _metadata(self, order: Any) -> bytes:
        """StoreMetadataRequest (SGP.22 §5.5.3) for an order."""
        return asn1.encode(
            "StoreMetadataRequest",
            {
                "iccid": iccid_to_ef(order["iccid"]),
                "serviceProviderName": order["spn"][:32],
                "profileName": order["name"][:64],
                "profileClass": order["profile_class"],
                "notificationConfigurationInfo": [
                    {
                        "profileManagementOperation": _event_bits(["enable", "disable", "delete"]),
                        "notificationAddress": self.address,
                    }
                ],
            },
        )

    def get_bound_profile_package(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES9+.GetBoundProfilePackage (SGP.22 §5.6.2)."""
        return self._session_step(
            body,
            "prepareDownloadResponse",
            (SessionState.AUTHENTICATED,),
            "getBoundProfilePackage",
            self._get_bpp,
        )

    def _get_bpp(self, tid: str, session: Any, raw: bytes) -> dict[str, Any]:
        kind, resp = _decode("PrepareDownloadResponse", raw, "prepareDownloadResponse")
        if kind != "downloadResponseOk":
            raise Es9Error.of(
                SC_DOWNLOAD_REFUSED,
                f"the eUICC refused the download (error {_code(resp, 'downloadErrorCode')})",
            )
        signed2 = resp["euiccSigned2"]
        signed2_raw = _first_inner(raw, 2)
        if signed2["transactionId"].hex().upper() != tid:
            raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "euiccSigned2 names another transaction")
        euicc_cert = x509.load_der_x509_certificate(bytes(session["euicc_cert"]))
        if not _verify(
            euicc_cert,
            bytes(resp["euiccSignature2"]),
            signed2_raw + bytes(session["smdp_signature2"]),
        ):
            raise Es9Error.of(SC_EUICC_SIGNATURE_INVALID, "euiccSignature2 does not verify")
        self._check_cc(tid, session["matching_id"], signed2.get("hashCc"))
        creds = self._creds_for(bytes(session["ci_ski"]))
        euicc_otpk = bytes(signed2["euiccOtpk"])
        curve = creds.dppb.key.curve
        try:
            euicc_pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, euicc_otpk)
        except ValueError:
            raise Es9Error.of(
                SC_BAD_REQUEST, "otPK.EUICC.ECKA is not a point of the curve"
            ) from None
        # The one-time key pair (otSK.DP.ECKA): its secret lives only for this call.
        ot_key = ec.generate_private_key(curve)
        smdp_otpk = ot_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        shared = ot_key.exchange(ec.ECDH(), euicc_pub)
        order = self.store.query_one(
            "SELECT * FROM orders WHERE matching_id = ?", (session["matching_id"],)
        )
        if order is None or order["state"] not in DOWNLOADABLE:
            raise Es9Error.of(SC_MATCHING_ID_REFUSED, "the order is gone")
        # The BPP is bound outside the transaction (its encryption is the costliest step);
        # then the order and the session are checked again, locked, and moved on.
        bpp = self._bind(
            creds,
            tid,
            session["eid"],
            shared,
            smdp_otpk,
            euicc_otpk,
            self._metadata(order),
            bytes(order["upp"]),
        )
        lock = self.store.for_update
        with self.store.transaction() as c:
            now = c.execute(
                "SELECT state FROM orders WHERE matching_id = ?" + lock, (order["matching_id"],)
            ).fetchone()
            if now is None or now["state"] not in DOWNLOADABLE:
                raise Es9Error.of(SC_MATCHING_ID_REFUSED, "the order is gone")
            current = c.execute(
                "SELECT state FROM sessions WHERE transaction_id = ?" + lock, (tid,)
            ).fetchone()
            if current is None or current["state"] != SessionState.AUTHENTICATED:
                raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "the session ended meanwhile")
            c.execute(
                "UPDATE orders SET state = ?, updated = ? WHERE matching_id = ?",
                (OrderState.DOWNLOADED, self._clock(), order["matching_id"]),
            )
            c.execute(
                "UPDATE sessions SET state = ?, updated = ? WHERE transaction_id = ? AND state = ?",
                (SessionState.BOUND, self._clock(), tid, SessionState.AUTHENTICATED),
            )
        self.notify_progress(order, POINT_BPP_DOWNLOAD)
        return {"transactionId": tid, "boundProfilePackage": b64(bpp)}

    def _check_cc(self, tid: str, matching_id: str, hash_cc: bytes | None) -> None:
        """The confirmation code (SGP.22 §3.1.3.4): hashCc = SHA-256(SHA-256(CC) || TransactionID).

        A wrong code counts against the order; at `cc_attempts` wrong codes the
        order goes to the error state and no code opens it again.

        Raises:
            Es9Error: the code is missing, wrong, or its retries have run out.
        """
        order = self.store.query_one("SELECT * FROM orders WHERE matching_id = ?", (matching_id,))
        if order is None or order["cc_hash"] is None:
            return
        if hash_cc is None:
            raise Es9Error.of(SC_CC_MISSING, "the profile needs a confirmation code")
        expected = hashlib.sha256(bytes(order["cc_hash"]) + bytes.fromhex(tid)).digest()
        if hmac.compare_digest(bytes(hash_cc), expected):
            return
        with self.store.transaction() as c:
            c.execute(
                "UPDATE orders SET cc_failures = cc_failures + 1, updated = ?"
                " WHERE matching_id = ?",
                (self._clock(), matching_id),
            )
            failures = c.execute(
                "SELECT cc_failures FROM orders WHERE matching_id = ?", (matching_id,)
            ).fetchone()[0]
            exhausted = failures >= self.cc_attempts
            if exhausted:
                c.execute(
                    "UPDATE orders SET state = ? WHERE matching_id = ?",
                    (OrderState.ERROR, matching_id),
                )
        error = (
            Es9Error.of(SC_CC_RETRIES_EXCEEDED, f"{failures} wrong confirmation codes")
            if exhausted
            else Es9Error.of(
                SC_CC_REFUSED,
                f"wrong confirmation code ({self.cc_attempts - failures} attempt(s) left)",
            )
        )
        self.notify_progress(order, POINT_CONFIRMATION_FAILURE, error=error)
        if exhausted:
            self.delete_event(order)
        raise error

    def _bind(
        self,
        creds: SmdpCredentials,
        tid: str,
        eid: str,
        shared: bytes,
        smdp_otpk: bytes,
        euicc_otpk: bytes,
        metadata: bytes,
        upp: bytes,
    ) -> bytes:
        """The Bound Profile Package (SGP.22 §2.5.4, §5.5) under the session keys."""
        crt = {"keyType": bytes((KEY_TYPE_AES,)), "keyLen": b"\x10", "hostId": _HOST_ID}
        unsigned = {
            "remoteOpId": 1,  # installBoundProfilePackage
            "transactionId": bytes.fromhex(tid),
            "controlRefTemplate": crt,
            "smdpOtpk": smdp_otpk,
            "smdpSign": b"",
        }
        # SGP.22 §5.5.1: smdpSign covers the request's data objects before it, then otPK.EUICC.ECKA.
        encoded = asn1.encode("InitialiseSecureChannelRequest", unsigned)
        _, p = decode_tag(encoded, 0)
        _, p = decode_length(encoded, p)
        signed_part = encoded[p:]
        empty_sig = _tlv(0x5F37, b"")
        if not signed_part.endswith(empty_sig):
            raise RuntimeError("InitialiseSecureChannelRequest does not end with its signature")
        signed_part = signed_part[: -len(empty_sig)]
        unsigned["smdpSign"] = creds.dppb.sign(signed_part + _tlv(0x5F49, euicc_otpk))
        state = BspState.from_shared_secret(shared, KEY_TYPE_AES, 16, _HOST_ID, bytes.fromhex(eid))
        configure = asn1.encode("ConfigureISDPRequest", {})
        seg87, state = protect_all(state, TAG_CONFIGURE_ISDP, configure, encrypt=True)
        seg88, state = protect_all(state, TAG_STORE_METADATA, metadata, encrypt=False)
        seg86, state = protect_all(state, TAG_PROFILE_ELEMENTS, upp, encrypt=True)

        def values(segments: list[bytes]) -> list[bytes]:
            out = []
            for s in segments:
                _, q = decode_tag(s, 0)
                _, q = decode_length(s, q)
                out.append(s[q:])
            return out

        bpp = asn1.encode(
            "BoundProfilePackage",
            {
                "initialiseSecureChannelRequest": unsigned,
                "firstSequenceOf87": values(seg87),
                "sequenceOf88": values(seg88),
                "sequenceOf86": values(seg86),
            },
        )
        return bpp

    def handle_notification(self, body: dict[str, Any]) -> None:
        """ES9+.HandleNotification (SGP.22 §5.6.4): verify, record, update the order."""
        raw = unb64(_field(body, "pendingNotification"), "pendingNotification")
        kind, value = _decode("PendingNotification", raw, "pendingNotification")
        if kind == "profileInstallationResult":
            self._installation_result(value)
        elif kind == "otherSignedNotification":
            self._other_notification(value)
        else:  # an alternative of the extensible CHOICE this SM-DP+ does not know
            log.warning("notification of an unknown kind ignored")

    def _record(self, c: Any, kind: str, result: str, **fields: Any) -> None:
        c.execute(
            "INSERT INTO notifications"
            " (received, kind, transaction_id, eid, iccid, seq, operation, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self._clock(),
                kind,
                fields.get("transaction_id"),
                fields.get("eid"),
                fields.get("iccid"),
                fields.get("seq"),
                fields.get("operation"),
                result,
            ),
        )

    def _installation_result(self, pir: dict[str, Any]) -> None:
        data = pir["profileInstallationResultData"]
        tid = bytes(data["transactionId"]).hex().upper()
        # SGP.22 §5.7.6: euiccSignPIR covers the DER of ProfileInstallationResultData;
        # DER being canonical, re-encoding the decoded value gives those bytes back.
        try:
            signed = asn1.encode("ProfileInstallationResultData", data)
        except asn1.Asn1Error as e:  # decoded, yet not DER again: nothing it signs
            log.warning("installation result that does not re-encode ignored: %s", e)
            return
        row = self.store.query_one("SELECT * FROM sessions WHERE transaction_id = ?", (tid,))
        if row is None or row["state"] != SessionState.BOUND or row["euicc_cert"] is None:
            log.warning("installation result for unknown or finished session %s: ignored", tid)
            return
        cert = x509.load_der_x509_certificate(bytes(row["euicc_cert"]))
        if not _verify(cert, bytes(pir["euiccSignPIR"]), signed):
            log.warning("installation result of session %s: bad signature, ignored", tid)
            return
        result, detail = data["finalResult"]
        ok = result == "successResult"
        outcome = (
            "installed"
            if ok
            else (f"error bpp={detail.get('bppCommandId')} reason={detail.get('errorReason')}")
        )
        with self.store.transaction() as c:
            order = c.execute(
                "SELECT * FROM orders WHERE matching_id = ?" + self.store.for_update,
                (row["matching_id"],),
            ).fetchone()
            c.execute(
                "UPDATE sessions SET state = ?, outcome = ?, updated = ?"
                " WHERE transaction_id = ? AND state = ?",
                (SessionState.DONE, outcome, self._clock(), tid, SessionState.BOUND),
            )
            if order is not None:
                # A failed installation makes the profile downloadable again (SGP.22 §3.1.3).
                c.execute(
                    "UPDATE orders SET state = ?, updated = ? WHERE matching_id = ?",
                    (
                        OrderState.INSTALLED if ok else OrderState.RELEASED,
                        self._clock(),
                        order["matching_id"],
                    ),
                )
            self._record(
                c,
                "install",
                outcome,
                transaction_id=tid,
                eid=row["eid"],
                iccid=None if order is None else order["iccid"],
                seq=data["notificationMetadata"]["seqNumber"],
                operation="install",
            )
        if order is not None:
            self.notify_progress(
                order,
                POINT_BPP_INSTALLATION,
                error=None
                if ok
                else Es9Error.of(SC_DOWNLOAD_REFUSED, outcome),  # the eUICC could not install it
                result_data=asn1.encode("ProfileInstallationResult", pir),
            )
            if ok:
                # The profile is on the eUICC: its event has done its work (SGP.22 §3.6.2).
                self.delete_event(order)

    def _other_notification(self, other: dict[str, Any]) -> None:
        try:
            euicc_cert = x509.load_der_x509_certificate(
                asn1.encode("Certificate", other["euiccCertificate"])
            )
            eum_cert = x509.load_der_x509_certificate(
                asn1.encode("Certificate", other["eumCertificate"])
            )
            verify_euicc_chain(euicc_cert, eum_cert, self.trusted_cis)
        except (asn1.Asn1Error, ValueError, x509.InvalidVersion, ChainError) as e:
            log.warning("notification with an unacceptable certificate chain ignored: %s", e)
            return
        tbs = other["tbsOtherNotification"]
        try:
            signed = asn1.encode("NotificationMetadata", tbs)
        except asn1.Asn1Error as e:
            log.warning("notification that does not re-encode ignored: %s", e)
            return
        if not _verify(euicc_cert, bytes(other["euiccNotificationSignature"]), signed):
            log.warning("notification with a bad signature ignored")
            return
        iccid = tbs.get("iccid")
        digits = (
            None
            if iccid is None
            else "".join(f"{b & 0xF:X}{b >> 4:X}" for b in bytes(iccid)).rstrip("F")
        )
        with self.store.transaction() as c:
            self._record(
                c,
                "other",
                "accepted",
                eid=eid_of(euicc_cert),
                iccid=digits,
                seq=tbs["seqNumber"],
                operation=_event_name(tbs["profileManagementOperation"]),
            )
        operation = _event_name(tbs["profileManagementOperation"])
        order = (
            None
            if digits is None
            else self.store.query_one("SELECT * FROM orders WHERE iccid = ?", (digits,))
        )
        if order is not None and operation in _OTHER_POINTS:
            self.notify_progress(order, _OTHER_POINTS[operation])

    def cancel_session(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES9+.CancelSession (SGP.22 §5.6.5)."""
        tid = _tid(body)
        raw = unb64(_field(body, "cancelSessionResponse"), "cancelSessionResponse")
        session = self._session(tid, _ACTIVE)
        kind, resp = _decode("CancelSessionResponse", raw, "cancelSessionResponse")
        if kind != "cancelSessionResponseOk":
            raise Es9Error.of(SC_TRANSACTION_UNKNOWN, f"the eUICC could not cancel (error {resp})")
        signed = resp["euiccCancelSessionSigned"]
        signed_raw = _first_inner(raw, 2)
        if bytes(signed["transactionId"]).hex().upper() != tid:
            raise Es9Error.of(SC_TRANSACTION_UNKNOWN, "the cancellation names another transaction")
        if session["euicc_cert"] is not None:
            cert = x509.load_der_x509_certificate(bytes(session["euicc_cert"]))
            if not _verify(cert, bytes(resp["euiccCancelSessionSignature"]), signed_raw):
                raise Es9Error.of(
                    SC_EUICC_SIGNATURE_INVALID, "euiccCancelSessionSignature does not verify"
                )
        creds = self._creds_for(bytes(session["ci_ski"]))
        if _oid_key(signed["smdpOid"]) != _oid_key(creds.smdp_oid):
            raise Es9Error.of(SC_SMDP_OID_INVALID, "the cancellation names another SM-DP+")
        with self.store.transaction() as c:
            c.execute(
                "UPDATE sessions SET state = ?, outcome = ?, updated = ? WHERE transaction_id = ?",
                (SessionState.CANCELLED, f"reason {signed['reason']}", self._clock(), tid),
            )
            if session["matching_id"] is not None:
                c.execute(
                    "UPDATE orders SET state = ?, updated = ? WHERE matching_id = ? AND state = ?",
                    (
                        OrderState.RELEASED,
                        self._clock(),
                        session["matching_id"],
                        OrderState.DOWNLOADED,
                    ),
                )
        return {"transactionId": tid}

    # -- HTTP ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ES9+ routes (SGP.22 §6.5) on the servers' web stack (`app.create_app`)."""
        from host.servers.smdpp.app import create_app

        return create_app(self)

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = True,
        allow_remote: bool = False,
    ) -> RoleServer:
        """A `RoleServer` for the ES9+ routes (not started: use `with` or `.start()`).

        Raises:
            ValueError: TLS asked for without a CERT.DPtls, or a host outside
                loopback without `allow_remote`.
            OSError: the port cannot be bound.
        """
        files: TlsFiles | None = None
        if tls:
            if self.tls is None:
                raise ValueError("no CERT.DPtls to serve HTTPS with")
            files = TlsFiles(self.tls.pem, self.tls.key_pem)
        return RoleServer(
            self.app(), host, port, tls=files, allow_remote=allow_remote, name="smdpp"
        )


#: what `stored_orders` and `cardemu smdpp` call an SM-DP+ database, and its tables
STORE_KIND = "an SM-DP+ store"
STORE_TABLES = ("orders", "sessions", "notifications")


def stored_orders(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The orders in an SM-DP+ store file, as `SmdpPlus.orders`, read without changing it.

    Raises:
        host.servers.readonly.NotAStore: no such file, or it is not an SM-DP+ store.
    """
    from host.servers.readonly import open_read_only
    from host.servers.web import is_store_url

    if is_store_url(path):  # a PostgreSQL database: read through the store (its schema added)
        with Store(path, _SCHEMA) as store:
            return SmdpPlus.orders_of(store)
    conn = open_read_only(path, what=STORE_KIND, tables=STORE_TABLES)
    try:
        rows = conn.execute(
            "SELECT matching_id, iccid, eid, state FROM orders ORDER BY matching_id"
        ).fetchall()
    finally:
        conn.close()
    return [
        {"matching_id": r["matching_id"], "iccid": r["iccid"], "eid": r["eid"], "state": r["state"]}
        for r in rows
    ]
