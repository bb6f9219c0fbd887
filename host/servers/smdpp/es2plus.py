"""ES2+: the operator's interface to the SM-DP+ (GSMA SGP.22 v2.x §5.3, JSON binding §6.5).

    es2 = Es2Plus(smdp)                          # the SM-DP+ side (its routes: app.py)
    es2.download_order({"header": ..., "eid": eid, "profileType": "cardemu"})
    es2.confirm_order({"header": ..., "iccid": iccid, "confirmationCode": "1234",
                       "smdsAddress": "localhost:8444", "releaseFlag": True})

    op = Es2Client("localhost:8443", requester="OPERATOR-1")   # the operator side
    iccid = op.download_order(eid=eid, profile_type="cardemu")

The profile states (§3.1.1) an order goes through here: available (in the
pool) → allocated (DownloadOrder; linked when it names an EID) → confirmed
(ConfirmOrder) → released (ConfirmOrder with releaseFlag, or ReleaseProfile)
→ downloaded → installed; CancelOrder puts it back in the pool or takes it out
of use. A released order with an SM-DS address registers its event there
(ES12); the SM-DP+ reports each step of the download to the operator that
ordered it with HandleDownloadProgressInfo (`OperatorLink`).

Every request carries the ES2+ `header` (functionRequesterIdentifier,
functionCallIdentifier); the requester is the operator that owns the order,
and only that operator may confirm, release or cancel it.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

from host.es9plus import (
    ES2P_PATHS,
    SC_BAD_REQUEST,
    SC_CONDITION_MISSING,
    SC_EID_INVALID,
    SC_EID_MISSING,
    SC_EID_OTHER_ASSOCIATED,
    SC_FIELD_MISSING,
    SC_ICCID_IN_USE,
    SC_ICCID_UNKNOWN,
    SC_MATCHING_ID_IN_USE,
    SC_MATCHING_ID_OTHER_ASSOCIATED,
    SC_ORDER_STATE_REFUSED,
    SC_PROFILE_TYPE_EXHAUSTED,
    SC_PROFILE_TYPE_UNKNOWN,
    Es9Error,
)
from host.lpa.es9 import Es9Client, Es9TransportError, HttpHook
from host.servers.web import Store

if TYPE_CHECKING:
    from host.servers.smdpp.server import SmdpPlus

__all__ = ["Es2Client", "Es2Plus", "OperatorLink", "ReportQueue"]

log = logging.getLogger(__name__)

_FINAL_STATES = ("Available", "Unavailable")


def _requester(body: dict[str, Any]) -> str:
    header = body.get("header")
    requester = header.get("functionRequesterIdentifier") if isinstance(header, dict) else None
    if not isinstance(requester, str) or not requester:
        raise Es9Error.of(SC_FIELD_MISSING, "header.functionRequesterIdentifier is missing")
    return requester


def _opt_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise Es9Error.of(SC_BAD_REQUEST, f"{name} is not a string")
    return value


def _iccid(body: dict[str, Any]) -> str:
    """The ICCID of an ES2+ request: its digits (18 to 20), a trailing F padding dropped."""
    value = _opt_text(body, "iccid")
    if not value:
        raise Es9Error.of(SC_FIELD_MISSING, "iccid is missing")
    digits = value[:-1] if value[-1] in "Ff" else value
    if not digits.isdigit() or len(digits) not in (18, 19, 20):
        raise Es9Error.of(SC_BAD_REQUEST, "iccid is not 18-20 digits")
    return digits


def _eid(body: dict[str, Any]) -> str | None:
    from host.pki import eid_is_valid

    eid = _opt_text(body, "eid")
    if eid is not None and not eid_is_valid(eid):
        raise Es9Error.of(SC_EID_INVALID, "the EID is not 32 digits with valid check digits")
    return eid


class Es2Plus:
    """The ES2+ functions of one SM-DP+ (JSON objects in and out, without the header)."""

    def __init__(self, smdp: SmdpPlus) -> None:
        self.smdp = smdp

    @property
    def _store(self) -> Any:
        return self.smdp.store

    def _order(self, iccid: str, requester: str) -> Any:
        row = self._store.query_one("SELECT * FROM orders WHERE iccid = ?", (iccid,))
        if row is None:
            raise Es9Error.of(SC_ICCID_UNKNOWN, f"no profile {iccid}")
        if row["operator"] != requester:
            # Another operator's order (or one no ES2+ operator made): as unknown to this
            # one as an absent profile.
            raise Es9Error.of(SC_ICCID_UNKNOWN, f"no profile {iccid} for {requester}")
        return row

    def download_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES2+.DownloadOrder (§5.3.1): reserve a profile, by ICCID or by profile type."""
        from host.servers.smdpp.server import OrderState

        requester = _requester(body)
        eid = _eid(body)
        iccid = _iccid(body) if body.get("iccid") is not None else None
        profile_type = _opt_text(body, "profileType")
        with self._store.transaction() as c:
            if iccid is not None:
                row = c.execute("SELECT * FROM orders WHERE iccid = ?", (iccid,)).fetchone()
                if row is None:
                    raise Es9Error.of(SC_ICCID_UNKNOWN, f"no profile {iccid}")
                if row["state"] != OrderState.AVAILABLE:
                    raise Es9Error.of(SC_ICCID_IN_USE, f"profile {iccid} is {row['state']}")
            elif profile_type:
                row = c.execute(
                    "SELECT * FROM orders WHERE state = ? AND profile_type = ?"
                    " ORDER BY iccid LIMIT 1",
                    (OrderState.AVAILABLE, profile_type),
                ).fetchone()
                if row is None:
                    # A type the SM-DP+ has profiles of, all taken: "no more Profile
                    # available" (8.2.5/3.7); a type it never had: "unknown" (8.2.5/3.9).
                    known = c.execute(
                        "SELECT 1 FROM orders WHERE profile_type = ? LIMIT 1", (profile_type,)
                    ).fetchone()
                    raise Es9Error.of(
                        SC_PROFILE_TYPE_EXHAUSTED if known else SC_PROFILE_TYPE_UNKNOWN,
                        f"no available profile of type {profile_type!r}",
                    )
            else:
                raise Es9Error.of(SC_CONDITION_MISSING, "give an iccid or a profileType")
            c.execute(
                "UPDATE orders SET state = ?, eid = ?, operator = ?, updated = ? WHERE iccid = ?",
                (OrderState.ALLOCATED, eid, requester, self.smdp._clock(), row["iccid"]),
            )
        return {"iccid": row["iccid"]}

    def confirm_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES2+.ConfirmOrder (§5.3.2): the matching ID, the confirmation code, the SM-DS.

        An absent matchingId is generated; an empty one ("") asks for the
        default-SM-DP+ flow and needs the EID (the LPA then sends no matching ID).
        With an smdsAddress the event is registered once the order is released.
        """
        from host.servers.smdpp.server import OrderState, cc_hash_of, pool_key

        requester = _requester(body)
        iccid = _iccid(body)
        eid = _eid(body)
        matching_id = _opt_text(body, "matchingId")
        cc = _opt_text(body, "confirmationCode")
        smds = _opt_text(body, "smdsAddress") or None
        release = body.get("releaseFlag")
        if release is None:
            raise Es9Error.of(SC_FIELD_MISSING, "releaseFlag is missing")
        if not isinstance(release, bool):
            raise Es9Error.of(SC_BAD_REQUEST, "releaseFlag is not a boolean")
        row = self._order(iccid, requester)
        if row["state"] != OrderState.ALLOCATED:
            raise Es9Error.of(SC_ORDER_STATE_REFUSED, f"profile {iccid} is {row['state']}")
        if eid is not None and row["eid"] is not None and eid != row["eid"]:
            raise Es9Error.of(SC_EID_OTHER_ASSOCIATED, "the order is linked to another EID")
        eid = eid or row["eid"]
        if (matching_id == "" or smds) and eid is None:
            raise Es9Error.of(SC_EID_MISSING, "the default SM-DP+ and SM-DS flows need the EID")
        # The key the order is stored under: the matching ID, or a generated one the
        # LPA never needs (the default SM-DP+ looks the EID up, SGP.22 §3.1.3.2).
        key = matching_id or secrets.token_hex(8).upper()
        if key == pool_key(iccid):
            raise Es9Error.of(SC_BAD_REQUEST, "that matching ID is reserved")
        state = OrderState.RELEASED if release else OrderState.CONFIRMED
        try:
            with self._store.transaction() as c:
                c.execute(
                    "UPDATE orders SET matching_id = ?, eid = ?, cc_hash = ?, cc_failures = 0,"
                    " smds_address = ?, state = ?, updated = ? WHERE iccid = ?",
                    (key, eid, cc_hash_of(cc), smds, state, self.smdp._clock(), iccid),
                )
        except Exception as e:  # the database's IntegrityError: the matching ID is taken
            if Store.is_conflict(e):
                raise Es9Error.of(SC_MATCHING_ID_IN_USE, f"matching ID {key!r} is taken") from None
            raise
        if release and smds:
            self._register_or_undo(key, smds, row)
        out: dict[str, Any] = {"matchingId": key if matching_id != "" else ""}
        out["smdpAddress"] = self.smdp.address
        if eid is not None:
            out["eid"] = eid
        return out

    def _register_or_undo(self, key: str, smds: str, before: Any) -> None:
        """Register the event; if the SM-DS refuses, the order goes back to `before`."""
        try:
            self.smdp.register_event(key, smds)
        except Es9Error:
            with self._store.transaction() as c:
                c.execute(
                    "UPDATE orders SET matching_id = ?, state = ?, updated = ? WHERE iccid = ?",
                    (before["matching_id"], before["state"], self.smdp._clock(), before["iccid"]),
                )
            raise

    def release_profile(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES2+.ReleaseProfile (§5.3.4): a confirmed order becomes downloadable."""
        from host.servers.smdpp.server import OrderState

        requester = _requester(body)
        row = self._order(_iccid(body), requester)
        if row["state"] != OrderState.CONFIRMED:
            raise Es9Error.of(SC_ORDER_STATE_REFUSED, f"profile {row['iccid']} is {row['state']}")
        with self._store.transaction() as c:
            c.execute(
                "UPDATE orders SET state = ?, updated = ? WHERE iccid = ?",
                (OrderState.RELEASED, self.smdp._clock(), row["iccid"]),
            )
        if row["smds_address"]:
            try:
                self.smdp.register_event(row["matching_id"], row["smds_address"])
            except Es9Error:
                with self._store.transaction() as c:
                    c.execute(
                        "UPDATE orders SET state = ? WHERE iccid = ?",
                        (OrderState.CONFIRMED, row["iccid"]),
                    )
                raise
        return {}

    def cancel_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """ES2+.CancelOrder (§5.3.3): back to the pool ("Available") or out of use."""
        from host.servers.smdpp.server import DOWNLOADABLE, OrderState, pool_key

        requester = _requester(body)
        row = self._order(_iccid(body), requester)
        final = body.get("finalProfileStatusIndicator")
        if final is None:
            raise Es9Error.of(SC_FIELD_MISSING, "finalProfileStatusIndicator is missing")
        if final not in _FINAL_STATES:
            raise Es9Error.of(
                SC_BAD_REQUEST, "finalProfileStatusIndicator is Available or Unavailable"
            )
        eid = _eid(body)
        if eid is not None and row["eid"] not in (None, eid):
            raise Es9Error.of(SC_EID_OTHER_ASSOCIATED, "the order is linked to another EID")
        matching_id = _opt_text(body, "matchingId")
        if matching_id and matching_id != row["matching_id"]:
            raise Es9Error.of(SC_MATCHING_ID_OTHER_ASSOCIATED, "the order has another matching ID")
        allowed = (OrderState.ALLOCATED, OrderState.CONFIRMED, *DOWNLOADABLE, OrderState.ERROR)
        if row["state"] not in allowed:
            raise Es9Error.of(SC_ORDER_STATE_REFUSED, f"profile {row['iccid']} is {row['state']}")
        self.smdp.delete_event(row)
        with self._store.transaction() as c:
            if final == "Available":
                c.execute(
                    "UPDATE orders SET matching_id = ?, state = ?, eid = NULL, operator = NULL,"
                    " cc_hash = NULL, cc_failures = 0, smds_address = NULL, event_id = NULL,"
                    " updated = ? WHERE iccid = ?",
                    (
                        pool_key(row["iccid"]),
                        OrderState.AVAILABLE,
                        self.smdp._clock(),
                        row["iccid"],
                    ),
                )
            else:
                c.execute(
                    "UPDATE orders SET state = ?, updated = ? WHERE iccid = ?",
                    (OrderState.UNAVAILABLE, self.smdp._clock(), row["iccid"]),
                )
            # Sessions still running for it end (SGP.22 §3.1.3: a cancelled order
            # cannot be downloaded any more).
            c.execute(
                "UPDATE sessions SET state = 'cancelled', outcome = 'order cancelled'"
                " WHERE matching_id = ? AND state IN ('initiated', 'authenticated', 'bound')",
                (row["matching_id"],),
            )
        return {}


