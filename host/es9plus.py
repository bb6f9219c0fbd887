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
    "SC_EVENT_ID_IN_USE",
    "SC_EVENT_ID_UNKNOWN",
    "SC_EID_INVALID",
    "SC_ICCID_UNKNOWN",
    "SC_ICCID_IN_USE",
    "SC_PROFILE_TYPE_UNKNOWN",
    "SC_ORDER_STATE_REFUSED",
    "SC_MATCHING_ID_IN_USE",
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

# SGP.22 v2.x §5.6 (per function) and §6.5.1.4 status codes: (subjectCode, reasonCode).
SC_BAD_REQUEST = ("1.2", "2.1")  # the request itself: a missing or malformed field
SC_SMDP_ADDRESS_REFUSED = ("8.8.1", "3.8")
SC_SECURITY_CONFIG_UNSUPPORTED = ("8.8.2", "3.1")
SC_SVN_UNSUPPORTED = ("8.8.3", "3.1")
SC_SMDP_CERT_UNAVAILABLE = ("8.8.4", "3.7")
SC_EUM_CERT_INVALID = ("8.1.2", "6.1")
SC_EUM_CERT_EXPIRED = ("8.1.2", "6.3")
SC_EUICC_CERT_INVALID = ("8.1.3", "6.1")
SC_EUICC_CERT_EXPIRED = ("8.1.3", "6.3")
SC_EUICC_SIGNATURE_INVALID = ("8.1", "6.1")
SC_TRANSACTION_UNKNOWN = ("8.10.1", "3.9")
SC_CI_KEY_UNKNOWN = ("8.11.1", "3.9")
SC_MATCHING_ID_REFUSED = ("8.2.6", "3.8")
SC_EID_REFUSED = ("8.1.1", "3.8")
SC_SMDP_OID_INVALID = ("8.8", "3.10")
SC_DOWNLOAD_REFUSED = ("8.2", "1.2")  # Profile - not allowed (the eUICC refused the step)
# GetBoundProfilePackage (§5.6.2): 8.2.7 is the confirmation code.
SC_CC_MISSING = ("8.2.7", "2.2")  # mandatory element missing
SC_CC_REFUSED = ("8.2.7", "3.8")
SC_CC_RETRIES_EXCEEDED = ("8.2.7", "6.4")  # maximum number of retries exceeded
# ES11 / ES12 (§5.8, §5.9): the SM-DS address, the event record. These and the ES2+
# codes below follow SGP.22's subject/reason scheme (§6.5.1.4), but their exact
# subject codes were not checked against the specification's tables here.
SC_SMDS_ADDRESS_REFUSED = ("8.9.1", "3.8")
SC_EVENT_ID_IN_USE = ("8.9.5", "3.3")  # already in use
SC_EVENT_ID_UNKNOWN = ("8.9.5", "3.9")
# ES2+ (§5.3): the EID, the profile (ICCID), its type, the order's state, the SM-DS.
SC_EID_INVALID = ("8.1.1", "2.1")  # invalid format
SC_ICCID_UNKNOWN = ("8.2.1", "3.9")
SC_ICCID_IN_USE = ("8.2.1", "3.3")
SC_PROFILE_TYPE_UNKNOWN = ("8.2.5", "3.9")
SC_ORDER_STATE_REFUSED = ("8.2.1", "3.5")  # the profile is not in a state for this function
SC_MATCHING_ID_IN_USE = ("8.2.6", "3.3")
SC_SMDS_INACCESSIBLE = ("8.9", "5.1")


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
        Es9Error: missing, not a string, or not base64 (SC_BAD_REQUEST).
    """
    if not isinstance(value, str):
        raise Es9Error.of(SC_BAD_REQUEST, f"{field}: missing or not a string")
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
