"""What seed 000's parties sign and check (JP 7639532 B2, S9/S13 and S22/S50).

- The **local-authentication result**: the eUICC's ECASD signs `E5 {5A EID, 80
  challenge, 81 outcome, 82 method}` (`card.sgp22.localauth`) with
  SK.EUICC.ECDSA. A management server checks it with CERT.EUICC ← CERT.EUM ← a
  GSMA CI it trusts (SGP.22 §4.5.2.2), that the EID is the certificate's, that
  the challenge is the one it issued, and that the outcome is success.
- The **authentication server's certificate** (seed S22: "created by signing
  the EID with the private key of the authentication server"): a signature
  over a small to-be-signed object naming the EID, with the server's X.509
  certificate, which a CA the carrier trusts has signed (seed S50's "it is
  preferable that the certification authority signs the public key").

Both are checked with nothing but what is sent and the verifier's trust
anchors, so a management server needs no call to the authentication server on
a later contract (S50).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from card import tlv
from card.sgp22.localauth import (
    METHOD_FINGERPRINT,
    METHOD_PIN,
    OUTCOME_SUCCESS,
    TAG_CHALLENGE,
    TAG_EID,
    TAG_LOCAL_AUTH_SIGNED,
    TAG_METHOD,
    TAG_OUTCOME,
)
from host.pki import ChainError, eid_of, verify_euicc_chain
from host.servers.rsp_common import verify

__all__ = [
    "EkycCertificate",
    "LocalAuthResult",
    "ProofError",
    "certificate_tbs",
    "verify_certificate",
    "verify_local_auth",
]


class ProofError(Exception):
    """A result or certificate that does not verify; `reason` is a short code, the message why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# -- the local-authentication result ------------------------------------------------------


@dataclass(frozen=True)
class LocalAuthResult:
    """A decoded local-authentication result (the applet's `80 12` answer).

    Attributes:
        signed: the `E5` object as the card sent it (what the signature covers).
        eid: the EID inside it (hex, upper case).
        challenge: the server challenge it was made for.
        outcome: `OUTCOME_SUCCESS` or `OUTCOME_FAILED`.
        method: `METHOD_PIN` or `METHOD_FINGERPRINT`.
        signature: r || s.
    """

    signed: bytes
    eid: str
    challenge: bytes
    outcome: int
    method: int
    signature: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalAuthResult:
        """Parse `E5 {...} 5F37 <signature>`.

        Raises:
            ProofError: "malformed".
        """
        try:
            objs = tlv.parse(bytes(data), allow_padding=False)
            if [o.tag for o in objs] != [TAG_LOCAL_AUTH_SIGNED, 0x5F37]:
                raise ValueError("expected E5 then 5F37")
            inner = {o.tag: o.value for o in tlv.parse(objs[0].value, allow_padding=False)}
            eid, challenge = inner[TAG_EID], inner[TAG_CHALLENGE]
            outcome, method = inner[TAG_OUTCOME], inner[TAG_METHOD]
            if len(eid) != 16 or len(outcome) != 1 or len(method) != 1:
                raise ValueError("a field of the wrong size")
        except (tlv.TlvError, KeyError, ValueError) as e:
            raise ProofError(
                "malformed", f"the local-authentication result is malformed: {e}"
            ) from None
        signed = tlv.build(TAG_LOCAL_AUTH_SIGNED, objs[0].value)
        return cls(signed, eid.hex().upper(), challenge, outcome[0], method[0], objs[1].value)

    def to_bytes(self) -> bytes:
        return self.signed + tlv.build(0x5F37, self.signature)

    @property
    def method_name(self) -> str:
        return {METHOD_PIN: "PIN", METHOD_FINGERPRINT: "fingerprint"}.get(self.method, "?")


def verify_local_auth(
    result: bytes,
    challenge: bytes,
    euicc_cert: bytes,
    eum_cert: bytes,
    trusted_cis: Iterable[x509.Certificate],
    *,
    eid: str | None = None,
) -> LocalAuthResult:
    """Check a local-authentication result as a management server does (S13, S49).

    Args:
        result: the card's answer (`E5 ... 5F37 ...`).
        challenge: the challenge this server issued for this application.
        euicc_cert: CERT.EUICC.ECDSA (DER); eum_cert: CERT.EUM.ECDSA (DER).
        trusted_cis: the GSMA CI certificates the server trusts.
        eid: the EID the terminal claims (hex), if it claims one.

    Returns:
        The result, verified and successful.

    Raises:
        ProofError: reason "malformed", "chain", "eid", "signature", "challenge" or
            "failed" (the user did not pass local authentication).
    """
    parsed = LocalAuthResult.from_bytes(result)
    try:
        ecert = x509.load_der_x509_certificate(bytes(euicc_cert))
        mcert = x509.load_der_x509_certificate(bytes(eum_cert))
        verify_euicc_chain(ecert, mcert, trusted_cis)
    except (ValueError, ChainError) as e:
        raise ProofError("chain", f"the eUICC's certificates do not verify: {e}") from None
    cert_eid = eid_of(ecert).upper()
    if parsed.eid != cert_eid:
        raise ProofError("eid", "the result names another EID than CERT.EUICC")
    if eid is not None and eid.upper() != cert_eid:
        raise ProofError("eid", "the EID sent is not the eUICC's")
    if not verify(ecert, parsed.signature, parsed.signed):
        raise ProofError("signature", "the local-authentication result's signature is invalid")
    if parsed.challenge != bytes(challenge):
        raise ProofError("challenge", "the result was made for another challenge (replayed)")
    if parsed.outcome != OUTCOME_SUCCESS:
        raise ProofError("failed", "the user did not pass local authentication")
    return parsed


