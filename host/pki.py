"""A test PKI for GSMA Remote SIM Provisioning (GSMA SGP.22 v2.x §4.5.2).

One call builds the whole hierarchy a local profile download needs:

    CI (self-signed root)
    ├── EUM (sub-CA, pathLen 0, nameConstraints: its organisation and EID prefix)
    │   └── eUICC (one per EID; the EID in the subject serialNumber)
    ├── SM-DP+ CERT.DPauth (authentication, policy id-rspRole-dp-auth)
    ├── SM-DP+ CERT.DPpb   (profile binding, policy id-rspRole-dp-pb)
    └── SM-DP+ CERT.DPtls  (TLS server, policy id-rspRole-dp-tls, DNS names)

Each certificate carries what SGP.22 §4.5.2.1 asks of its role: the
certificate policy OID of the role, key usage, basic constraints for the CAs,
subject and authority key identifiers (SGP.22 §4.5.2.2: chains are built
from them), the CRL distribution point for certificates the CI signs, and the
SM-DP+ OID as a registeredID subject alternative name. Keys are NIST P-256
(FIPS 186-4) or brainpoolP256r1 (RFC 5639).

With a seed, keys, serial numbers and ECDSA signatures (RFC 6979) are
reproducible: the same seed gives the same DER bytes.

`verify_euicc_chain` is the check an SM-DP+ makes on the eUICC's chain
(SGP.22 §4.5.2.2 and §5.6.3): signatures up to a trusted CI, the role
policies, and the EID inside the EUM's permitted range.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "OID_ROLE_CI",
    "OID_ROLE_EUICC",
    "OID_ROLE_EUM",
    "OID_ROLE_DP_TLS",
    "OID_ROLE_DP_AUTH",
    "OID_ROLE_DP_PB",
    "OID_ROLE_DS_TLS",
    "OID_ROLE_DS_AUTH",
    "DEFAULT_SMDS_OID",
    "SmdsCredentials",
    "issue_crl",
    "parse_certificate",
    "is_revoked",
    "load_crls",
    "revoke",
    "CURVES",
    "DEFAULT_EIN",
    "DEFAULT_EID",
    "DEFAULT_SMDP_HOST",
    "DEFAULT_SEED",
    "PkiError",
    "ChainError",
    "Credential",
    "TestPki",
    "create_pki",
    "default_pki",
    "load_pki",
    "eid_check_digits",
    "make_eid",
    "eid_is_valid",
    "eid_of",
    "permitted_eid_ranges",
    "eid_permitted",
    "has_policy",
    "issued_by",
    "subject_key_id",
    "authority_key_id",
    "verify_euicc_chain",
]

# SGP.22 v2.x §4.5.2.1 / the RSPDefinitions ASN.1 module: id-rsp = 2.23.146.1,
# id-rsp-cert-objects = id-rsp 2, id-rspRole = id-rsp-cert-objects 1.
_ID_RSP_ROLE = "2.23.146.1.2.1"
OID_ROLE_CI = x509.ObjectIdentifier(_ID_RSP_ROLE + ".0")
OID_ROLE_EUICC = x509.ObjectIdentifier(_ID_RSP_ROLE + ".1")
OID_ROLE_EUM = x509.ObjectIdentifier(_ID_RSP_ROLE + ".2")
OID_ROLE_DP_TLS = x509.ObjectIdentifier(_ID_RSP_ROLE + ".3")
OID_ROLE_DP_AUTH = x509.ObjectIdentifier(_ID_RSP_ROLE + ".4")
OID_ROLE_DP_PB = x509.ObjectIdentifier(_ID_RSP_ROLE + ".5")
OID_ROLE_DS_TLS = x509.ObjectIdentifier(_ID_RSP_ROLE + ".6")
OID_ROLE_DS_AUTH = x509.ObjectIdentifier(_ID_RSP_ROLE + ".7")

# 2.999 is ITU-T X.660's arc for examples: never a real operator's OID.
DEFAULT_CI_OID = "2.999.1"
DEFAULT_SMDP_OID = "2.999.10"
DEFAULT_SMDS_OID = "2.999.20"

CURVES: dict[str, type[ec.EllipticCurve]] = {
    "nist": ec.SECP256R1,
    "brainpool": ec.BrainpoolP256R1,
}
# The file-name suffixes GSMA SGP.26 uses for the two curves.
_CURVE_SUFFIX = {"nist": "NIST", "brainpool": "BRP"}
# Group orders: FIPS 186-4 D.1.2.3 (P-256) and RFC 5639 §3.4 (brainpoolP256r1).
_CURVE_ORDER = {
    "nist": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "brainpool": 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
}

# The EUM identification number heading every EID the test EUM may issue
# (SGP.22 §4.5.2.1.0.2: 8 digits, the IIN of SGP.02 / the EIN of SGP.29);
# 89 049 032 is the one the GSMA test certificates (SGP.26) use.
DEFAULT_EIN = "89049032"
DEFAULT_SMDP_HOST = "localhost"
DEFAULT_SEED = b"cardemu test PKI"
DEFAULT_CRL_URL = "http://ci.cardemu.invalid/crl.der"

_NOT_BEFORE = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC)
_CA_NOT_AFTER = _dt.datetime(2054, 1, 1, tzinfo=_dt.UTC)
_SERVER_NOT_AFTER = _dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)
# SGP.22 §4.5.2.1.0.3: an eUICC certificate does not expire (99991231235959Z).
_EUICC_NOT_AFTER = _dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)


class PkiError(Exception):
    """A PKI could not be built, saved or loaded."""


class ChainError(Exception):
    """A certificate chain failed verification.

    Attributes:
        which: the certificate at fault: "ci" (no trusted CI issued the chain),
            "eum" or "euicc".
        reason: "signature", "policy", "usage", "range" (EID outside the EUM's
            permitted range), "expired" or "malformed" (names or extensions that do
            not parse, one extension twice: RFC 5280 §4.1.2.4, §4.2).
    """

    def __init__(self, which: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.which = which
        self.reason = reason


# -- EIDs -------------------------------------------------------------------------------


def eid_check_digits(first30: str) -> str:
    """The two EID check digits (GSMA SGP.02 §2.2.2: ISO/IEC 7064 MOD 97-10, as IBAN).

    Args:
        first30: the first 30 decimal digits of the EID.
    """
    if len(first30) != 30 or not first30.isdigit():
        raise ValueError("an EID has 30 digits before its 2 check digits")
    return f"{98 - int(first30 + '00') % 97:02d}"


def make_eid(ein: str = DEFAULT_EIN, serial: int = 1) -> str:
    """An EID in the range `ein` heads: `ein`, zero-padded `serial`, check digits."""
    body = ein + str(serial).rjust(30 - len(ein), "0")
    if len(body) != 30 or not body.isdigit():
        raise ValueError(f"EIN {ein!r} and serial {serial} do not make a 30-digit EID body")
    return body + eid_check_digits(body)


def eid_is_valid(eid: str) -> bool:
    """True if `eid` has 32 decimal digits and its check digits hold (the number mod 97 is 1)."""
    return len(eid) == 32 and eid.isdigit() and int(eid) % 97 == 1


DEFAULT_EID = make_eid(DEFAULT_EIN, 1)


# -- Keys, credentials -------------------------------------------------------------------


def _seed_bytes(seed: bytes | int | str) -> bytes:
    if isinstance(seed, int):
        return seed.to_bytes((seed.bit_length() + 8) // 8, "big", signed=True)
    if isinstance(seed, str):
        return seed.encode()
    return bytes(seed)


def _derive(seed: bytes | None, label: str, size: int) -> bytes:
    data = hashlib.sha512((seed or b"") + b"\x00" + label.encode()).digest()
    return data[:size]


def _new_key(curve: str, seed: bytes | None, label: str) -> ec.EllipticCurvePrivateKey:
    if seed is None:
        return ec.generate_private_key(CURVES[curve]())
    # 64 bytes reduced mod n - 1: the bias is 2^-256, negligible (FIPS 186-4 B.4.1).
    order = _CURVE_ORDER[curve]
    scalar = int.from_bytes(_derive(seed, "key " + label, 64), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, CURVES[curve]())


def _serial(seed: bytes | None, label: str) -> int:
    if seed is None:
        return x509.random_serial_number()
    # Positive and at most 8 bytes (RFC 5280 §4.1.2.2 allows up to 20).
    return int.from_bytes(_derive(seed, "serial " + label, 8), "big") >> 1 | 1


def _curve_name(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    for name, cls in CURVES.items():
        if isinstance(key.curve, cls):
            return name
    raise PkiError(f"unsupported curve {key.curve.name}")


@dataclass(frozen=True)
class Credential:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        """The certificate, DER-encoded."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        """The certificate, PEM-encoded."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (a test PKI: no passphrase)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def private_scalar(self) -> bytes:
        """The private key as a 32-byte big-endian scalar (what a card stores)."""
        return self.key.private_numbers().private_value.to_bytes(32, "big")

    @property
    def public_point(self) -> bytes:
        """The public key as an uncompressed point 04 || X || Y (SEC 1 §2.3.3)."""
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    @property
    def curve(self) -> str:
        """ "nist" or "brainpool"."""
        return _curve_name(self.key)

    @property
    def ski(self) -> bytes:
        """The subject key identifier."""
        return subject_key_id(self.cert)

    def sign(self, data: bytes) -> bytes:
        """ECDSA with SHA-256 over `data`, as plain r || s (BSI TR-03111 §5.2.1), RFC 6979."""
        der = self.key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# -- Certificate helpers -----------------------------------------------------------------


