"""The Local Profile Assistant: profile download (GSMA SGP.22 v2.x §3.1.3) and local management.

    with Es10Client(reader) as es10:
        lpa = Lpa(es10, ca_pem=ci_pem, on_step=print)
        result = lpa.download("LPA:1$smdp.example.com$MATCHING-ID")
        lpa.enable(result.iccid)

`download` runs the common mutual authentication and the download of SGP.22
§3.1.3, each step an ES10 call to the eUICC or an ES9+ call to the SM-DP+,
reported to `on_step`:

    ES10b.GetEUICCChallenge, ES10b.GetEUICCInfo1
    ES9+.InitiateAuthentication
    ES10b.AuthenticateServer
    ES9+.AuthenticateClient            (the profile's metadata: confirm here)
    ES10b.PrepareDownload
    ES9+.GetBoundProfilePackage
    ES10b.LoadBoundProfilePackage      (segment by segment)
    ES9+.HandleNotification            (the ProfileInstallationResult)
    ES10b.RemoveNotificationFromList

The LPA forwards the eUICC's and the SM-DP+'s objects as the bytes it got:
their signatures cover those bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from card.sgp22 import asn1
from host.es9plus import Es9Error, b64, unb64
from host.lpa.es9 import ES11_PATHS, Es9Client, Es9TransportError, HttpHook
from host.lpa.es10 import Es10Client, Es10Error, decode_lenient, iccid_from_ef, result_name

__all__ = [
    "ActivationCode",
    "DownloadResult",
    "Lpa",
    "LpaError",
    "Step",
    "DEFAULT_DEVICE_INFO",
    "profile_summary",
    "notification_summary",
]

# A device that says nothing about its radios: SGP.22 DeviceInfo with a TAC only.
DEFAULT_TAC = bytes.fromhex("35290611")
DEFAULT_DEVICE_INFO: dict[str, Any] = {"tac": DEFAULT_TAC, "deviceCapabilities": {}}
_STATES = {0: "disabled", 1: "enabled"}
_CLASSES = {0: "test", 1: "provisioning", 2: "operational"}
_EVENTS = ("install", "enable", "disable", "delete")


class LpaError(Exception):
    """A download or management step failed; `step` names it."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass(frozen=True)
class Step:
    """One step of a download, for progress output.

    Attributes:
        interface: "ES10b", "ES10c", "ES9+" or "LPA".
        function: e.g. "AuthenticateServer".
        detail: one line on what came back.
    """

    interface: str
    function: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.interface}.{self.function}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class ActivationCode:
    """An activation code (SGP.22 §4.1): `LPA:1$<SM-DP+ address>$<matching ID>[$<OID>[$1]]`."""

    address: str
    matching_id: str
    smdp_oid: str | None = None
    cc_required: bool = False

    @classmethod
    def parse(cls, text: str) -> ActivationCode:
        """Parse the text of an activation code (with or without its `LPA:` prefix).

        Raises:
            ValueError: not format "1", or no SM-DP+ address.
        """
        body = text.strip()
        if body[:4].upper() == "LPA:":
            body = body[4:]
        parts = body.split("$")
        if len(parts) < 2 or parts[0] != "1":
            raise ValueError("an activation code reads 1$<SM-DP+ address>$<matching ID>")
        if not parts[1]:
            raise ValueError("the activation code has no SM-DP+ address")
        oid = parts[3] if len(parts) > 3 and parts[3] else None
        cc = len(parts) > 4 and parts[4] == "1"
        return cls(parts[1], parts[2] if len(parts) > 2 else "", oid, cc)

    def __str__(self) -> str:
        return f"LPA:1${self.address}${self.matching_id}"