# -- the authentication server's certificate ----------------------------------------------

_CERT_TAG = 0xE6


def certificate_tbs(eid: str, serial: bytes, issued: int) -> bytes:
    """What the authentication server signs: `E6 {5A EID, 80 serial, 81 issued (Unix, 8 bytes)}`.

    The EID is the seed's (S22); the serial and the time let a carrier log and
    revoke one certificate, as any certificate has them.
    """
    body = (
        tlv.build(TAG_EID, bytes.fromhex(eid))
        + tlv.build(0x80, serial)
        + tlv.build(0x81, issued.to_bytes(8, "big"))
    )
    return tlv.build(_CERT_TAG, body)


@dataclass(frozen=True)
class EkycCertificate:
    """The authentication server's certificate for one EID (seed S22-S23, S33, S50).

    Attributes:
        eid: the EID it vouches for (hex).
        serial: its serial number (16 bytes).
        issued: Unix seconds.
        signature: r || s over `certificate_tbs` by the authentication server.
        issuer: the authentication server's X.509 certificate (DER), issued by the CA.
    """

    eid: str
    serial: bytes
    issued: int
    signature: bytes
    issuer: bytes

    def tbs(self) -> bytes:
        return certificate_tbs(self.eid, self.serial, self.issued)

    def to_json(self) -> dict[str, Any]:
        return {
            "eid": self.eid,
            "serial": self.serial.hex().upper(),
            "issued": self.issued,
            "signature": self.signature.hex().upper(),
            "issuer": self.issuer.hex().upper(),
        }

    @classmethod
    def from_json(cls, value: Any) -> EkycCertificate:
        """Raises:
        ProofError: "malformed"."""
        try:
            if not isinstance(value, dict):
                raise TypeError("not an object")
            eid = str(value["eid"]).upper()
            bytes.fromhex(eid)
            if len(eid) != 32:
                raise ValueError("an EID is 32 digits")
            issued = value["issued"]
            if not isinstance(issued, int) or not 0 <= issued < 2**63:
                raise ValueError("issued is not a time")
            return cls(
                eid,
                bytes.fromhex(value["serial"]),
                issued,
                bytes.fromhex(value["signature"]),
                bytes.fromhex(value["issuer"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProofError("malformed", f"the certificate is malformed: {e}") from None

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


def verify_certificate(
    cert: EkycCertificate,
    trusted_cas: Iterable[x509.Certificate],
    *,
    eid: str,
    when: _dt.datetime | None = None,
) -> x509.Certificate:
    """Check the authentication server's certificate as a later carrier does (S50).

    The issuer certificate must be signed by a trusted CA, valid now, and allowed
    to sign; the signature must cover this EID.

    Returns:
        The authentication server's X.509 certificate.

    Raises:
        ProofError: "issuer" (not certified by a trusted CA), "eid" (another EID) or
            "signature" (not signed by the authentication server).
    """
    now = when or _dt.datetime.now(_dt.UTC)
    try:
        issuer = x509.load_der_x509_certificate(cert.issuer)
    except ValueError as e:
        raise ProofError("issuer", f"the issuer certificate does not parse: {e}") from None
    for ca in trusted_cas:
        if issuer.issuer != ca.subject:
            continue
        try:
            issuer.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        break
    else:
        raise ProofError("issuer", "the certificate's issuer is not certified by a trusted CA")
    if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
        raise ProofError("issuer", "the authentication server's certificate has expired")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise ProofError("issuer", "the issuer's key may not sign")
    except x509.ExtensionNotFound:
        raise ProofError("issuer", "the issuer certificate has no key usage") from None
    try:  # the server's HTTPS key is certified for TLS, not for vouching for EIDs
        issuer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        raise ProofError("issuer", "the issuer certificate is for another purpose (TLS)")
    except x509.ExtensionNotFound:
        pass
    if cert.eid.upper() != eid.upper():
        raise ProofError("eid", "the certificate is for another EID")
    if not verify(issuer, cert.signature, cert.tbs()):
        raise ProofError("signature", "the certificate is not signed by the authentication server")
    return issuer
