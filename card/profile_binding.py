"""Seed 003's profile binding: the FIG. 4 activation check, shared by every enabling path.

JP 6820082 B2 FIG. 4: before a profile is used (step 402) the eSE checks that the
profile's eSE ID is its own (403) and that the profile provider's signature over
Profile ID | eSE ID | IMSI verifies (405; FIG. 3 formulas 2 and 3: without IMSI,
without eSE ID); otherwise the profile is not used and may be discarded (404).

A profile carries its binding in the profile store's metadata (the `move.*`
keys); an ordinary SGP.22 download carries none and is not concerned. The
eSE's side of the check (its eSE ID, the root it trusts, the variant and the
discard policy) is the move agent's personalisation (applets.profile_move):
the agent hands it out through `ProfileBindingInterface` (looked up by
`MOVE_AGENT_AID`), and both the agent's ACTIVATE and the ISD-R's ES10c
EnableProfile (SGP.22 §5.7.16) run `check_binding` here, so the LPA path cannot
enable a copied or rebound profile the agent would refuse. It lives in card/
because applets never import each other (ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from card import tlv
from card.crypto.keys import P256, EcPublicKey
from card.framework.shareable import Shareable
from card.profiles import MOVE_AGENT_AID
from card.uicc.profile import Profile

__all__ = [
    "BindingError",
    "BindingPolicy",
    "CertError",
    "Certified",
    "META_ESE_ID",
    "META_PROFILE_ID",
    "META_PROVIDER_CERT",
    "META_SIGNATURE",
    "MOVE_AGENT_AID",
    "PROVIDER_OU",
    "ProfileBindingInterface",
    "Variant",
    "binding_data",
    "check_binding",
    "check_certificate",
    "check_with_policy",
    "has_binding",
    "metadata_has_binding",
]

#: The binding's fields in the profile metadata (hex for bytes).
META_PROFILE_ID = "move.profile-id"
META_ESE_ID = "move.ese-id"
META_SIGNATURE = "move.signature"
META_PROVIDER_CERT = "move.provider-cert"
_META_KEYS = (META_PROFILE_ID, META_ESE_ID, META_SIGNATURE, META_PROVIDER_CERT)

#: organizationalUnit of a profile provider's certificate.
PROVIDER_OU = "profile provider"

_TAG_PROFILE_ID = 0xC1
_TAG_ESE_ID = 0xC7
_TAG_IMSI = 0xC8


class Variant(IntEnum):
    """Which fields the binding signature covers (FIG. 3 formulas 1-3)."""

    FULL = 0  # Profile ID | eSE ID | IMSI
    NO_IMSI = 1  # Profile ID | eSE ID
    NO_ESE_ID = 2  # Profile ID | IMSI


class CertError(ValueError):
    """A certificate the eSE does not accept."""


class BindingError(ValueError):
    """A profile this eSE must not use (FIG. 4 step 404)."""


@dataclass(frozen=True)
class Certified:
    """A checked certificate: its public key and the subject fields that matter."""

    public: EcPublicKey
    common_name: str
    organization: str
    unit: str


@dataclass(frozen=True)
class BindingPolicy:
    """This eSE's side of the FIG. 4 check (the move agent's personalisation)."""

    ese_id: bytes
    root: bytes  # the root's uncompressed P-256 point
    variant: Variant
    discard: bool  # step 404 "may discard": delete a profile that fails


class ProfileBindingInterface(Shareable):
    """What the move agent offers the ISD-R: the policy the FIG. 4 check runs with."""

    def binding_policy(self) -> BindingPolicy:
        """This eSE's eSE ID, trusted root, binding variant and discard policy."""
        raise NotImplementedError