def subject_key_id(cert: x509.Certificate) -> bytes:
    """The subject key identifier extension's value.

    Raises:
        PkiError: the certificate has none.
    """
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        raise PkiError(f"{cert.subject.rfc4514_string()}: no subject key identifier") from None


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    """The authority key identifier's keyIdentifier, or None for a certificate without one."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return ext.key_identifier


def has_policy(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    """True if the certificate policies extension lists `oid` (SGP.22 §4.5.2.1 role)."""
    try:
        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return False
    return any(p.policy_identifier == oid for p in policies)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if `issuer`'s key signed `cert` and the key identifiers and names link them."""
    if authority_key_id(cert) not in (None, subject_key_id(issuer)):
        return False
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def eid_of(cert: x509.Certificate) -> str:
    """The EID an eUICC certificate names (its subject serialNumber, SGP.22 §4.5.2.1.0.3).

    Raises:
        PkiError: the subject has no serialNumber.
    """
    attrs = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if not attrs:
        raise PkiError("the eUICC certificate's subject has no serialNumber (EID)")
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode()


def _org_of(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode()


def permitted_eid_ranges(eum_cert: x509.Certificate) -> list[tuple[str | None, str]]:
    """The (organisation, EID prefix) pairs the EUM certificate's nameConstraints permit.

    SGP.22 §4.5.2.1.0.2: the permittedSubtrees hold directoryNames with the
    EUM's organisation and, in serialNumber, the leading digits every EID it
    issues starts with.
    """
    try:
        nc = eum_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return []
    out: list[tuple[str | None, str]] = []
    for sub in nc.permitted_subtrees or ():
        if not isinstance(sub, x509.DirectoryName):
            continue
        serials = sub.value.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if not serials:
            continue
        prefix = serials[0].value
        out.append((_org_of(sub.value), prefix if isinstance(prefix, str) else prefix.decode()))
    return out


def eid_permitted(euicc_cert: x509.Certificate, eum_cert: x509.Certificate) -> bool:
    """True if the eUICC certificate's EID and organisation fall in the EUM's permitted range.

    SGP.22 §4.5.2.2: the subject's organisation is one the name constraints
    list, and the EID (subject serialNumber) starts with that entry's digits.
    """
    try:
        eid = eid_of(euicc_cert)
    except PkiError:
        return False
    org = _org_of(euicc_cert.subject)
    for permitted_org, prefix in permitted_eid_ranges(eum_cert):
        if permitted_org is not None and permitted_org != org:
            continue
        if prefix and eid.upper().startswith(prefix.upper()):
            return True
    return False


def _key_usage(*, sign: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _policies(oid: x509.ObjectIdentifier) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(oid, None)])


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
    )


