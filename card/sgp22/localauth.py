"""Local authentication on the eUICC, signed by the ECASD (seed 000, JP 7639532 B2).

The local-authentication applet (`applets.localauth`) verifies the user (a PIN,
or a finger matched on card) and then has the ECASD sign a *local
authentication result* over the EID, a server's challenge and the outcome.
The management server checks that signature with CERT.EUICC (chained to the
GSMA CI through CERT.EUM, as SGP.22 §4.5.2 does for every eUICC signature), so
a terminal can neither forge a success nor replay an old one.

The signed object is built by the ECASD, never by the applet: the applet
passes the challenge, the outcome and the method, and the ECASD puts its own
EID in front. Its first tag, 'E5' (private, constructed), is none of the tags
the eUICC signs for SGP.22 (SEQUENCE '30' for euiccSigned1/2 and the
cancellation, 'BF27' for ProfileInstallationResultData, 'BF2F' for
NotificationMetadata), so no local-authentication result can stand in for an
SGP.22 signature or the reverse: the applet gets a signing service for this
one object only, never SK.EUICC.ECDSA over data of its choice.

The interface lives in card/ because applets may not import each other.
"""

from __future__ import annotations

from card.framework.shareable import Shareable
from card.tlv import encode_length

__all__ = [
    "CHALLENGE_MAX",
    "CHALLENGE_MIN",
    "LOCAL_AUTH_AID",
    "LOCAL_AUTH_PARAMETER",
    "METHOD_FINGERPRINT",
    "METHOD_PIN",
    "OUTCOME_FAILED",
    "OUTCOME_SUCCESS",
    "TAG_LOCAL_AUTH_SIGNED",
    "LocalAuthSigner",
    "local_auth_signed",
]

#: The local-authentication applet (proprietary RID F0, "CARDEMU" + "LA").
LOCAL_AUTH_AID = bytes.fromhex("F043415244454D554C41")
#: The parameter of getAppletShareableInterfaceObject that asks the ECASD for `LocalAuthSigner`.
LOCAL_AUTH_PARAMETER = 0x4C

TAG_LOCAL_AUTH_SIGNED = 0xE5
TAG_EID = 0x5A
TAG_CHALLENGE = 0x80
TAG_OUTCOME = 0x81
TAG_METHOD = 0x82

OUTCOME_SUCCESS = 0x00
OUTCOME_FAILED = 0x01
METHOD_PIN = 0x01
METHOD_FINGERPRINT = 0x02

#: A server challenge is 16 to 32 bytes (as SGP.22's serverChallenge is 16).
CHALLENGE_MIN, CHALLENGE_MAX = 16, 32


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(value)) + value


def local_auth_signed(eid: bytes, challenge: bytes, outcome: int, method: int) -> bytes:
    """The object the ECASD signs: `E5 { 5A EID, 80 challenge, 81 outcome, 82 method }`.

    Raises:
        ValueError: a challenge out of 16..32 bytes, or an outcome/method out of a byte.
    """
    if not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise ValueError(f"a challenge is {CHALLENGE_MIN}..{CHALLENGE_MAX} bytes")
    if not (0 <= outcome <= 0xFF and 0 <= method <= 0xFF):
        raise ValueError("outcome and method are one byte each")
    body = (
        _tlv(TAG_EID, bytes(eid))
        + _tlv(TAG_CHALLENGE, bytes(challenge))
        + _tlv(TAG_OUTCOME, bytes((outcome,)))
        + _tlv(TAG_METHOD, bytes((method,)))
    )
    return _tlv(TAG_LOCAL_AUTH_SIGNED, body)


class LocalAuthSigner(Shareable):
    """What the ECASD offers the local-authentication applet (its AID only)."""

    def eid(self) -> bytes:
        """The 16-byte EID."""
        raise NotImplementedError

    def certificates(self) -> tuple[bytes, bytes]:
        """(CERT.EUICC.ECDSA, CERT.EUM.ECDSA), DER: what a server verifies the result with."""
        raise NotImplementedError

    def sign_local_auth(self, challenge: bytes, outcome: int, method: int) -> tuple[bytes, bytes]:
        """Sign `local_auth_signed(EID, challenge, outcome, method)` with SK.EUICC.ECDSA.

        Returns:
            (the signed object, the signature as r || s).
        """
        raise NotImplementedError
