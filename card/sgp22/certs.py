"""Certificates as the eUICC checks them: GSMA SGP.22 v2.x §4.5.2 (certificates), §5.7.13, §5.7.5.

The eUICC trusts a list of CI public keys, each known by its subject key
identifier (the "CI PKId" of EUICCInfo1). It does not hold a clock, so it
checks no validity period; it checks what does not need one (§4.5.2.2):

- the certificate names a trusted CI as its issuer (authority key identifier
  = a trusted CI PKId, and the one the server said it used, if it said);
- the CI's key signed it (ECDSA with SHA-256, DER signature in X.509);
- the certificate policy is the role's (§4.5.2.1: id-rspRole-dp-auth for
  CERT.DPauth, id-rspRole-dp-pb for CERT.DPpb, id-rspRole-ds-auth for an SM-DS);
- key usage digitalSignature, and a key on a curve the eUICC supports
  (NIST P-256, brainpoolP256r1).

Each failure is a `CertificateError` whose `reason` maps onto the SGP.22
error codes of the calling function (invalidCertificate, invalidOid,
ciPKUnknown, unsupportedCurve).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from card.crypto.keys import EcPublicKey, curve_by_name

__all__ = [
    "CertificateError",
    "CertReason",
    "OID_ROLE_CI",
    "OID_ROLE_EUICC",
    "OID_ROLE_EUM",
    "OID_ROLE_DP_TLS",
    "OID_ROLE_DP_AUTH",
    "OID_ROLE_DP_PB",
    "OID_ROLE_DS_TLS",
    "OID_ROLE_DS_AUTH",
    "ServerCertificate",
    "TrustedCi",
    "authority_key_id",
    "load_certificate",
    "subject_key_id",
    "verify_server_certificate",
    "CrlError",
    "CrlInfo",
    "verify_crl",
]

# RSPDefinitions (SGP.22 Annex H): id-rspRole = id-rsp(2.23.146.1) cert-objects(2) 1.
OID_ROLE_CI = "2.23.146.1.2.1.0"
OID_ROLE_EUICC = "2.23.146.1.2.1.1"
OID_ROLE_EUM = "2.23.146.1.2.1.2"
OID_ROLE_DP_TLS = "2.23.146.1.2.1.3"
OID_ROLE_DP_AUTH = "2.23.146.1.2.1.4"
OID_ROLE_DP_PB = "2.23.146.1.2.1.5"
OID_ROLE_DS_TLS = "2.23.146.1.2.1.6"
OID_ROLE_DS_AUTH = "2.23.146.1.2.1.7"


class CertReason(Enum):
    """Why a certificate was refused (each maps onto an SGP.22 error code)."""

    FORMAT = "format"  # not an X.509 certificate: invalidCertificate
    UNKNOWN_CI = "unknown-ci"  # issuer not a trusted CI: ciPKUnknown
    SIGNATURE = "signature"  # the CI's signature fails: invalidCertificate
    POLICY = "policy"  # wrong or no role policy: invalidOid
    USAGE = "usage"  # key usage without digitalSignature: invalidCertificate
    CURVE = "curve"  # key on an unsupported curve: unsupportedCurve
    REVOKED = "revoked"  # on a CRL the eUICC loaded: invalidCertificate


class CertificateError(Exception):
    """A certificate the eUICC refuses; `reason` says why."""

    def __init__(self, reason: CertReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TrustedCi:
    """A CI public key the eUICC trusts: its key identifier, curve and point."""

    ski: bytes
    curve: str
    point: bytes

    def public_key(self) -> EcPublicKey:
        return EcPublicKey.from_point(curve_by_name(self.curve), self.point)


@dataclass(frozen=True)
class ServerCertificate:
    """What the eUICC keeps of a server certificate it accepted."""

    public_key: EcPublicKey
    ci_ski: bytes
    #: the server's OID (subjectAltName registeredID), e.g. the SM-DP+ OID, if any
    oid: str | None
    der: bytes


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER X.509 certificate, its extensions included.

    cryptography parses the extensions only when first asked for them, and refuses
    some certificates with exceptions that are not ValueErrors (a version other than
    v1/v3, one extension twice, a Name attribute of a type its OID does not allow:
    RFC 5280 §4.1.2.1, §4.2, §4.1.2.4): all are FORMAT here, so no later look at the
    names or the extensions can raise.

    Raises:
        CertificateError: FORMAT.
    """
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
        cert.issuer, cert.subject, cert.extensions  # noqa: B018 - parsed now, refused now
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension) as e:
        raise CertificateError(CertReason.FORMAT, f"not an X.509 certificate: {e}") from None
    return cert