@dataclass
class DownloadResult:
    """What a download ended with.

    Attributes:
        transaction_id: the SM-DP+'s session (hex).
        iccid: the profile's ICCID (from the metadata).
        installed: the eUICC reported success.
        isdp_aid: the new profile's ISD-P AID, on success.
        error: (bppCommandId, errorReason) names, on failure.
        metadata: the profile's StoreMetadataRequest, decoded.
        notified: the installation result reached the SM-DP+.
    """

    transaction_id: str
    iccid: str
    installed: bool
    isdp_aid: bytes | None = None
    error: tuple[str, str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    notified: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "transactionId": self.transaction_id,
            "iccid": self.iccid,
            "installed": self.installed,
            "isdpAid": None if self.isdp_aid is None else self.isdp_aid.hex().upper(),
            "error": None
            if self.error is None
            else {"bppCommandId": self.error[0], "errorReason": self.error[1]},
            "serviceProviderName": self.metadata.get("serviceProviderName"),
            "profileName": self.metadata.get("profileName"),
            "notified": self.notified,
        }


def profile_summary(info: dict[str, Any]) -> dict[str, Any]:
    """A ProfileInfo (ES10c.GetProfilesInfo) as JSON-ready values."""
    return {
        "iccid": iccid_from_ef(info["iccid"]) if "iccid" in info else None,
        "isdpAid": info["isdpAid"].hex().upper() if "isdpAid" in info else None,
        "state": _STATES.get(info.get("profileState", -1), info.get("profileState")),
        "nickname": info.get("profileNickname"),
        "serviceProviderName": info.get("serviceProviderName"),
        "profileName": info.get("profileName"),
        "class": _CLASSES.get(info.get("profileClass", 2), info.get("profileClass")),
    }


def _event_names(bits: Any) -> list[str]:
    data, _ = bits
    byte = data[0] if data else 0
    return [n for i, n in enumerate(_EVENTS) if byte & (0x80 >> i)]


def notification_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """A NotificationMetadata (ES10b.ListNotification) as JSON-ready values."""
    return {
        "seqNumber": meta["seqNumber"],
        "operation": "+".join(_event_names(meta["profileManagementOperation"])),
        "address": meta["notificationAddress"],
        "iccid": iccid_from_ef(meta["iccid"]) if meta.get("iccid") is not None else None,
    }


