"""ES10a/b/c: the LPA's commands to the ISD-R (GSMA SGP.22 v2.x §5.7, §5.8), over any reader.

Every ES10 function is one DER request sent with STORE DATA (GlobalPlatform
Card Specification §11.11; SGP.22 §5.7.2): CLA '80' on the logical channel
(CLA '81' on channel 1, as LPAs use), INS 'E2', P1 '11' for a block with more
to come and '91' for the last one, P2 the block number from 0; the answer
comes back as the response data (61xx and GET RESPONSE when long).

    with Es10Client(reader) as es10:      # MANAGE CHANNEL, SELECT ISD-R
        eid = es10.get_eid()
        for p in es10.get_profiles_info():
            ...

Results are the decoded ASN.1 values of `card.sgp22.asn1` (dicts, CHOICEs as
(name, value) tuples) or, where the LPA forwards them to the SM-DP+, the raw
DER exactly as the eUICC sent it (its signatures cover those bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from card.apdu import cla_with_channel
from card.sgp22 import asn1
from card.tlv import TlvError, decode_length, decode_tag, encode_length, encode_tag
from host.errors import ApduError
from host.readers.base import Reader, ReaderError
from host.session import ApduSession

__all__ = [
    "ISDR_AID",
    "Es10Client",
    "Es10Error",
    "Es10Exchange",
    "bpp_segments",
    "decode_lenient",
    "iccid_from_ef",
    "iccid_to_ef",
    "result_name",
    "split_tlvs",
]

ISDR_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
INS_STORE_DATA = 0xE2
BLOCK_SIZE = 255

Tracer = Callable[["Es10Exchange"], None]


class Es10Error(Exception):
    """An ES10 function the eUICC answered with an error result (not an APDU failure).

    Attributes:
        function: e.g. "EnableProfile".
        code: the function's result or error code (SGP.22 ASN.1 INTEGER values).
        name: the code's name in the ASN.1 module, when known.
    """

    def __init__(self, function: str, code: int, name: str = "") -> None:
        super().__init__(f"{function}: eUICC answered {name or 'error'} ({code})")
        self.function = function
        self.code = code
        self.name = name


@dataclass(frozen=True)
class Es10Exchange:
    """One ES10 function as it went over the wire, for traces."""

    function: str
    request: bytes
    response: bytes


def result_name(code: int, type_name: str, *path: str) -> str:
    """The name SGP.22 Annex H gives an ES10 result code ("" if it names none).

    Args:
        code: the number the eUICC answered.
        type_name, path: where the INTEGER is declared (`card.sgp22.asn1.named_numbers`),
            e.g. "EnableProfileResponse", "enableResult".
    """
    return {v: k for k, v in asn1.named_numbers(type_name, *path).items()}.get(code, "")


def iccid_to_ef(iccid: str) -> bytes:
    """ICCID digits as SGP.22's Iccid (tag 5A): swapped BCD, F-padded to 10 bytes."""
    digits = iccid.upper() + "F" * (20 - len(iccid))
    if len(digits) != 20 or any(c not in "0123456789F" for c in digits):
        raise ValueError(f"an ICCID has up to 20 decimal digits, not {iccid!r}")
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, 20, 2)))


def iccid_from_ef(data: bytes) -> str:
    """The digits of an Iccid value (swapped BCD, F padding removed)."""
    return "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in data).rstrip("F")


def decode_lenient(type_name: str, data: bytes) -> Any:
    """Decode an RSPDefinitions value without its size constraints (see `authenticate_server`).

    Raises:
        asn1.Asn1DecodeError: not a valid encoding, bytes left over, or over the decode limits.
    """
    return asn1.decode(type_name, data, constraints=False)