class OperatorLink:
    """Where an SM-DP+ sends one operator's HandleDownloadProgressInfo (ES2+, §5.3.5).

    Args:
        address: the operator's ES2+ endpoint (`host:port`).
        ca_pem: PEM certificates trusted for TLS; None: the system's.
        tls: False for plain HTTP (a test operator).
        connect_to: connect there instead.
        hook: wraps every HTTP exchange.
    """

    def __init__(
        self,
        address: str,
        *,
        ca_pem: bytes | str | None = None,
        tls: bool = True,
        connect_to: tuple[str, int] | None = None,
        hook: HttpHook | None = None,
    ) -> None:
        self.address = address
        self.ca_pem, self.tls, self.connect_to, self.hook = ca_pem, tls, connect_to, hook

    def send(self, requester: str, body: dict[str, Any]) -> bool:
        """Deliver one notification; False (and a log line) when it could not be."""
        client = Es9Client(
            self.address,
            ca_pem=self.ca_pem,
            tls=self.tls,
            connect_to=self.connect_to,
            hook=self.hook,
            timeout=5.0,
            paths=ES2P_PATHS,
            requester=requester,
        )
        try:
            client.call("handleDownloadProgressInfo", body)
        except (Es9Error, Es9TransportError) as e:
            log.warning("HandleDownloadProgressInfo to %s not delivered: %s", self.address, e)
            return False
        return True