class Lpa:
    """The LPA: an ES10 client to the eUICC, ES9+ clients to SM-DP+ servers.

    Args:
        es10: an open `Es10Client`.
        ca_pem: the CI certificates (PEM) that TLS to SM-DP+ servers is checked against.
        connect_to: send every ES9+ connection to this (host, port) instead.
        tls: False for plain HTTP to the SM-DP+ (tests behind no TLS only).
        device_info: SGP.22 DeviceInfo for ctxParams1.
        on_step: called with each `Step` as it completes.
        confirm: shown the profile metadata after AuthenticateClient; False cancels the download.
        http_hook: wraps every ES9+ HTTP exchange (a scenario's recorder, fault injection).
    """

    def __init__(
        self,
        es10: Es10Client,
        *,
        ca_pem: bytes | str | None = None,
        connect_to: tuple[str, int] | None = None,
        tls: bool = True,
        device_info: dict[str, Any] | None = None,
        on_step: Callable[[Step], None] | None = None,
        confirm: Callable[[dict[str, Any]], bool] | None = None,
        http_hook: HttpHook | None = None,
    ) -> None:
        self.es10 = es10
        self.http_hook = http_hook
        self.ca_pem = ca_pem
        self.connect_to = connect_to
        self.tls = tls
        self.device_info = dict(device_info or DEFAULT_DEVICE_INFO)
        self.on_step = on_step
        self.confirm = confirm

    def _step(self, interface: str, function: str, detail: str = "") -> None:
        if self.on_step is not None:
            self.on_step(Step(interface, function, detail))

    def es9(self, address: str) -> Es9Client:
        """An ES9+ client for one SM-DP+ address, with this LPA's TLS settings."""
        return Es9Client(
            address,
            ca_pem=self.ca_pem,
            connect_to=self.connect_to,
            tls=self.tls,
            hook=self.http_hook,
        )

    # -- download ---------------------------------------------------------------------

    def download(
        self, code: str | ActivationCode, *, confirmation_code: str | None = None
    ) -> DownloadResult:
        """Download and install the profile an activation code points to (SGP.22 §3.1.3).

        Raises:
            Es9Error: the SM-DP+ refused a step (its status codes).
            Es9TransportError: the SM-DP+ could not be reached or spoke no ES9+.
            LpaError: the eUICC refused a step, or the download was declined.
            ApduError: an APDU failed.
        """
        ac = ActivationCode.parse(code) if isinstance(code, str) else code
        # One HTTPS connection for the whole download, closed at its end (`Es9Client`).
        with self.es9(ac.address) as es9:
            tid, r2 = self._authenticate(
                es9,
                "ES9+",
                {"smdpAddress": ac.address},
                ac.matching_id,
                ("profileMetadata", "smdpSigned2", "smdpSignature2", "smdpCertificate"),
            )
            metadata, hash_cc = self._confirm_download(es9, tid, r2, confirmation_code)
            bpp = self._bound_profile_package(es9, tid, r2, hash_cc)
            res, pir, seq = self._install(tid, metadata, bpp)
            self._notify(es9, res, pir, seq)
        return res

    def _confirm_download(
        self, es9: Es9Client, tid: str, r2: dict[str, Any], confirmation_code: str | None
    ) -> tuple[dict[str, Any], bytes | None]:
        """Download confirmation (SGP.22 §3.1.3): the profile metadata shown, the user's
        consent, and hashCc when the SM-DP+ asks for a confirmation code.

        Returns:
            (the StoreMetadataRequest, hashCc or None).
        """
        metadata = asn1.decode(
            "StoreMetadataRequest", unb64(r2["profileMetadata"], "profileMetadata")
        )
        iccid = iccid_from_ef(metadata["iccid"])
        self._step(
            "ES9+",
            "AuthenticateClient",
            f'profile {iccid} "{metadata.get("profileName", "")}" '
            f"from {metadata.get('serviceProviderName', '')}",
        )
        signed2 = asn1.decode("SmdpSigned2", unb64(r2["smdpSigned2"], "smdpSigned2"))
        hash_cc = None
        if signed2["ccRequiredFlag"]:
            if confirmation_code is None:
                self._cancel(es9, tid, 1, "a confirmation code is required")
                raise LpaError("AuthenticateClient", "the SM-DP+ requires a confirmation code")
            # SGP.22 §3.1.3.4: hashCc = SHA-256(SHA-256(CC) || transactionId).
            hash_cc = hashlib.sha256(
                hashlib.sha256(confirmation_code.encode()).digest() + bytes.fromhex(tid)
            ).digest()
        if self.confirm is not None and not self.confirm(metadata):
            self._cancel(es9, tid, 0, "declined")
            raise LpaError("AuthenticateClient", "the download was declined")
        return metadata, hash_cc

    def _bound_profile_package(
        self, es9: Es9Client, tid: str, r2: dict[str, Any], hash_cc: bytes | None
    ) -> bytes:
        """ES10b.PrepareDownload, then ES9+.GetBoundProfilePackage (SGP.22 §3.1.3).

        The eUICC's answer goes to the SM-DP+ even when it is an error, so that the
        SM-DP+ closes the session; the LPA then stops.
        """
        pdr = self.es10.prepare_download(
            unb64(r2["smdpSigned2"], "smdpSigned2"),
            unb64(r2["smdpSignature2"], "smdpSignature2"),
            unb64(r2["smdpCertificate"], "smdpCertificate"),
            hash_cc,
        )
        kind, value = asn1.decode("PrepareDownloadResponse", pdr)
        detail = (
            f"otPK.EUICC.ECKA {len(value['euiccSigned2']['euiccOtpk'])} bytes, euiccSignature2 made"
            if kind == "downloadResponseOk"
            else f"refused: error {value['downloadErrorCode']}"
        )
        self._step("ES10b", "PrepareDownload", detail)
        r3 = es9.require(
            "getBoundProfilePackage",
            {"transactionId": tid, "prepareDownloadResponse": b64(pdr)},
            "boundProfilePackage",
        )
        if kind != "downloadResponseOk":
            raise LpaError("PrepareDownload", f"eUICC error {value['downloadErrorCode']}")
        bpp = unb64(r3["boundProfilePackage"], "boundProfilePackage")
        self._step("ES9+", "GetBoundProfilePackage", f"BPP of {len(bpp)} bytes")
        return bpp

    def _install(
        self, tid: str, metadata: dict[str, Any], bpp: bytes
    ) -> tuple[DownloadResult, bytes, int]:
        """ES10b.LoadBoundProfilePackage (SGP.22 §3.1.3): the profile installed, or not.

        Returns:
            (the result, the ProfileInstallationResult as sent, its notification's seqNumber).
        """
        pir = self.es10.load_bound_profile_package(bpp)
        data = asn1.decode("ProfileInstallationResult", pir)["profileInstallationResultData"]
        result_kind, result = data["finalResult"]
        iccid = iccid_from_ef(metadata["iccid"])
        res = DownloadResult(tid, iccid, result_kind == "successResult", metadata=dict(metadata))
        if res.installed:
            res.isdp_aid = bytes(result["aid"])
            self._step(
                "ES10b",
                "LoadBoundProfilePackage",
                f"installed in ISD-P {res.isdp_aid.hex().upper()}",
            )
        else:
            res.error = (
                _named("BppCommandId", result["bppCommandId"]),
                _named("ErrorReason", result["errorReason"]),
            )
            self._step(
                "ES10b", "LoadBoundProfilePackage", f"failed at {res.error[0]}: {res.error[1]}"
            )
        return res, pir, data["notificationMetadata"]["seqNumber"]

    def _notify(self, es9: Es9Client, res: DownloadResult, pir: bytes, seq: int) -> None:
        """ES9+.HandleNotification, then ES10b.RemoveNotificationFromList (SGP.22 §3.1.3, §3.5):
        the result goes to the SM-DP+ and then leaves the eUICC's list; kept when undelivered."""
        try:
            es9.call("handleNotification", {"pendingNotification": b64(pir)})
            res.notified = True
            self._step("ES9+", "HandleNotification", "installation result delivered")
            self.es10.remove_notification(seq)
            self._step("ES10b", "RemoveNotificationFromList", f"seqNumber {seq}")
        except (Es9Error, Es9TransportError, Es10Error) as e:
            self._step("ES9+", "HandleNotification", f"not delivered ({e}); kept on the eUICC")

    def _authenticate(
        self,
        client: Es9Client,
        interface: str,
        address_field: dict[str, str],
        matching_id: str,
        answer_fields: tuple[str, ...],
    ) -> tuple[str, dict[str, Any]]:
        """The common mutual authentication (SGP.22 §3.1.2) with an SM-DP+ or an SM-DS.

        Returns:
            (transactionId, the AuthenticateClient answer).
        """
        es10 = self.es10
        challenge = es10.get_euicc_challenge()
        self._step("ES10b", "GetEUICCChallenge", f"euiccChallenge {challenge.hex().upper()}")
        info1 = es10.get_euicc_info1()
        pkids = asn1.decode("EUICCInfo1", info1)["euiccCiPKIdListForVerification"]
        self._step(
            "ES10b",
            "GetEUICCInfo1",
            f"{len(pkids)} CI key(s): " + ", ".join(k.hex()[:8].upper() for k in pkids),
        )
        r1 = client.require(
            "initiateAuthentication",
            {"euiccChallenge": b64(challenge), "euiccInfo1": b64(info1), **address_field},
            "transactionId",
            "serverSigned1",
            "serverSignature1",
            "euiccCiPKIdToBeUsed",
            "serverCertificate",
        )
        tid = str(r1["transactionId"]).upper()
        signed1 = unb64(r1["serverSigned1"], "serverSigned1")
        decoded1 = asn1.decode("ServerSigned1", signed1)
        # SGP.22 §5.6.1: the LPA checks the answer belongs to this request.
        if (
            decoded1["transactionId"].hex().upper() != tid
            or decoded1["euiccChallenge"] != challenge
        ):
            raise LpaError("InitiateAuthentication", "serverSigned1 does not match this request")
        self._step(
            interface,
            "InitiateAuthentication",
            f"transactionId {tid}, server {decoded1['serverAddress']}",
        )
        asr = es10.authenticate_server(
            signed1,
            unb64(r1["serverSignature1"], "serverSignature1"),
            unb64(r1["euiccCiPKIdToBeUsed"], "euiccCiPKIdToBeUsed"),
            unb64(r1["serverCertificate"], "serverCertificate"),
            matching_id or None,
            self.device_info,
        )
        kind, value = decode_lenient("AuthenticateServerResponse", asr)
        if kind != "authenticateResponseOk":
            self._step(
                "ES10b", "AuthenticateServer", f"refused: error {value['authenticateErrorCode']}"
            )
        else:
            self._step("ES10b", "AuthenticateServer", "server authenticated, euiccSignature1 made")
        r2 = client.require(
            "authenticateClient",
            {"transactionId": tid, "authenticateServerResponse": b64(asr)},
            *answer_fields,
        )
        if kind != "authenticateResponseOk":
            raise LpaError("AuthenticateServer", f"eUICC error {value['authenticateErrorCode']}")
        return tid, r2

    # -- event retrieval (SM-DS, ES11) --------------------------------------------------

    def es11(self, address: str) -> Es9Client:
        """An ES11 client for one SM-DS address, with this LPA's TLS settings."""
        return Es9Client(
            address,
            ca_pem=self.ca_pem,
            connect_to=self.connect_to,
            tls=self.tls,
            hook=self.http_hook,
            paths=ES11_PATHS,
        )

    def discover(
        self, smds_address: str | None = None, *, follow: bool = True
    ) -> list[dict[str, Any]]:
        """Retrieve the eUICC's events from an SM-DS (SGP.22 §3.6.3, ES11 + ES10b).

        Args:
            smds_address: the SM-DS to ask (default: the eUICC's root SM-DS, ES10a).
            follow: an event whose address is an alternative SM-DS is followed
                there (ES11 again, with the EventID as matching ID) to the SM-DP+
                it leads to. An address that answers no ES11 (an SM-DP+ answers
                404) is taken as the SM-DP+: SGP.22 v2 event records do not say
                which kind of server they name.

        Returns:
            One entry per event: eventId, rspServerAddress (the SM-DP+), and `via`,
            the SM-DS addresses asked on the way.

        Raises:
            Es9Error: an SM-DS refused (its status codes).
            Es9TransportError: the first SM-DS could not be reached.
            LpaError: the eUICC refused a step.
        """
        address = smds_address or str(self.es10.get_configured_addresses()["rootDsAddress"])
        self._step("ES10a", "GetEuiccConfiguredAddresses", f"SM-DS {address}")
        return self._events(address, "", [address] if follow else None)

    def _events(self, address: str, event_id: str, via: list[str] | None) -> list[dict[str, Any]]:
        with self.es11(address) as es11:
            _, r2 = self._authenticate(
                es11, "ES11", {"smdsAddress": address}, event_id, ("eventEntries",)
            )
        entries = r2["eventEntries"]
        if not isinstance(entries, list):
            raise Es9TransportError("ES11.AuthenticateClient: eventEntries is not a list")
        self._step("ES11", "AuthenticateClient", f"{len(entries)} event(s)")
        out: list[dict[str, Any]] = []
        for e in entries:
            if not isinstance(e, dict):
                raise Es9TransportError("ES11.AuthenticateClient: an event entry is not an object")
            eid_, server = str(e.get("eventId", "")), str(e.get("rspServerAddress", ""))
            if via is not None and server not in via:
                try:
                    out += self._events(server, eid_, [*via, server])
                    continue
                except Es9TransportError as err:
                    # No ES11 there (an SM-DP+ answers 404, or is not up yet): the event
                    # is collected there, by the download that follows.
                    self._step("ES11", "InitiateAuthentication", f"{server}: no SM-DS ({err})")
            out.append({"eventId": eid_, "rspServerAddress": server, "via": list(via or [address])})
        return out

    def _cancel(self, es9: Es9Client, tid: str, reason: int, why: str) -> None:
        """ES10b.CancelSession then ES9+.CancelSession (SGP.22 §3.1.3.3), best effort."""
        try:
            resp = self.es10.cancel_session(bytes.fromhex(tid), reason)
            self._step("ES10b", "CancelSession", why)
            es9.call("cancelSession", {"transactionId": tid, "cancelSessionResponse": b64(resp)})
            self._step("ES9+", "CancelSession", "session ended")
        except (Es9Error, Es9TransportError, Es10Error) as e:
            self._step("LPA", "CancelSession", f"incomplete: {e}")

    # -- local management (ES10c) and notifications -----------------------------------

    def eid(self) -> str:
        """The eUICC's EID."""
        return self.es10.get_eid()

    def info(self) -> dict[str, Any]:
        """EID, EUICCInfo2 and the configured addresses, JSON-ready."""
        info2 = self.es10.get_euicc_info2()
        addresses = self.es10.get_configured_addresses()
        return {
            "eid": self.es10.get_eid(),
            "svn": _version(info2["svn"]),
            "profileVersion": _version(info2["profileVersion"]),
            "firmwareVersion": _version(info2["euiccFirmwareVer"]),
            "ciKeysForVerification": [
                k.hex().upper() for k in info2["euiccCiPKIdListForVerification"]
            ],
            "ciKeysForSigning": [k.hex().upper() for k in info2["euiccCiPKIdListForSigning"]],
            "ppVersion": _version(info2["ppVersion"]),
            "sasAccreditationNumber": info2["sasAcreditationNumber"],
            "defaultDpAddress": addresses.get("defaultDpAddress"),
            "rootDsAddress": addresses.get("rootDsAddress"),
        }

    def profiles(self) -> list[dict[str, Any]]:
        """The installed profiles (ES10c.GetProfilesInfo), JSON-ready."""
        return [profile_summary(p) for p in self.es10.get_profiles_info()]

    def enable(self, iccid: str) -> None:
        self.es10.enable_profile(iccid)

    def disable(self, iccid: str) -> None:
        self.es10.disable_profile(iccid)

    def delete(self, iccid: str) -> None:
        self.es10.delete_profile(iccid)

    def nickname(self, iccid: str, nickname: str) -> None:
        self.es10.set_nickname(iccid, nickname)

    def notifications(self) -> list[dict[str, Any]]:
        """The notifications pending on the eUICC (ES10b.ListNotification), JSON-ready."""
        return [notification_summary(n) for n in self.es10.list_notifications()]

    def send_notifications(self, seq: int | None = None) -> list[dict[str, Any]]:
        """Deliver pending notifications to their SM-DP+ and remove the delivered ones (§3.5).

        Returns:
            One entry per notification: its summary and "sent" or the error.
        """
        out: list[dict[str, Any]] = []
        with contextlib.ExitStack() as open_clients:
            clients: dict[str, Es9Client] = {}
            for meta in self.es10.list_notifications():
                self._send_notification(meta, seq, clients, open_clients, out)
        return out

    def _send_notification(
        self,
        meta: dict[str, Any],
        seq: int | None,
        clients: dict[str, Es9Client],
        open_clients: contextlib.ExitStack,
        out: list[dict[str, Any]],
    ) -> None:
        """One notification of `send_notifications`; one connection per SM-DP+ address."""
        summary = notification_summary(meta)
        if seq is not None and summary["seqNumber"] != seq:
            return
        pending = self.es10.retrieve_notifications(summary["seqNumber"])
        if not pending:
            summary["result"] = "gone"
            out.append(summary)
            return
        address = summary["address"]
        if address not in clients:
            clients[address] = open_clients.enter_context(self.es9(address))
        try:
            clients[address].call("handleNotification", {"pendingNotification": b64(pending[0])})
            self.es10.remove_notification(summary["seqNumber"])
            summary["result"] = "sent"
            self._step(
                "ES9+",
                "HandleNotification",
                f"#{summary['seqNumber']} {summary['operation']} sent",
            )
        except (Es9Error, Es9TransportError) as e:
            summary["result"] = f"not sent: {e}"
            self._step("ES9+", "HandleNotification", f"#{summary['seqNumber']} not sent: {e}")
        out.append(summary)


def _version(v: bytes) -> str:
    return ".".join(str(b) for b in bytes(v))


def _named(type_name: str, value: int) -> str:
    """A BppCommandId / ErrorReason as SGP.22 Annex H names it (the number if it names none)."""
    if isinstance(value, str):
        return value
    return result_name(value, type_name) or str(value)
