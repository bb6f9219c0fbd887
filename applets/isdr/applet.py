"""The ISD-R: ES10a/b/c over STORE DATA (GSMA SGP.22 v2.x §5.7, §2.4.3).

Transport (SGP.22 §5.7.2, GlobalPlatform Card Specification §11.11): an ES10
function is one DER request sent in one or more STORE DATA commands,
`8X E2 P1 P2`: P1 '11' for a block with more to come, '91' for the last one
(b8 = last block, b5 = BER-TLV data); P2 the block number from 00. The blocks
are joined per logical channel; the request runs on the last block and its
DER response comes back in the response data (longer than Ne: 61xx and GET
RESPONSE, which the card runtime provides). A block out of sequence is 6A86
and drops what was collected; an unknown function tag is 6A88; a request that
does not decode (card.sgp22.asn1.Asn1DecodeError: malformed, over the decode
limits, or over the time budget of one message) is 6A80. Any other exception
of a function is a bug and reaches the runtime as 6F00.

The ISD-R is multiselectable: an LPA opens a logical channel and selects it
there with CLA 81-83 (or 4X-7X), as real LPAs do.

Install parameters: card.sgp22.params.IsdrParams (configured addresses).
The functions themselves are in `rsp` (ES10a/b authentication and
preparation), `bpp` (LoadBoundProfilePackage), `profiles` (ES10c),
`crl` (LoadCRL) and `notifications`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from applets.isdr.bpp import BppFunctions
from applets.isdr.crl import CrlFunctions
from applets.isdr.notifications import event_filter
from applets.isdr.profiles import ProfileFunctions
from applets.isdr.rsp import RAT, RspFunctions
from card.framework import APDU, CardError
from card.sgp22 import asn1
from card.sgp22.params import IsdrParams
from card.sw import SW
from card.tlv import TlvError, decode_tag

__all__ = ["IsdR", "FUNCTIONS"]

log = logging.getLogger("cardemu.isdr")

#: An ES10 function: (the decoded request, the request as received) -> the response value.
Es10Handler = Callable[[Any, bytes], Any]

_INS_STORE_DATA = 0xE2
_P1_LAST = 0x80
_P1_BER_TLV = 0x10
#: An ES10 request larger than this is refused (6A84); a BPP segment is at most ~1 KB.
MAX_REQUEST = 64 * 1024
#: The decoding one ES10 message may do (SGP.22 messages decode in milliseconds).
DECODE_SECONDS = 5.0
#: The tag of ProfileInfoListRequest (GetProfilesInfo, SGP.22 §5.7.15), as it starts a request.
_GET_PROFILES_INFO = b"\xbf\x2d"
# RetrieveNotificationsListResponse / NotificationSentResponse codes (SGP.22 Annex H).
NOTIFICATIONS_NO_RESULT = 1  # notificationsListResultError noResultAvailable
NOTIFICATION_REMOVED = 0  # deleteNotificationStatus ok
NOTIFICATION_NOTHING_TO_DELETE = 1  # deleteNotificationStatus nothingToDelete
_BPP_TAGS = frozenset({0xBF36, 0xA0, 0xA1, 0xA2, 0xA3, 0x86, 0x87, 0x88})


#: ES10 request and response types per request tag (SGP.22 Annex H); `IsdR.handlers` has
#: the function of each.
FUNCTIONS: dict[int, tuple[str, str]] = {
    0xBF20: ("GetEuiccInfo1Request", "EUICCInfo1"),
    0xBF22: ("GetEuiccInfo2Request", "EUICCInfo2"),
    0xBF2E: ("GetEuiccChallengeRequest", "GetEuiccChallengeResponse"),
    0xBF38: ("AuthenticateServerRequest", "AuthenticateServerResponse"),
    0xBF21: ("PrepareDownloadRequest", "PrepareDownloadResponse"),
    0xBF41: ("CancelSessionRequest", "CancelSessionResponse"),
    0xBF28: ("ListNotificationRequest", "ListNotificationResponse"),
    0xBF2B: ("RetrieveNotificationsListRequest", "RetrieveNotificationsListResponse"),
    0xBF30: ("NotificationSentRequest", "NotificationSentResponse"),
    0xBF2D: ("ProfileInfoListRequest", "ProfileInfoListResponse"),
    0xBF31: ("EnableProfileRequest", "EnableProfileResponse"),
    0xBF32: ("DisableProfileRequest", "DisableProfileResponse"),
    0xBF33: ("DeleteProfileRequest", "DeleteProfileResponse"),
    0xBF34: ("EuiccMemoryResetRequest", "EuiccMemoryResetResponse"),
    0xBF3E: ("GetEuiccDataRequest", "GetEuiccDataResponse"),
    0xBF29: ("SetNicknameRequest", "SetNicknameResponse"),
    0xBF3C: ("EuiccConfiguredAddressesRequest", "EuiccConfiguredAddressesResponse"),
    0xBF3F: ("SetDefaultDpAddressRequest", "SetDefaultDpAddressResponse"),
    0xBF43: ("GetRatRequest", "GetRatResponse"),
    0xBF35: ("LoadCRLRequest", "LoadCRLResponse"),
}


class IsdR(RspFunctions, BppFunctions, ProfileFunctions, CrlFunctions):
    """The ISD-R applet (see the module docstring)."""

    def on_install(self, params: bytes) -> None:
        try:
            p = IsdrParams.from_bytes(params)
        except (ValueError, UnicodeDecodeError) as e:
            raise CardError(SW.WRONG_DATA) from e
        self.set_config(p.default_dp_address, p.root_ds_address)

    def handlers(self) -> dict[int, Es10Handler]:
        """The ES10 function of each request tag of `FUNCTIONS`, as this ISD-R's bound methods."""
        return {
            0xBF20: self.get_euicc_info1,
            0xBF22: self.get_euicc_info2,
            0xBF2E: self.get_euicc_challenge,
            0xBF38: self.authenticate_server,
            0xBF21: self.prepare_download,
            0xBF41: self.cancel_session,
            0xBF28: self.list_notification,
            0xBF2B: self.retrieve_notifications,
            0xBF30: self.remove_notification,
            0xBF2D: self.get_profiles_info,
            0xBF31: self.enable_profile,
            0xBF32: self.disable_profile,
            0xBF33: self.delete_profile,
            0xBF34: self.memory_reset,
            0xBF3E: self.get_eid,
            0xBF29: self.set_nickname,
            0xBF3C: self.get_configured_addresses,
            0xBF3F: self.set_default_dp_address,
            0xBF43: self.get_rat,
            0xBF35: self.load_crl,
        }

    # -- the APDU level ---------------------------------------------------------------------

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins != _INS_STORE_DATA:
            raise CardError(SW.INS_NOT_SUPPORTED)
        if not apdu.cla & 0x80:
            raise CardError(SW.CLA_NOT_SUPPORTED)
        if apdu.p1 & 0x7F != _P1_BER_TLV | 0x01 and apdu.p1 & 0x7F != _P1_BER_TLV:
            raise CardError(SW.INCORRECT_P1P2)
        st = self.system.channel_state
        expected = st.get("block", 0)
        if apdu.p2 != expected:
            st.pop("buf", None)
            st.pop("block", None)
            raise CardError(SW.INCORRECT_P1P2)
        buf: bytearray = st.setdefault("buf", bytearray())
        if len(buf) + len(apdu.data) > MAX_REQUEST:
            st.pop("buf", None)
            st.pop("block", None)
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        buf += apdu.data
        if not apdu.p1 & _P1_LAST:
            st["block"] = expected + 1
            return None
        request = bytes(buf)
        st.pop("buf", None)
        st.pop("block", None)
        if request[:2] == _GET_PROFILES_INFO:
            return self._get_profiles_info_cached(request)
        # One ES10 message is decoded in bounded time, whatever it holds (the
        # profile package of a BPP included). Only a decoding failure is the
        # client's '6A80'; anything else a function raises is a bug of ours and
        # must reach the runtime (6F00, counted).
        return self._es10_decoded(request)

    def _es10_decoded(self, request: bytes) -> bytes | None:
        try:
            with asn1.decode_budget(DECODE_SECONDS):
                return self.es10(request)
        except asn1.Asn1DecodeError as e:
            log.debug("ES10 request refused: %s", e)
            raise CardError(SW.WRONG_DATA) from None

    def _get_profiles_info_cached(self, request: bytes) -> bytes | None:
        """GetProfilesInfo (SGP.22 §5.7.15), its DER answer kept while nothing stored changes.

        The answer is a function of the request and of persistent memory alone
        (the profiles the USIM applet holds, enabled or not, and the ISD-R's
        records: ISD-P AID, metadata, nickname, configuration), so it is kept
        with the request and the card's `nvm_version`, which every write,
        delete and rollback of any applet changes. An LPA polls it; an
        unchanged card answers without decoding or encoding anything.
        """
        version = self.system.nvm_version
        hit = self.__dict__.get("_gpi_answer")
        if hit is not None and hit[0] == version and hit[1] == request:
            return hit[2]
        answer = self._es10_decoded(request)
        # A function that wrote (none does today) would leave its answer stale at once.
        if self.system.nvm_version == version:
            object.__setattr__(self, "_gpi_answer", (version, request, answer))
        return answer

    def es10(self, request: bytes) -> bytes | None:
        """Run one ES10 function on its DER request; its DER response (None: no data).

        Raises:
            CardError: the function's status word.
            asn1.Asn1DecodeError: the request (or data inside it) does not decode.
        """
        try:
            tag, _ = decode_tag(request, 0)
        except TlvError:
            raise CardError(SW.WRONG_DATA) from None
        if tag in _BPP_TAGS:
            result = self.load_bpp_segment(request)
            if (
                result is None
                and tag != 0xBF36
                and (self.session is None or self.session.bpp is None)
            ):
                raise CardError(SW.CONDITIONS_NOT_SATISFIED)
            return result
        entry = FUNCTIONS.get(tag)
        if entry is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        req_type, resp_type = entry
        response = self.handlers()[tag](asn1.decode(req_type, request), request)
        return asn1.encode(resp_type, response)

    # -- notifications (ES10b §5.7.9-5.7.11) ----------------------------------------------------

    def list_notification(self, request: Any, raw: bytes) -> Any:
        events = event_filter(request.get("profileManagementOperation"))
        return ("notificationMetadataList", self.notifications().list_metadata(events))

    def retrieve_notifications(self, request: Any, raw: bytes) -> Any:
        crit = request.get("searchCriteria")
        seq = events = None
        if crit is not None:
            kind, value = crit
            if kind == "seqNumber":
                seq = value
            else:
                events = event_filter(value)
        found = self.notifications().retrieve(seq, events)
        if seq is not None and not found:
            return ("notificationsListResultError", NOTIFICATIONS_NO_RESULT)
        return ("notificationList", found)

    def remove_notification(self, request: Any, raw: bytes) -> Any:
        with self.system.transaction():
            removed = self.notifications().remove(request["seqNumber"])
        status = NOTIFICATION_REMOVED if removed else NOTIFICATION_NOTHING_TO_DELETE
        return {"deleteNotificationStatus": status}

    # -- GetRAT (§5.7.22): the rules the ES10c functions apply (rsp.RAT) -------------------------

    def get_rat(self, request: Any, raw: bytes) -> Any:
        return {"rat": [dict(rule) for rule in RAT]}