def binding_data(variant: Variant, profile_id: str, ese_id: bytes, imsi: str | None) -> bytes:
    """What the binding signature covers (FIG. 3 formulas 1-3), TLV-encoded."""
    out = tlv.build(_TAG_PROFILE_ID, profile_id.encode())
    if variant in (Variant.FULL, Variant.NO_IMSI):
        out += tlv.build(_TAG_ESE_ID, ese_id)
    if variant in (Variant.FULL, Variant.NO_ESE_ID):
        out += tlv.build(_TAG_IMSI, (imsi or "").encode())
    return out


def check_certificate(der: bytes, root: EcPublicKey, unit: str) -> Certified:
    """Check that `der` is an X.509 certificate `root` signed, for the role `unit`.

    The card has no clock: validity dates are the host's business.

    Raises:
        CertError: not a certificate, not signed by the root, another role, no P-256 key.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertError("not an X.509 certificate") from None
    sig_hash = cert.signature_hash_algorithm
    if not isinstance(sig_hash, hashes.SHA256):
        raise CertError("not ECDSA with SHA-256")
    try:
        root.cryptography_key.verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise CertError("the root did not sign this certificate") from None
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise CertError("not a P-256 key")

    def attr(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    certified = Certified(
        EcPublicKey(key),
        attr(NameOID.COMMON_NAME),
        attr(NameOID.ORGANIZATION_NAME),
        attr(NameOID.ORGANIZATIONAL_UNIT_NAME),
    )
    if certified.unit != unit:
        raise CertError(f"a certificate for {certified.unit!r}, not {unit!r}")
    return certified


def has_binding(profile: Profile) -> bool:
    """Whether `profile` carries a move binding (any `move.*` field: a partial one counts).

    A profile with only some of the fields was tampered with; it must meet the
    check (and fail it), not slip through as an unbound profile.
    """
    return metadata_has_binding(profile.metadata)


def metadata_has_binding(metadata: tuple[tuple[str, str], ...]) -> bool:
    """`has_binding` on a profile's metadata alone (`ProfileSummary.metadata`).

    The profile store keeps the metadata apart from the rest of a profile, written
    with it at install time in the same atomic step (the slot's last write, so a
    torn install leaves no profile rather than one without its binding): whether a
    profile is bound is known without reading and decoding the whole profile.
    """
    return any(k in _META_KEYS for k, _ in metadata)


def check_binding(profile: Profile, ese_id: bytes, root: EcPublicKey, variant: Variant) -> str:
    """FIG. 4 steps 403 and 405 on `profile`; returns the provider's MNO.

    Raises:
        BindingError: no binding, another eSE's, a signature that fails, a foreign MNO.
    """
    meta = dict(profile.metadata)
    try:
        profile_id = meta[META_PROFILE_ID]
        bound_to = bytes.fromhex(meta[META_ESE_ID])
        signature = bytes.fromhex(meta[META_SIGNATURE])
        cert_der = bytes.fromhex(meta[META_PROVIDER_CERT])
    except (KeyError, ValueError):
        raise BindingError("the profile carries no binding") from None
    if variant != Variant.NO_ESE_ID and bound_to != ese_id:  # step 403
        raise BindingError("the profile is bound to another eSE")
    try:
        cert = check_certificate(cert_der, root, PROVIDER_OU)
    except CertError as e:
        raise BindingError(f"provider certificate: {e}") from None
    if cert.organization != profile.provider:
        raise BindingError("the provider certificate is another MNO's")
    data = binding_data(variant, profile_id, bound_to, profile.imsi)
    if not cert.public.verify(data, signature):  # step 405
        raise BindingError("the binding signature does not verify")
    return cert.organization


def check_with_policy(profile: Profile, policy: BindingPolicy) -> str:
    """`check_binding` with the eSE's side taken from `policy` (the ISD-R's path).

    Raises:
        BindingError: as `check_binding`, or a policy whose root is not a P-256 point.
    """
    try:
        root = EcPublicKey.from_point(P256, policy.root)
    except ValueError:
        raise BindingError("the eSE's root key is unusable") from None
    return check_binding(profile, policy.ese_id, root, Variant(policy.variant))
