"""The SGP.22 HTTP/JSON binding (GSMA SGP.22 v2.x §6.5): ES9+, ES11, ES12 and ES2+.

Shared by the SM-DP+, the SM-DS, the LPA and the operator's ES2+ client.

- Every function is a POST to `/gsma/rsp2/es9plus/<function>` with
  `Content-Type: application/json;charset=UTF-8` and `X-Admin-Protocol:
  gsma/rsp/v2.<x>.<y>` (§6.5.1).
- ASN.1 objects travel as base64 of their DER, including their tag (a
  signature field is the whole `5F37` data object); a transactionId is the hex
  string of its bytes (§6.5.2).
- The answer carries `header.functionExecutionStatus` with `status`
  "Executed-Success" or "Failed" and, on failure, `statusCodeData`
  (`subjectCode`, `reasonCode`, `message`) (§6.5.1.4). HandleNotification
  answers 204 No Content (§6.5.2.4).
- ES11 (LPA to SM-DS) has the same shape as ES9+. ES12 (SM-DP+ to SM-DS) and
  ES2+ (operator to SM-DP+, and the SM-DP+'s HandleDownloadProgressInfo back
  to the operator) requests carry a `header` too, with
  `functionRequesterIdentifier` and `functionCallIdentifier` (§6.5.1.3).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADMIN_PROTOCOL",
    "CONTENT_TYPE",
    "ES9_PATHS",
    "ES11_PATHS",
    "ES12_PATHS",
    "ES2P_PATHS",
    "request_header",
    "Es9Error",
    "b64",
    "unb64",
    "ok_header",
    "failed_header",
    "status_of",
    # The status codes used here, (subject code, reason code).
    "SC_BAD_REQUEST",
    "SC_FIELD_MISSING",
    "SC_CONDITION_MISSING",
    "SC_SMDP_ADDRESS_REFUSED",
    "SC_SECURITY_CONFIG_UNSUPPORTED",
    "SC_SVN_UNSUPPORTED",
    "SC_SMDP_CERT_UNAVAILABLE",
    "SC_EUM_CERT_INVALID",
    "SC_EUM_CERT_EXPIRED",
    "SC_EUICC_CERT_INVALID",
    "SC_EUICC_CERT_EXPIRED",
    "SC_EUICC_SIGNATURE_INVALID",
    "SC_TRANSACTION_UNKNOWN",
    "SC_CI_KEY_UNKNOWN",
    "SC_MATCHING_ID_REFUSED",
    "SC_EID_REFUSED",
    "SC_SMDP_OID_INVALID",
    "SC_DOWNLOAD_REFUSED",
    "SC_CC_MISSING",
    "SC_CC_REFUSED",
    "SC_CC_RETRIES_EXCEEDED",
    "SC_SMDS_ADDRESS_REFUSED",
    "SC_SMDS_SECURITY_CONFIG_UNSUPPORTED",
    "SC_SMDS_SVN_UNSUPPORTED",
    "SC_SMDS_CERT_UNAVAILABLE",
    "SC_SMDS_ERROR",
    "SC_EVENT_ID_IN_USE",
    "SC_EVENT_ID_UNKNOWN",
    "SC_EID_INVALID",
    "SC_EID_MISSING",
    "SC_EID_OTHER_ASSOCIATED",
    "SC_ICCID_UNKNOWN",
    "SC_ICCID_IN_USE",
    "SC_PROFILE_TYPE_UNKNOWN",
    "SC_PROFILE_TYPE_EXHAUSTED",
    "SC_ORDER_STATE_REFUSED",
    "SC_MATCHING_ID_IN_USE",
    "SC_MATCHING_ID_OTHER_ASSOCIATED",
    "SC_SMDS_INACCESSIBLE",
]

ADMIN_PROTOCOL = "gsma/rsp/v2.2.0"
CONTENT_TYPE = "application/json;charset=UTF-8"

ES9_PATHS = {
    "initiateAuthentication": "/gsma/rsp2/es9plus/initiateAuthentication",
    "authenticateClient": "/gsma/rsp2/es9plus/authenticateClient",
    "getBoundProfilePackage": "/gsma/rsp2/es9plus/getBoundProfilePackage",
    "handleNotification": "/gsma/rsp2/es9plus/handleNotification",
    "cancelSession": "/gsma/rsp2/es9plus/cancelSession",
}

ES11_PATHS = {
    "initiateAuthentication": "/gsma/rsp2/es11/initiateAuthentication",
    "authenticateClient": "/gsma/rsp2/es11/authenticateClient",
}

ES12_PATHS = {
    "registerEvent": "/gsma/rsp2/es12/registerEvent",
    "deleteEvent": "/gsma/rsp2/es12/deleteEvent",
}

ES2P_PATHS = {
    "downloadOrder": "/gsma/rsp2/es2plus/downloadOrder",
    "confirmOrder": "/gsma/rsp2/es2plus/confirmOrder",
    "cancelOrder": "/gsma/rsp2/es2plus/cancelOrder",
    "releaseProfile": "/gsma/rsp2/es2plus/releaseProfile",
    "handleDownloadProgressInfo": "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
}

# Status codes: (subjectCode, reasonCode), SGP.22 v2.x §5.2.6 (the subject and reason
# code lists) and the table of each function (§5.3 ES2+, §5.6 ES9+, §5.8 ES12, §5.9 ES11).
# The specification's tables could not be retrieved here; every pair below was checked
# against these public sources instead (tests/unit/test_status_codes.py pins them):
#   [pySim]  osmocom pySim osmo-smdpp.py (commit 597f1e0): the ES9+ codes it raises, each
#            beside the SGP.22 clause it implements;
#   [lpac]   estkme-group/lpac euicc/es9p_errors.c (commit 8b9ebee): (subject, reason,
#            description) rows for ES9+/ES11/ES2+/ES12, the descriptions in the spec's words.
#            Its rows with reason 3.10 and 4.10 lost the trailing zero (3.1, 4.1): pySim
#            raises 8.8/3.10 for the same "SM-DP+ OID is invalid", and no reason code 4.1
#            exists;
#   [common] the GSMA common status codes (docs.connectedyou.io "GSMA codes and
#            descriptions": 1.6 Function / 2.1 Invalid, 2.2 Mandatory element missing,
#            2.3 Conditional element missing), a list that comes from SGP.02 (M2M), not
#            SGP.22; SGP.22's own wording of them could not be retrieved.
# The generic codes below rest on [common] alone, and [pySim] uses others for these
# cases (1.2.1/2.1 for a bad Content-Type, 1.3.1/2.2 for a missing ctxParams1): the
# three 1.6 codes are NOT VERIFIED for SGP.22.
# An input parameter is invalid (the message names it): [common] 1.6/2.1, NOT VERIFIED.
SC_BAD_REQUEST = ("1.6", "2.1")
# A mandatory input parameter is missing: [common] 1.6/2.2, NOT VERIFIED.
SC_FIELD_MISSING = ("1.6", "2.2")
# A conditional input parameter is missing: [common] 1.6/2.3, NOT VERIFIED.
SC_CONDITION_MISSING = ("1.6", "2.3")
SC_SMDP_ADDRESS_REFUSED = ("8.8.1", "3.8")  # [pySim][lpac] Invalid SM-DP+ Address
SC_SECURITY_CONFIG_UNSUPPORTED = ("8.8.2", "3.1")  # [pySim][lpac] no proposed CI PKID supported
SC_SVN_UNSUPPORTED = ("8.8.3", "3.1")  # [lpac] the eUICC's SVN is not supported by the SM-DP+
SC_SMDP_CERT_UNAVAILABLE = ("8.8.4", "3.7")  # [pySim][lpac] no CERT.DPauth under the eUICC's CIs
SC_EUM_CERT_INVALID = ("8.1.2", "6.1")  # [lpac] EUM Certificate is invalid
SC_EUM_CERT_EXPIRED = ("8.1.2", "6.3")  # [lpac] EUM Certificate has expired
SC_EUICC_CERT_INVALID = ("8.1.3", "6.1")  # [pySim][lpac] eUICC Certificate is invalid
SC_EUICC_CERT_EXPIRED = ("8.1.3", "6.3")  # [pySim][lpac] eUICC Certificate has expired
SC_EUICC_SIGNATURE_INVALID = ("8.1", "6.1")  # [pySim][lpac] eUICC signature/serverChallenge
SC_TRANSACTION_UNKNOWN = ("8.10.1", "3.9")  # [pySim][lpac] the RSP session is unknown
SC_CI_KEY_UNKNOWN = ("8.11.1", "3.9")  # [pySim][lpac] Unknown CI Public Key
SC_MATCHING_ID_REFUSED = ("8.2.6", "3.8")  # [pySim][lpac] MatchingID is refused
SC_EID_REFUSED = ("8.1.1", "3.8")  # [lpac] EID doesn't match the expected value (ES9+)
SC_SMDP_OID_INVALID = ("8.8", "3.10")  # [pySim] (and [lpac] as "3.1") SM-DP+ OID is invalid
# The eUICC answered the SM-DP+ with an error (AuthenticateServer, PrepareDownload, the
# installation): no source names a code for that. 8.2/1.2 is "Profile - Not allowed", which
# [lpac] describes as "Profile has not yet been released": NOT VERIFIED for this use.
SC_DOWNLOAD_REFUSED = ("8.2", "1.2")
# GetBoundProfilePackage (§5.6.2): 8.2.7 is the confirmation code.
SC_CC_MISSING = ("8.2.7", "2.2")  # [lpac] Confirmation Code is missing
SC_CC_REFUSED = ("8.2.7", "3.8")  # [lpac] Confirmation Code is refused
SC_CC_RETRIES_EXCEEDED = ("8.2.7", "6.4")  # [lpac] maximum number of retries exceeded
# ES11 (§5.9): the SM-DS's InitiateAuthentication refusals, 8.9.x where the SM-DP+ has 8.8.x.
SC_SMDS_ADDRESS_REFUSED = ("8.9.1", "3.8")  # [lpac] Invalid SM-DS Address
SC_SMDS_SECURITY_CONFIG_UNSUPPORTED = ("8.9.2", "3.1")  # [lpac] no proposed CI PKID supported
SC_SMDS_SVN_UNSUPPORTED = ("8.9.3", "3.1")  # [lpac] the eUICC's SVN is not supported
SC_SMDS_CERT_UNAVAILABLE = ("8.9.4", "3.7")  # [lpac] no CERT.DSauth under the eUICC's CIs
# ES12 (§5.8): the event record.
SC_EVENT_ID_IN_USE = ("8.9.5", "3.3")  # [lpac] the Event Record already exists (EventID)
SC_EVENT_ID_UNKNOWN = ("8.9.5", "3.9")  # [lpac] no Event with this EventID for the EID
SC_SMDS_ERROR = ("8.9", "4.2")  # [lpac] the (root) SM-DS raised an error (cascade)
SC_SMDS_INACCESSIBLE = ("8.9", "5.1")  # [lpac] the SM-DS was unavailable (not reachable)
# ES2+ (§5.3): the EID, the profile (ICCID), its type, the order's state.
# 8.1.1/2.1 (EID - Invalid) is made of §5.2.6's subject and reason codes; no source lists it
# in a function's table: NOT VERIFIED.
SC_EID_INVALID = ("8.1.1", "2.1")
SC_EID_MISSING = ("8.1.1", "2.2")  # [lpac] EID missing (SM-DS address given, or no MatchingID)
SC_EID_OTHER_ASSOCIATED = ("8.1.1", "3.10")  # [lpac] a different EID is already associated
SC_ICCID_UNKNOWN = ("8.2.1", "3.9")  # [lpac] the Profile (ICCID) is unknown to the SM-DP+
SC_ICCID_IN_USE = ("8.2.1", "3.3")  # [lpac] the Profile (ICCID) is not available
SC_ORDER_STATE_REFUSED = ("8.2.1", "3.5")  # [lpac] the target Profile cannot be released
SC_PROFILE_TYPE_UNKNOWN = ("8.2.5", "3.9")  # [lpac] the Profile Type is unknown
SC_PROFILE_TYPE_EXHAUSTED = ("8.2.5", "3.7")  # [lpac] no more Profile of the Profile Type
SC_MATCHING_ID_IN_USE = ("8.2.6", "3.3")  # [lpac] Conflicting MatchingID value
SC_MATCHING_ID_OTHER_ASSOCIATED = ("8.2.6", "3.10")  # [lpac] another MatchingID for this ICCID


@dataclass
class Es9Error(Exception):
    """An ES9+ function that ended "Failed", with its status code (SGP.22 §6.5.1.4).

    Attributes:
        subject_code: e.g. "8.1.3" (the object at fault).
        reason_code: e.g. "6.1" (what is wrong with it).
        message: a human-readable line (never a secret).
        function: the ES9+ function, when known.
    """

    subject_code: str
    reason_code: str
    message: str = ""
    function: str = ""

    @classmethod
    def of(cls, code: tuple[str, str], message: str = "", function: str = "") -> Es9Error:
        """An error from a (subject, reason) pair such as `SC_TRANSACTION_UNKNOWN`."""
        return cls(code[0], code[1], message, function)

    @property
    def code(self) -> tuple[str, str]:
        """(subjectCode, reasonCode)."""
        return (self.subject_code, self.reason_code)

    def __str__(self) -> str:
        where = f"{self.function}: " if self.function else ""
        msg = f" {self.message}" if self.message else ""
        return f"{where}SM-DP+ refused ({self.subject_code}/{self.reason_code}){msg}"


def b64(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) as SGP.22 §6.5.2 uses for binary fields."""
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(value: Any, field: str) -> bytes:
    """Decode a base64 field.

    Raises:
        Es9Error: missing (SC_FIELD_MISSING), not a string or not base64 (SC_BAD_REQUEST);
            both generic codes are NOT VERIFIED for SGP.22 (see their definitions).
    """
    if value is None:
        raise Es9Error.of(SC_FIELD_MISSING, f"{field} is missing")
    if not isinstance(value, str):
        raise Es9Error.of(SC_BAD_REQUEST, f"{field}: not a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Es9Error.of(SC_BAD_REQUEST, f"{field}: not base64") from None


def request_header(requester: str, call_id: str) -> dict[str, Any]:
    """The `header` of an ES2+ or ES12 request (§6.5.1.3)."""
    return {"functionRequesterIdentifier": requester, "functionCallIdentifier": call_id}


def ok_header() -> dict[str, Any]:
    """The response header of a successful function."""
    return {"functionExecutionStatus": {"status": "Executed-Success"}}


def failed_header(err: Es9Error) -> dict[str, Any]:
    """The response header of a failed function (§6.5.1.4)."""
    data: dict[str, Any] = {"subjectCode": err.subject_code, "reasonCode": err.reason_code}
    if err.message:
        data["message"] = err.message
    return {"functionExecutionStatus": {"status": "Failed", "statusCodeData": data}}


def status_of(body: Any, function: str = "") -> None:
    """Raise the ES9+ failure a response body reports, if any.

    Raises:
        Es9Error: status "Failed" (its codes), or a body without a header.
    """
    if not isinstance(body, dict):
        raise Es9Error("", "", "response is not a JSON object", function)
    status = (body.get("header") or {}).get("functionExecutionStatus") or {}
    if status.get("status") == "Executed-Success" or status.get("status") == "Executed-WithWarning":
        return
    data = status.get("statusCodeData") or {}
    raise Es9Error(
        str(data.get("subjectCode", "")),
        str(data.get("reasonCode", "")),
        str(data.get("message", status.get("status", "no status in the response"))),
        function,
    )