def ec_public_key(cert: x509.Certificate) -> EcPublicKey:
    """The certificate's subject public key, which SGP.22 certificates hold on an EC curve.

    Raises:
        ValueError: not an EC key on a supported curve.
    """
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC public key")
    return EcPublicKey(key)


def subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def registered_id(cert: x509.Certificate) -> str | None:
    """The first registeredID of the subjectAltName (the SM-DP+ OID, §4.5.2.1.0.x)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    ids = san.get_values_for_type(x509.RegisteredID)
    return ids[0].dotted_string if ids else None


def _policies(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return set()
    return {p.policy_identifier.dotted_string for p in ext}


def verify_server_certificate(
    der: bytes,
    roles: tuple[str, ...],
    trusted: tuple[TrustedCi, ...] | list[TrustedCi],
    ci_pkid: bytes | None = None,
    revoked: Mapping[bytes, Collection[int]] | None = None,
) -> ServerCertificate:
    """Check a server certificate (CERT.DPauth, CERT.DPpb, CERT.DSauth) as the eUICC does.

    Args:
        der: the certificate.
        roles: the policy OIDs accepted (one of them must be present).
        trusted: the CI keys the eUICC trusts for verification.
        ci_pkid: the CI the server said it used (euiccCiPKIdToBeUsed), if any.
        revoked: the serial numbers each CI (by key identifier) revoked, from the
            CRLs the eUICC loaded (ES10b.LoadCRL).

    Returns:
        The accepted certificate's public key, CI and OID.

    Raises:
        CertificateError: see `CertReason` for each refusal.
    """
    cert = load_certificate(der)
    aki = authority_key_id(cert)
    ci = next((c for c in trusted if aki is not None and c.ski == aki), None)
    if ci is None or (ci_pkid is not None and ci.ski != bytes(ci_pkid)):
        raise CertificateError(
            CertReason.UNKNOWN_CI, "the certificate was not issued by a trusted CI"
        )
    try:
        issuer_key = ci.public_key()
        issuer_key.cryptography_key.verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, TypeError):
        raise CertificateError(CertReason.SIGNATURE, "the CI's signature does not verify") from None
    if revoked is not None and cert.serial_number in revoked.get(ci.ski, ()):
        raise CertificateError(CertReason.REVOKED, "the certificate is on the CI's CRL")
    if not _policies(cert) & set(roles):
        raise CertificateError(
            CertReason.POLICY, f"the certificate has none of the policies {roles}"
        )
    try:
        ku: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is None or not ku.digital_signature:
        raise CertificateError(CertReason.USAGE, "the certificate's key may not sign")
    try:
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC key")
        pub = EcPublicKey(key)
    except ValueError:
        raise CertificateError(
            CertReason.CURVE, "the certificate's key is on an unsupported curve"
        ) from None
    return ServerCertificate(pub, ci.ski, registered_id(cert), bytes(der))


class CrlError(Exception):
    """A CRL the eUICC refuses, with its LoadCRLResponseError code (SGP.22 Annex H)."""

    INVALID_SIGNATURE = 1
    INVALID_FORMAT = 2
    NOT_ENOUGH_MEMORY = 3
    KEY_NOT_FOUND = 4

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CrlInfo:
    """What the eUICC keeps of a CRL it accepted: whose, which number, which serials."""

    ci_ski: bytes
    number: int
    serials: frozenset[int]


def verify_crl(der: bytes, trusted: tuple[TrustedCi, ...] | list[TrustedCi]) -> CrlInfo:
    """Check a CRL (RFC 5280 §5) signed by a CI the eUICC trusts (SGP.22 ES10b.LoadCRL).

    The CI is found by the CRL's authority key identifier; its signature must
    verify with that CI's key, and the CRL must carry a CRL number (it tells a
    newer CRL from an older one).

    Raises:
        CrlError: not a CRL (invalidCRLFormat), no trusted CI of that key
            (verificationKeyNotFound), or a bad signature (invalidSignature).
    """
    try:
        crl = x509.load_der_x509_crl(bytes(der))
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        serials = frozenset(r.serial_number for r in crl)
    except (ValueError, TypeError, x509.ExtensionNotFound, x509.DuplicateExtension) as e:
        raise CrlError(
            CrlError.INVALID_FORMAT, f"not a CRL with a key identifier and number: {e}"
        ) from None
    ci = next(
        (c for c in trusted if aki.key_identifier is not None and c.ski == aki.key_identifier), None
    )
    if ci is None:
        raise CrlError(CrlError.KEY_NOT_FOUND, "the CRL names no CI the eUICC trusts")
    try:
        ci.public_key().cryptography_key.verify(
            crl.signature, crl.tbs_certlist_bytes, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, TypeError):
        raise CrlError(CrlError.INVALID_SIGNATURE, "the CI's signature does not verify") from None
    return CrlInfo(ci.ski, number, serials)