def _tlv(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def split_tlvs(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The data objects of `data` back to back: (tag, header, whole TLV) each, bytes as they are.

    Raises:
        ValueError: not a series of well-formed BER-TLVs.
    """
    out = []
    p = 0
    try:
        while p < len(data):
            tag, q = decode_tag(data, p)
            n, q = decode_length(data, q)
            if q + n > len(data):
                raise ValueError("a length runs past the data")
            out.append((tag, data[p:q], data[p : q + n]))
            p = q + n
    except TlvError as e:
        raise ValueError(str(e)) from None
    return out


def _value(data: bytes) -> bytes:
    """The value of the one TLV `data` is."""
    ((_, header, whole),) = split_tlvs(data)
    return whole[len(header) :]


def bpp_segments(bpp: bytes) -> list[bytes]:
    """The ES8+ segments of a Bound Profile Package, as the LPA sends them (SGP.22 §2.5.5).

    1. BF36's tag and length with the InitialiseSecureChannelRequest (BF23);
    2. A0's tag and length with its first '87' (ConfigureISDP), then any further '87';
    3. A1's tag and length, then each '88' (StoreMetadata);
    4. if present, A2's tag and length with its first '87' (ReplaceSessionKeys), then the rest;
    5. A3's tag and length, then each '86' (profile elements).

    Raises:
        ValueError: not a BPP of that shape.
    """
    try:
        ((tag, header, whole),) = split_tlvs(bpp)
    except ValueError as e:
        raise ValueError(f"not one BER-TLV: {e}") from None
    if tag != 0xBF36:
        raise ValueError(f"a BPP has tag BF36, not {tag:X}")
    parts = split_tlvs(whole[len(header) :])
    if not parts or parts[0][0] != 0xBF23:
        raise ValueError("a BPP starts with InitialiseSecureChannelRequest (BF23)")
    segments = [header + parts[0][2]]
    seen = []
    for tag, head, tlv in parts[1:]:
        if tag not in (0xA0, 0xA1, 0xA2, 0xA3):
            raise ValueError(f"unexpected data object {tag:X} in the BPP")
        seen.append(tag)
        inner = split_tlvs(tlv[len(head) :])
        if tag in (0xA0, 0xA2):
            if not inner:
                raise ValueError(f"{tag:X} holds no '87'")
            segments.append(head + inner[0][2])
            segments.extend(t[2] for t in inner[1:])
        else:
            segments.append(head)
            segments.extend(t[2] for t in inner)
    if seen[:2] != [0xA0, 0xA1] or seen[-1] != 0xA3:
        raise ValueError("a BPP holds A0, A1, (A2), A3 in this order")
    return segments


class Es10Client:
    """ES10 over a reader: the ISD-R selected on a logical channel of its own.

    Args:
        reader: any reader (emulated, PC/SC, a real eUICC); GET RESPONSE is handled here.
        use_channel: open a logical channel (MANAGE CHANNEL) as LPAs do; else
            use the basic channel 0.
        trace: called with every ES10 function's request and response.
        aid: the ISD-R's AID.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        use_channel: bool = True,
        trace: Tracer | None = None,
        aid: bytes = ISDR_AID,
    ) -> None:
        self.session = ApduSession(reader)
        self.reader: Reader = self.session.reader
        self.use_channel = use_channel
        self.trace = trace
        self.aid = aid
        self.channel: int | None = None

    # -- transport ----------------------------------------------------------------------

    def open(self) -> Es10Client:
        """Open the channel and SELECT the ISD-R on it.

        Raises:
            ApduError: no free channel, or no ISD-R.
        """
        channel = 0
        if self.use_channel:
            data = self.session.send(0x00, 0x70, 0x00, 0x00, le=1, what="MANAGE CHANNEL open")
            if len(data) != 1:
                raise ReaderError("MANAGE CHANNEL answered no channel number")
            channel = data[0]
        self.channel = channel
        cla = cla_with_channel(0x00, channel)
        self.session.send(cla, 0xA4, 0x04, 0x00, self.aid, le=0, what="SELECT ISD-R")
        return self

    def close(self) -> None:
        """Close the logical channel (the basic channel stays as it is)."""
        if self.channel:
            try:
                self.session.send(0x00, 0x70, 0x80, self.channel, what="MANAGE CHANNEL close")
            except (ApduError, ReaderError):
                pass
        self.channel = None

    def __enter__(self) -> Es10Client:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def store_data(self, data: bytes, function: str = "STORE DATA") -> bytes:
        """Send `data` in STORE DATA blocks; return the eUICC's answer (SGP.22 §5.7.2).

        Raises:
            ApduError: a block answered other than 9000.
        """
        if self.channel is None:
            self.open()
        cla = cla_with_channel(0x80, self.channel or 0)
        blocks = [data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)] or [b""]
        out = b""
        for n, block in enumerate(blocks):
            last = n == len(blocks) - 1
            p1 = 0x91 if last else 0x11
            le = 0 if last else None
            out = self.session.send(cla, INS_STORE_DATA, p1, n & 0xFF, block, le, what=function)
        return out

    def call(self, function: str, request: bytes) -> bytes:
        """One ES10 function: the DER request out, the DER response back (traced)."""
        response = self.store_data(request, function)
        if self.trace is not None:
            self.trace(Es10Exchange(function, request, response))
        return response

    def _call(self, function: str, req_type: str, value: Any, resp_type: str) -> Any:
        raw = self.call(function, asn1.encode(req_type, value))
        return asn1.decode(resp_type, raw)

    @staticmethod
    def _check(function: str, code: int, type_name: str, *path: str) -> int:
        """`code` if it is ok (0); else the Es10Error naming it as the ASN.1 text does."""
        if code != 0:
            raise Es10Error(function, code, result_name(code, type_name, *path))
        return code

    # -- ES10a ------------------------------------------------------------------------

    def get_configured_addresses(self) -> dict[str, Any]:
        """ES10a.GetEuiccConfiguredAddresses (§5.7.3): defaultDpAddress, rootDsAddress."""
        return dict(
            self._call(
                "GetEuiccConfiguredAddresses",
                "EuiccConfiguredAddressesRequest",
                {},
                "EuiccConfiguredAddressesResponse",
            )
        )

    def set_default_dp_address(self, address: str) -> None:
        """ES10a.SetDefaultDpAddress (§5.7.4)."""
        r = self._call(
            "SetDefaultDpAddress",
            "SetDefaultDpAddressRequest",
            {"defaultDpAddress": address},
            "SetDefaultDpAddressResponse",
        )
        self._check(
            "SetDefaultDpAddress",
            r["setDefaultDpAddressResult"],
            "SetDefaultDpAddressResponse",
            "setDefaultDpAddressResult",
        )

    # -- ES10b ------------------------------------------------------------------------

    def load_crl(self, crl_der: bytes) -> None:
        """ES10b.LoadCRL (§5.7, Annex H 'BF35'): hand the eUICC a CRL of its CI.

        The CRL travels as received, its outer tag '30' replaced by the context
        tag 'A0' of the request's AUTOMATIC TAGS field (Annex H): the eUICC puts
        '30' back, so the signature it checks covers the CA's own bytes.

        Raises:
            Es10Error: the eUICC refused it (invalidSignature, invalidCRLFormat,
                notEnoughMemorySpace, verificationKeyNotFound).
        """
        crl = bytes(crl_der)
        if not crl.startswith(b"\x30"):
            raise ValueError("a CRL is a DER SEQUENCE ('30')")
        request = _tlv(0xBF35, b"\xa0" + crl[1:])
        kind, value = asn1.decode("LoadCRLResponse", self.call("LoadCRL", request))
        if kind != "loadCRLResponseOk":
            raise Es10Error("LoadCRL", int(value), result_name(int(value), "LoadCRLResponseError"))

    def get_euicc_challenge(self) -> bytes:
        """ES10b.GetEUICCChallenge (§5.7.7): 16 random bytes."""
        return bytes(
            self._call(
                "GetEUICCChallenge", "GetEuiccChallengeRequest", {}, "GetEuiccChallengeResponse"
            )["euiccChallenge"]
        )

    def get_euicc_info1(self) -> bytes:
        """ES10b.GetEUICCInfo1 (§5.7.8), DER as the eUICC sent it (the LPA forwards it)."""
        raw = self.call("GetEUICCInfo1", asn1.encode("GetEuiccInfo1Request", {}))
        asn1.decode("EUICCInfo1", raw)
        return raw

    def get_euicc_info2(self) -> dict[str, Any]:
        """ES10b.GetEUICCInfo2 (§5.7.8)."""
        return dict(self._call("GetEUICCInfo2", "GetEuiccInfo2Request", {}, "EUICCInfo2"))

    def authenticate_server(
        self,
        server_signed1: bytes,
        server_signature1: bytes,
        ci_pkid: bytes,
        server_certificate: bytes,
        matching_id: str | None,
        device_info: dict[str, Any],
    ) -> bytes:
        """ES10b.AuthenticateServer (§5.7.13): the SM-DP+'s objects as received, then ctxParams1.

        Returns:
            The AuthenticateServerResponse DER (ok or error), to forward to ES9+.
        """
        ctx: dict[str, Any] = {"deviceInfo": device_info}
        if matching_id is not None:
            ctx["matchingId"] = matching_id
        # Encoded without the module's size constraints: the copy of RSPDefinitions in
        # card/sgp22 has DeviceInfo.tac as Octet8, SGP.22 v2.x says Octet4 (a 4-byte TAC).
        try:
            ctx_der = bytes(
                asn1.rsp_type("CtxParams1").encode(
                    "CtxParams1", ("ctxParamsForCommonAuthentication", ctx)
                )
            )
        except Exception as e:  # noqa: BLE001 - asn1tools raises several types
            raise ValueError(f"ctxParams1: {e}") from None
        body = server_signed1 + server_signature1 + ci_pkid + server_certificate + ctx_der
        raw = self.call("AuthenticateServer", _tlv(0xBF38, body))
        decode_lenient("AuthenticateServerResponse", raw)
        return raw

    def prepare_download(
        self,
        smdp_signed2: bytes,
        smdp_signature2: bytes,
        smdp_certificate: bytes,
        hash_cc: bytes | None = None,
    ) -> bytes:
        """ES10b.PrepareDownload (§5.7.5). Returns the PrepareDownloadResponse DER."""
        cc = b"" if hash_cc is None else _tlv(0x04, hash_cc)
        raw = self.call(
            "PrepareDownload", _tlv(0xBF21, smdp_signed2 + smdp_signature2 + cc + smdp_certificate)
        )
        asn1.decode("PrepareDownloadResponse", raw)
        return raw

    def load_bound_profile_package(
        self, bpp: bytes, progress: Callable[[int, int], None] | None = None
    ) -> bytes:
        """ES10b.LoadBoundProfilePackage (§5.7.6): the BPP segment by segment.

        Returns:
            The ProfileInstallationResult DER (BF37), success or error.

        Raises:
            ValueError: the BPP is malformed.
            Es10Error: the eUICC stopped without a ProfileInstallationResult.
        """
        segments = bpp_segments(bpp)
        for i, segment in enumerate(segments):
            answer = self.store_data(segment, "LoadBoundProfilePackage")
            if progress is not None:
                progress(i + 1, len(segments))
            if answer:
                if self.trace is not None:
                    self.trace(
                        Es10Exchange(
                            f"LoadBoundProfilePackage {i + 1}/{len(segments)}", segment, answer
                        )
                    )
                asn1.decode("ProfileInstallationResult", answer)
                return answer
            if self.trace is not None:
                self.trace(
                    Es10Exchange(f"LoadBoundProfilePackage {i + 1}/{len(segments)}", segment, b"")
                )
        raise Es10Error("LoadBoundProfilePackage", 127, "no ProfileInstallationResult")

    def cancel_session(self, transaction_id: bytes, reason: int = 0) -> bytes:
        """ES10b.CancelSession (§5.7.14). Returns the CancelSessionResponse DER."""
        raw = self.call(
            "CancelSession",
            asn1.encode(
                "CancelSessionRequest", {"transactionId": transaction_id, "reason": reason}
            ),
        )
        asn1.decode("CancelSessionResponse", raw)
        return raw

    def list_notifications(self, events: tuple[bytes, int] | None = None) -> list[dict[str, Any]]:
        """ES10b.ListNotification (§5.7.9): the pending notifications' metadata."""
        req: dict[str, Any] = {} if events is None else {"profileManagementOperation": events}
        kind, value = self._call(
            "ListNotification", "ListNotificationRequest", req, "ListNotificationResponse"
        )
        if kind != "notificationMetadataList":
            raise Es10Error("ListNotification", int(value), "undefinedError")
        return [dict(v) for v in value]

    def retrieve_notifications(self, seq: int | None = None) -> list[bytes]:
        """ES10b.RetrieveNotificationsList (§5.7.10): each PendingNotification DER, as signed."""
        req: dict[str, Any] = {} if seq is None else {"searchCriteria": ("seqNumber", seq)}
        raw = self.call(
            "RetrieveNotificationsList", asn1.encode("RetrieveNotificationsListRequest", req)
        )
        kind, value = asn1.decode("RetrieveNotificationsListResponse", raw)
        if kind != "notificationList":
            if value == 1:  # noResultAvailable
                return []
            raise Es10Error("RetrieveNotificationsList", int(value), "undefinedError")
        return [t[2] for t in split_tlvs(_value(_value(raw)))]

    def remove_notification(self, seq: int) -> None:
        """ES10b.RemoveNotificationFromList (§5.7.11)."""
        r = self._call(
            "RemoveNotificationFromList",
            "NotificationSentRequest",
            {"seqNumber": seq},
            "NotificationSentResponse",
        )
        self._check(
            "RemoveNotificationFromList",
            r["deleteNotificationStatus"],
            "NotificationSentResponse",
            "deleteNotificationStatus",
        )

    # -- ES10c ------------------------------------------------------------------------

    def get_profiles_info(
        self, *, iccid: str | None = None, tags: bytes | None = None
    ) -> list[dict[str, Any]]:
        """ES10c.GetProfilesInfo (§5.7.15), optionally one ICCID and only some tags."""
        req: dict[str, Any] = {}
        if iccid is not None:
            req["searchCriteria"] = ("iccid", iccid_to_ef(iccid))
        if tags is not None:
            req["tagList"] = tags
        kind, value = self._call(
            "GetProfilesInfo", "ProfileInfoListRequest", req, "ProfileInfoListResponse"
        )
        if kind != "profileInfoListOk":
            raise Es10Error(
                "GetProfilesInfo", int(value), result_name(int(value), "ProfileInfoListError")
            )
        return [dict(v) for v in value]

    def _profile_op(
        self, function: str, req_type: str, resp_type: str, iccid: str, refresh: bool | None
    ) -> None:
        ident = ("iccid", iccid_to_ef(iccid))
        value: Any = (
            ident if refresh is None else {"profileIdentifier": ident, "refreshFlag": refresh}
        )
        r = self._call(function, req_type, value, resp_type)
        (result, code), *_ = r.items()
        self._check(function, code, resp_type, result)

    def enable_profile(self, iccid: str, refresh: bool = False) -> None:
        """ES10c.EnableProfile (§5.7.16)."""
        self._profile_op(
            "EnableProfile", "EnableProfileRequest", "EnableProfileResponse", iccid, refresh
        )

    def disable_profile(self, iccid: str, refresh: bool = False) -> None:
        """ES10c.DisableProfile (§5.7.17)."""
        self._profile_op(
            "DisableProfile", "DisableProfileRequest", "DisableProfileResponse", iccid, refresh
        )

    def delete_profile(self, iccid: str) -> None:
        """ES10c.DeleteProfile (§5.7.18)."""
        self._profile_op(
            "DeleteProfile", "DeleteProfileRequest", "DeleteProfileResponse", iccid, None
        )

    def memory_reset(
        self, operational: bool = True, test: bool = False, default_address: bool = False
    ) -> int:
        """ES10c.eUICCMemoryReset (§5.7.19). Returns 0 (ok) or 1 (nothing to delete)."""
        bits = (
            (0x80 if operational else 0) | (0x40 if test else 0) | (0x20 if default_address else 0)
        )
        r = self._call(
            "eUICCMemoryReset",
            "EuiccMemoryResetRequest",
            {"resetOptions": (bytes((bits,)), 3)},
            "EuiccMemoryResetResponse",
        )
        code = int(r["resetResult"])
        if code not in (0, 1):
            raise Es10Error("eUICCMemoryReset", code, "undefinedError")
        return code

    def get_eid(self) -> str:
        """ES10c.GetEID (§5.7.20): the 32-digit EID."""
        r = self._call(
            "GetEID", "GetEuiccDataRequest", {"tagList": b"\x5a"}, "GetEuiccDataResponse"
        )
        return bytes(r["eidValue"]).hex().upper()

    def set_nickname(self, iccid: str, nickname: str) -> None:
        """ES10c.SetNickname (§5.7.21)."""
        r = self._call(
            "SetNickname",
            "SetNicknameRequest",
            {"iccid": iccid_to_ef(iccid), "profileNickname": nickname},
            "SetNicknameResponse",
        )
        self._check(
            "SetNickname", r["setNicknameResult"], "SetNicknameResponse", "setNicknameResult"
        )