class ReportQueue:
    """HandleDownloadProgressInfo reports waiting to go, sent in order by one daemon thread.

    The thread starts with the first report. Delivery is best effort (SGP.22
    §5.3.5 has no retry): a report that fails is logged by `OperatorLink.send`.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[OperatorLink, str, dict[str, Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, link: OperatorLink, requester: str, body: dict[str, Any]) -> None:
        """Queue one report."""
        self._queue.put((link, requester, body))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cardemu-es2-reports", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            link, requester, body = self._queue.get()
            try:
                link.send(requester, body)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the reports queued so far; False if some remain after `timeout`."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True


class Es2Client:
    """The operator's ES2+ calls to an SM-DP+ (§5.3).

    Args:
        address: the SM-DP+'s ES2+ address (`host:port`).
        requester: the operator's functionRequesterIdentifier.
        ca_pem, tls, connect_to, hook: as `Es9Client`'s.
    """

    def __init__(
        self,
        address: str,
        *,
        requester: str,
        ca_pem: bytes | str | None = None,
        tls: bool = True,
        connect_to: tuple[str, int] | None = None,
        hook: HttpHook | None = None,
    ) -> None:
        self._client = Es9Client(
            address,
            ca_pem=ca_pem,
            tls=tls,
            connect_to=connect_to,
            hook=hook,
            paths=ES2P_PATHS,
            requester=requester,
        )

    def call(self, function: str, body: dict[str, Any]) -> dict[str, Any]:
        """One ES2+ function; its answer without the header.

        Raises:
            Es9Error: the SM-DP+ refused (its status codes).
            Es9TransportError: no answer.
        """
        return self._client.call(function, {k: v for k, v in body.items() if v is not None}) or {}

    def download_order(
        self, *, eid: str | None = None, iccid: str | None = None, profile_type: str | None = None
    ) -> str:
        """DownloadOrder: the ICCID of the profile reserved."""
        answer = self.call(
            "downloadOrder", {"eid": eid, "iccid": iccid, "profileType": profile_type}
        )
        return str(answer["iccid"])

    def confirm_order(
        self,
        iccid: str,
        *,
        release: bool = True,
        eid: str | None = None,
        matching_id: str | None = None,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
    ) -> dict[str, Any]:
        """ConfirmOrder: {"matchingId", "smdpAddress", "eid"?}."""
        return self.call(
            "confirmOrder",
            {
                "iccid": iccid,
                "eid": eid,
                "matchingId": matching_id,
                "confirmationCode": confirmation_code,
                "smdsAddress": smds_address,
                "releaseFlag": release,
            },
        )

    def release_profile(self, iccid: str) -> None:
        """ReleaseProfile."""
        self.call("releaseProfile", {"iccid": iccid})

    def cancel_order(self, iccid: str, *, available: bool = True, eid: str | None = None) -> None:
        """CancelOrder: back to the pool (`available`) or out of use."""
        self.call(
            "cancelOrder",
            {
                "iccid": iccid,
                "eid": eid,
                "finalProfileStatusIndicator": "Available" if available else "Unavailable",
            },
        )