def _aki(issuer: Credential) -> x509.AuthorityKeyIdentifier:
    # keyIdentifier only: SGP.22 §4.5.2.1 builds chains on key identifiers.
    return x509.AuthorityKeyIdentifier(issuer.ski, None, None)


def _build(
    builder: x509.CertificateBuilder,
    subject_key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.Certificate:
    builder = builder.public_key(subject_key.public_key()).add_extension(
        x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
    )
    return builder.sign(signer, hashes.SHA256(), ecdsa_deterministic=True)


# -- The PKI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SmdsCredentials:
    """An SM-DS's certificates under one CI: CERT.DSauth (ES11 authentication) and CERT.DStls.

    Attributes:
        ci: the CI certificate that signed them.
        dsauth: signs serverSigned1 (policy id-rspRole-ds-auth).
        dstls: the HTTPS server certificate (policy id-rspRole-ds-tls).
        oid: the SM-DS OID (registeredID in both).
    """

    ci: x509.Certificate
    dsauth: Credential
    dstls: Credential
    oid: str

    @property
    def ci_ski(self) -> bytes:
        """The CI's subject key identifier (euiccCiPKId)."""
        return subject_key_id(self.ci)


@dataclass(frozen=True)
class TestPki:
    """A CI with the EUM, eUICC and SM-DP+ credentials it certifies, on one curve.

    Attributes:
        curve: "nist" or "brainpool".
        ci: the self-signed CI.
        eum: the EUM sub-CA, permitted `ein` for organisation `eum_org`.
        euiccs: eUICC credentials by EID.
        dpauth, dppb, dptls: the SM-DP+ credentials.
        smdp_host: the SM-DP+ host name in CERT.DPtls.
        smdp_oid: the SM-DP+ OID in the SM-DP+ certificates' subjectAltName.
    """

    __test__ = False  # not a pytest class, despite its name

    curve: str
    ci: Credential
    eum: Credential
    euiccs: dict[str, Credential]
    dpauth: Credential
    dppb: Credential
    dptls: Credential
    ein: str
    eum_org: str
    smdp_host: str
    smdp_oid: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def euicc(self) -> Credential:
        """The first eUICC credential (the one a single-card setup uses)."""
        return next(iter(self.euiccs.values()))

    @property
    def eid(self) -> str:
        """The first eUICC's EID."""
        return next(iter(self.euiccs))

    def issue_euicc(
        self, eid: str, *, seed: bytes | int | str | None = None, org: str | None = None
    ) -> Credential:
        """A new eUICC credential signed by this PKI's EUM (not added to `euiccs`).

        `org` overrides the subject organisation (tests use it to step outside
        the EUM's name constraints); the EID is not checked against the range
        for the same reason.
        """
        s = None if seed is None else _seed_bytes(seed)
        return _euicc(self.curve, self.eum, eid, org or self.eum_org, s)

    def issue_smds(
        self,
        host: str = DEFAULT_SMDP_HOST,
        *,
        oid: str = DEFAULT_SMDS_OID,
        tls_names: Sequence[str] = ("localhost", "127.0.0.1"),
    ) -> SmdsCredentials:
        """CERT.DSauth and CERT.DStls for an SM-DS, signed by this PKI's CI (SGP.22 §4.5.2.1).

        The keys, serial numbers and signatures are derived from the CI's private
        key, the host and the OID: the same PKI always gives the same SM-DS
        certificates, so a PKI directory needs no SM-DS files of its own, and a
        root and an alternative SM-DS (different hosts or OIDs) get different keys.

        Args:
            host: the SM-DS host name (CERT.DStls subject CN and first DNS name).
            oid: the SM-DS OID (registeredID in both certificates).
            tls_names: more DNS names or IP addresses for CERT.DStls.
        """
        seed = hashlib.sha256(
            b"smds\x00" + self.ci.private_scalar + host.encode() + b"\x00" + oid.encode()
        ).digest()
        return SmdsCredentials(
            ci=self.ci.cert,
            dsauth=_server(
                self.curve, self.ci, OID_ROLE_DS_AUTH, "dsauth", oid, seed, self.crl_url, "SM-DS"
            ),
            dstls=_tls_cert(
                self.curve,
                self.ci,
                host,
                tls_names,
                oid,
                seed,
                self.crl_url,
                label="dstls",
                policy=OID_ROLE_DS_TLS,
            ),
            oid=oid,
        )

    @property
    def crl_url(self) -> str:
        """The CRL distribution point the CI's certificates name."""
        try:
            ext = self.dpauth.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        except x509.ExtensionNotFound:
            return DEFAULT_CRL_URL
        names = ext.value[0].full_name or []
        uris = [n.value for n in names if isinstance(n, x509.UniformResourceIdentifier)]
        return str(uris[0]) if uris else DEFAULT_CRL_URL

    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the certificates (DER, and PEM for TLS) and keys (PKCS#8 PEM) under `directory`.

        File names follow GSMA SGP.26's (CERT_CI_ECDSA_NIST.der, SK_...pem);
        `pki.json` lists what is there. A second curve can be saved into the
        same directory.

        Returns:
            The files written.
        """
        root = Path(directory)
        sfx = _CURVE_SUFFIX[self.curve]
        files: dict[str, bytes] = {
            f"ci/CERT_CI_ECDSA_{sfx}.der": self.ci.der,
            f"ci/CERT_CI_ECDSA_{sfx}.pem": self.ci.pem,
            f"ci/SK_CI_ECDSA_{sfx}.pem": self.ci.key_pem,
            f"eum/CERT_EUM_ECDSA_{sfx}.der": self.eum.der,
            f"eum/SK_EUM_ECDSA_{sfx}.pem": self.eum.key_pem,
            f"dpauth/CERT_S_SM_DPauth_ECDSA_{sfx}.der": self.dpauth.der,
            f"dpauth/SK_S_SM_DPauth_ECDSA_{sfx}.pem": self.dpauth.key_pem,
            f"dppb/CERT_S_SM_DPpb_ECDSA_{sfx}.der": self.dppb.der,
            f"dppb/SK_S_SM_DPpb_ECDSA_{sfx}.pem": self.dppb.key_pem,
            f"dptls/CERT_S_SM_DP_TLS_{sfx}.der": self.dptls.der,
            f"dptls/CERT_S_SM_DP_TLS_{sfx}.pem": self.dptls.pem,
            f"dptls/SK_S_SM_DP_TLS_{sfx}.pem": self.dptls.key_pem,
        }
        for eid, cred in self.euiccs.items():
            files[f"euicc/{eid}/CERT_EUICC_ECDSA_{sfx}.der"] = cred.der
            files[f"euicc/{eid}/SK_EUICC_ECDSA_{sfx}.pem"] = cred.key_pem
        written = []
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            if rel.split("/")[-1].startswith("SK_"):
                path.chmod(0o600)
            written.append(path)
        manifest_path = root / "pki.json"
        manifest: dict[str, object] = {}
        if manifest_path.exists():
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError):
                manifest = {}
        curves = manifest.get("curves")
        curves = dict(curves) if isinstance(curves, dict) else {}
        curves[self.curve] = {
            "eids": list(self.euiccs),
            "ci_ski": self.ci.ski.hex(),
        }
        manifest.update(
            {
                "format": "cardemu-pki/1",
                "ein": self.ein,
                "eum_org": self.eum_org,
                "smdp_host": self.smdp_host,
                "smdp_oid": self.smdp_oid,
                "curves": curves,
            }
        )
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        written.append(manifest_path)
        return written


def _ci(curve: str, seed: bytes | None, crl_url: str) -> Credential:
    key = _new_key(curve, seed, "ci")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "cardemu Test CI"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "TESTCERT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardemu"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
        ]
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(_serial(seed, "ci"))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_CA_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_policies(OID_ROLE_CI), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.RegisteredID(x509.ObjectIdentifier(DEFAULT_CI_OID))]),
            critical=False,
        )
        .add_extension(_crl_dp(crl_url), critical=False)
    )
    # A root has a subject key identifier only (SGP.22 §4.5.2.2).
    return Credential(_build(b, key, key), key)


def _eum(
    curve: str, ci: Credential, ein: str, org: str, seed: bytes | None, crl_url: str
) -> Credential:
    key = _new_key(curve, seed, "eum")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, org),
        ]
    )
    permitted = x509.DirectoryName(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, ein),
            ]
        )
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ci.cert.subject)
        .serial_number(_serial(seed, "eum"))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_CA_NOT_AFTER)
        .add_extension(_aki(ci), critical=False)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(_policies(OID_ROLE_EUM), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.NameConstraints([permitted], None), critical=True)
        .add_extension(_crl_dp(crl_url), critical=False)
    )
    return Credential(_build(b, key, ci.key), key)


def _euicc(curve: str, eum: Credential, eid: str, org: str, seed: bytes | None) -> Credential:
    key = _new_key(curve, seed, "euicc " + eid)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, "cardemu eUICC"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, eid),
        ]
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(eum.cert.subject)
        .serial_number(_serial(seed, "euicc " + eid))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_EUICC_NOT_AFTER)
        .add_extension(_aki(eum), critical=False)
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(_policies(OID_ROLE_EUICC), critical=True)
    )
    return Credential(_build(b, key, eum.key), key)


def _server(
    curve: str,
    ci: Credential,
    role: x509.ObjectIdentifier,
    label: str,
    oid: str,
    seed: bytes | None,
    crl_url: str,
    what: str,
) -> Credential:
    """An RSP server's signing certificate (CERT.DPauth, CERT.DPpb, CERT.DSauth).

    `oid` is the server's (SM-DP+ or SM-DS OID, the registeredID); `what` names it in the CN.
    """
    key = _new_key(curve, seed, label)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardemu"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"cardemu {what}"),
        ]
    )
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ci.cert.subject)
        .serial_number(_serial(seed, label))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_SERVER_NOT_AFTER)
        .add_extension(_aki(ci), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.RegisteredID(x509.ObjectIdentifier(oid))]),
            critical=False,
        )
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(_policies(role), critical=True)
        .add_extension(_crl_dp(crl_url), critical=False)
    )
    return Credential(_build(b, key, ci.key), key)


def _tls_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _dptls(
    curve: str,
    ci: Credential,
    host: str,
    names: Sequence[str],
    smdp_oid: str,
    seed: bytes | None,
    crl_url: str,
) -> Credential:
    return _tls_cert(curve, ci, host, names, smdp_oid, seed, crl_url)


def _tls_cert(
    curve: str,
    ci: Credential,
    host: str,
    names: Sequence[str],
    smdp_oid: str,
    seed: bytes | None,
    crl_url: str,
    *,
    label: str = "dptls",
    policy: x509.ObjectIdentifier = OID_ROLE_DP_TLS,
) -> Credential:
    """An RSP server's TLS certificate (CERT.DPtls, CERT.DStls)."""
    key = _new_key(curve, seed, label)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardemu"),
            x509.NameAttribute(NameOID.COMMON_NAME, host),
        ]
    )
    alt: list[x509.GeneralName] = []
    for n in [host, *names]:
        g = _tls_name(n)
        if g not in alt:
            alt.append(g)
    alt.append(x509.RegisteredID(x509.ObjectIdentifier(smdp_oid)))
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ci.cert.subject)
        .serial_number(_serial(seed, label))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_SERVER_NOT_AFTER)
        .add_extension(_key_usage(sign=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            # Not critical, unlike the SGP.26 samples: RFC 5280 §4.2.1.12 allows
            # either, and strict Web-PKI verifiers refuse a critical one.
            critical=False,
        )
        .add_extension(_policies(policy), critical=False)
        .add_extension(_aki(ci), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(_crl_dp(crl_url), critical=False)
    )
    return Credential(_build(b, key, ci.key), key)


def create_pki(
    *,
    curve: str = "nist",
    eids: Iterable[str] | None = None,
    ein: str = DEFAULT_EIN,
    eum_org: str = "cardemu EUM",
    smdp_host: str = DEFAULT_SMDP_HOST,
    tls_names: Sequence[str] = ("localhost", "127.0.0.1"),
    smdp_oid: str = DEFAULT_SMDP_OID,
    seed: bytes | int | str | None = None,
    crl_url: str = DEFAULT_CRL_URL,
) -> TestPki:
    """Build a test PKI: CI, EUM, eUICCs, SM-DP+ DPauth/DPpb/DPtls.

    Args:
        curve: "nist" (P-256) or "brainpool" (brainpoolP256r1).
        eids: the eUICCs to certify (default: one, `make_eid(ein, 1)`); each
            must start with `ein`.
        ein: the EID prefix the EUM is permitted (8 digits in SGP.22 v2).
        eum_org: the EUM's organisation (subject O of the EUM and its eUICCs).
        smdp_host: the SM-DP+ host name (CERT.DPtls subject CN and first DNS name).
        tls_names: more DNS names or IP addresses for CERT.DPtls.
        smdp_oid: the SM-DP+ OID (registeredID in its certificates).
        seed: makes every key, serial number and signature reproducible.
        crl_url: the CRL distribution point of the CI-signed certificates.

    Raises:
        PkiError: an unknown curve, a malformed EIN or EID, or an EID outside `ein`.
    """
    if curve not in CURVES:
        raise PkiError(f"unknown curve {curve!r}; choose from {', '.join(CURVES)}")
    if not ein or not ein.isdigit() or len(ein) > 30:
        raise PkiError(f"EIN {ein!r}: give the leading decimal digits of the EIDs (8 in SGP.22)")
    eid_list = list(eids) if eids is not None else [make_eid(ein, 1)]
    if not eid_list:
        raise PkiError("at least one EID is needed")
    for eid in eid_list:
        if not eid_is_valid(eid):
            raise PkiError(f"EID {eid!r}: not 32 digits with valid check digits (SGP.02 §2.2.2)")
        if not eid.startswith(ein):
            raise PkiError(f"EID {eid} is outside the EUM's range {ein}")
    s = None if seed is None else _seed_bytes(seed)
    # Each curve gets its own keys even with one seed.
    s = None if s is None else s + b"/" + curve.encode()
    ci = _ci(curve, s, crl_url)
    eum = _eum(curve, ci, ein, eum_org, s, crl_url)
    euiccs = {eid: _euicc(curve, eum, eid, eum_org, s) for eid in eid_list}
    return TestPki(
        curve=curve,
        ci=ci,
        eum=eum,
        euiccs=euiccs,
        dpauth=_server(curve, ci, OID_ROLE_DP_AUTH, "dpauth", smdp_oid, s, crl_url, "SM-DP+"),
        dppb=_server(curve, ci, OID_ROLE_DP_PB, "dppb", smdp_oid, s, crl_url, "SM-DP+"),
        dptls=_dptls(curve, ci, smdp_host, tls_names, smdp_oid, s, crl_url),
        ein=ein,
        eum_org=eum_org,
        smdp_host=smdp_host,
        smdp_oid=smdp_oid,
    )


def default_pki(curve: str = "nist") -> TestPki:
    """The built-in test PKI (fixed seed): what the emulated eUICC and SM-DP+ use by default.

    Anyone can rebuild its private keys from the seed: it is for local tests only.
    """
    return create_pki(curve=curve, seed=DEFAULT_SEED)


def parse_certificate(data: bytes) -> x509.Certificate:
    """An X.509 certificate in PEM (RFC 7468) or DER, as a file holds it.

    Raises:
        ValueError: neither.
    """
    if data.startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _load_cred(cert_path: Path, key_path: Path) -> Credential:
    try:
        cert = parse_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    except (OSError, ValueError) as e:
        raise PkiError(f"cannot load {cert_path.name}: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{key_path}: not an EC private key")
    return Credential(cert, key)


def load_pki(directory: str | os.PathLike[str], curve: str = "nist") -> TestPki:
    """Read back a PKI `TestPki.save` wrote.

    Raises:
        PkiError: files missing or unreadable, or no PKI for `curve` there.
    """
    root = Path(directory)
    try:
        manifest = json.loads((root / "pki.json").read_text())
    except (OSError, ValueError) as e:
        raise PkiError(f"{root}: no readable pki.json ({e})") from None
    curves = manifest.get("curves") or {}
    if curve not in curves:
        raise PkiError(f"{root}: no {curve} PKI (has {', '.join(curves) or 'none'})")
    sfx = _CURVE_SUFFIX[curve]
    euiccs = {
        eid: _load_cred(
            root / f"euicc/{eid}/CERT_EUICC_ECDSA_{sfx}.der",
            root / f"euicc/{eid}/SK_EUICC_ECDSA_{sfx}.pem",
        )
        for eid in curves[curve]["eids"]
    }
    return TestPki(
        curve=curve,
        ci=_load_cred(root / f"ci/CERT_CI_ECDSA_{sfx}.der", root / f"ci/SK_CI_ECDSA_{sfx}.pem"),
        eum=_load_cred(
            root / f"eum/CERT_EUM_ECDSA_{sfx}.der", root / f"eum/SK_EUM_ECDSA_{sfx}.pem"
        ),
        euiccs=euiccs,
        dpauth=_load_cred(
            root / f"dpauth/CERT_S_SM_DPauth_ECDSA_{sfx}.der",
            root / f"dpauth/SK_S_SM_DPauth_ECDSA_{sfx}.pem",
        ),
        dppb=_load_cred(
            root / f"dppb/CERT_S_SM_DPpb_ECDSA_{sfx}.der",
            root / f"dppb/SK_S_SM_DPpb_ECDSA_{sfx}.pem",
        ),
        dptls=_load_cred(
            root / f"dptls/CERT_S_SM_DP_TLS_{sfx}.der", root / f"dptls/SK_S_SM_DP_TLS_{sfx}.pem"
        ),
        ein=manifest["ein"],
        eum_org=manifest["eum_org"],
        smdp_host=manifest["smdp_host"],
        smdp_oid=manifest["smdp_oid"],
    )


# -- Revocation (CRLs) -------------------------------------------------------------------

_CRL_DAYS = 30


def issue_crl(
    issuer: Credential,
    serials: Iterable[int],
    *,
    number: int = 1,
    when: _dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL (RFC 5280 §5, X.509 v2) listing `serials` as revoked, signed by `issuer`.

    What SGP.22 §4.5.2.1.0.1 asks of an RSP CRL: the issuer's name, thisUpdate and
    nextUpdate, the revoked serial numbers with their dates, the authority key
    identifier (chains and CRLs are matched on key identifiers, §4.5.2.2) and a
    CRL number. The CI's CRL revokes SM-DP+, SM-DS and EUM certificates; an EUM's
    revokes the eUICC certificates it issued. Signed deterministically (RFC 6979),
    so the same revocations give the same bytes.

    Args:
        issuer: the CA whose certificates it revokes.
        serials: the revoked certificates' serial numbers.
        number: the CRL number (grows with each new CRL of this issuer).
        when: thisUpdate (default: now); nextUpdate is 30 days later.
    """
    now = (when or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(now + _dt.timedelta(days=_CRL_DAYS))
        .add_extension(_aki(issuer), critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in sorted(set(serials)):
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return b.sign(issuer.key, hashes.SHA256(), ecdsa_deterministic=True)


def _crl_files(root: Path, curve: str) -> dict[str, Path]:
    sfx = _CURVE_SUFFIX[curve]
    return {
        "ci": root / f"crl/CRL_CI_ECDSA_{sfx}.der",
        "eum": root / f"crl/CRL_EUM_ECDSA_{sfx}.der",
    }


def revoke(
    directory: str | os.PathLike[str], cert: x509.Certificate, curve: str | None = None
) -> tuple[str, Path]:
    """Revoke a certificate of the PKI in `directory`: re-issue its issuer's CRL there.

    The certificate's issuer is found by its authority key identifier: the CI
    (an SM-DP+, SM-DS or EUM certificate) or the EUM (an eUICC certificate).
    The revoked serial numbers are kept in `crl/revoked.json`, and each new CRL
    gets the next CRL number.

    Returns:
        ("ci" or "eum", the CRL file written).

    Raises:
        PkiError: no PKI there, or neither its CI nor its EUM issued `cert`.
    """
    root = Path(directory)
    curves = [curve] if curve else list(CURVES)
    for c in curves:
        try:
            pki = load_pki(root, c)
        except PkiError:
            continue
        aki = authority_key_id(cert)
        found = [
            (name, ca)
            for name, ca in (("ci", pki.ci), ("eum", pki.eum))
            if aki == ca.ski and cert.issuer == ca.cert.subject
        ]
        if not found:
            continue
        which, issuer = found[0]
        state_path = root / "crl" / "revoked.json"
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            state = {}
        entry = state.setdefault(c, {}).setdefault(which, {"number": 0, "serials": []})
        if cert.serial_number not in entry["serials"]:
            entry["serials"].append(cert.serial_number)
        entry["number"] += 1
        crl = issue_crl(issuer, entry["serials"], number=entry["number"])
        path = _crl_files(root, c)[which]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
        state_path.write_text(json.dumps(state, indent=2) + "\n")
        return which, path
    raise PkiError(f"{root}: no CI or EUM there issued {cert.subject.rfc4514_string()}")


def load_pkis(directory: str | os.PathLike[str]) -> list[TestPki]:
    """Every PKI `TestPki.save` wrote under `directory`, one a curve (NIST first).

    What a server offers eUICCs of either curve (SGP.22 §2.6.5: a CI a curve).

    Raises:
        PkiError: no PKI of any curve there.
    """
    pkis = []
    for curve in CURVES:
        try:
            pkis.append(load_pki(directory, curve))
        except PkiError:
            continue
    if not pkis:
        raise PkiError(f"{directory}: no PKI there (make one with `cardemu pki create`)")
    return pkis


def load_crls(
    directory: str | os.PathLike[str], curve: str | None = None
) -> list[x509.CertificateRevocationList]:
    """The CRLs `revoke` wrote under `directory` (none yet: an empty list).

    Raises:
        PkiError: a CRL file that does not parse.
    """
    out = []
    for c in [curve] if curve else list(CURVES):
        for path in _crl_files(Path(directory), c).values():
            if not path.exists():
                continue
            try:
                out.append(x509.load_der_x509_crl(path.read_bytes()))
            except ValueError as e:
                raise PkiError(f"{path}: not a CRL ({e})") from None
    return out


def is_revoked(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    crls: Iterable[x509.CertificateRevocationList],
) -> bool:
    """True if a CRL that `issuer` signed lists `cert`'s serial number (RFC 5280 §6.3).

    A CRL of another issuer, or one whose signature does not verify with the
    issuer's key, says nothing about `cert`.
    """
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    for crl in crls:
        if crl.issuer != issuer.subject:
            continue
        try:
            if not crl.is_signature_valid(key):
                continue
        except (ValueError, TypeError):
            continue
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return True
    return False


# -- Chain verification ------------------------------------------------------------------


def _valid_at(cert: x509.Certificate, when: _dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def _key_usage_of(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _check_link(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: _dt.datetime,
    *,
    which: str,
    policy: x509.ObjectIdentifier,
    policy_name: str,
    usage_ok: Callable[[x509.KeyUsage], bool],
    usage_error: str,
) -> None:
    """One link of the chain: the issuer's signature, the role policy, key usage, validity.

    The EUM and the eUICC certificate each take these four checks, in this order
    (SGP.22 §4.5.2.2).

    Args:
        which: "eum" or "euicc", for the `ChainError`.
        policy, policy_name: the certificate policy the role requires.
        usage_ok, usage_error: whether the key usage fits the role; the message if not.

    Raises:
        ChainError: at the first check that fails.
    """
    name = "EUM" if which == "eum" else "eUICC"
    if not issued_by(cert, issuer):
        raise ChainError(which, "signature", f"the {name} certificate's signature does not verify")
    if not has_policy(cert, policy):
        raise ChainError(which, "policy", f"the {name} certificate lacks policy {policy_name}")
    ku = _key_usage_of(cert)
    if ku is None or not usage_ok(ku):
        raise ChainError(which, "usage", usage_error)
    if not _valid_at(cert, now):
        raise ChainError(which, "expired", f"the {name} certificate is outside its validity")


def verify_euicc_chain(
    euicc_cert: x509.Certificate,
    eum_cert: x509.Certificate,
    trusted_cis: Iterable[x509.Certificate],
    *,
    when: _dt.datetime | None = None,
    crls: Sequence[x509.CertificateRevocationList] = (),
) -> x509.Certificate:
    """Check CERT.EUICC ← CERT.EUM ← a trusted CI, as an SM-DP+ does (SGP.22 §4.5.2.2, §5.6.3).

    Args:
        euicc_cert: the eUICC's certificate.
        eum_cert: its EUM's certificate.
        trusted_cis: the CI certificates the verifier trusts.
        when: the time for the validity check (default: now).
        crls: CRLs of the CI and the EUM (SGP.22 §4.5.2.2: a revoked certificate
            fails the chain, reason "revoked").

    Returns:
        The CI certificate the chain leads to.

    Raises:
        ChainError: with `which` "ci" (no trusted CI issued the EUM), "eum" or
            "euicc" and a `reason` (signature, policy, usage, range, expired).
    """
    now = when or _dt.datetime.now(_dt.UTC)
    for which, cert in (("eum", eum_cert), ("euicc", euicc_cert)):
        try:
            # cryptography parses these only when first asked (and refuses, e.g., one
            # extension twice, RFC 5280 §4.2, or a Name attribute of a type its OID does
            # not allow): parsed here, a bad one is this chain's error, not a crash later.
            cert.issuer, cert.subject, cert.extensions  # noqa: B018
            cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
        except (x509.DuplicateExtension, ValueError, TypeError) as e:
            raise ChainError(which, "malformed", f"the {which.upper()} certificate: {e}") from None
    aki = authority_key_id(eum_cert)
    ci = next((c for c in trusted_cis if aki is not None and subject_key_id(c) == aki), None)
    if ci is None:
        raise ChainError("ci", "unknown", "the EUM certificate names no CI the verifier trusts")
    _check_link(
        eum_cert,
        ci,
        now,
        which="eum",
        policy=OID_ROLE_EUM,
        policy_name="id-rspRole-eum",
        usage_ok=lambda ku: ku.key_cert_sign,
        usage_error="the EUM certificate may not sign certificates",
    )
    _check_link(
        euicc_cert,
        eum_cert,
        now,
        which="euicc",
        policy=OID_ROLE_EUICC,
        policy_name="id-rspRole-euicc",
        usage_ok=lambda ku: ku.digital_signature,
        usage_error="the eUICC certificate's key may not sign",
    )
    if not eid_permitted(euicc_cert, eum_cert):
        raise ChainError(
            "euicc", "range", "the EID is outside the range the EUM certificate permits"
        )
    if crls and is_revoked(eum_cert, ci, crls):
        raise ChainError("eum", "revoked", "the EUM certificate is revoked (the CI's CRL)")
    if crls and is_revoked(euicc_cert, eum_cert, crls):
        raise ChainError("euicc", "revoked", "the eUICC certificate is revoked (the EUM's CRL)")
    return ci
