"""Card-verifiable certificates, in the shape of BSI TR-03110-3 Appendix C.

    7F21 {                      CV certificate
      7F4E {                    certificate body
        5F29 00                 certificate profile identifier
        42   CAR                certification authority reference (the issuer)
        7F49 { 06 curve OID, 86 public point }
        5F20 CHR                certificate holder reference (the subject)
      }
      5F37 signature            ECDSA, plain r || s (TR-03111 §5.2.1), over 7F4E
    }

What is left out of TR-03110's profile: the holder authorisation template
(7F4C), the effective and expiration dates, the extensions; the public key
names its curve by OID instead of carrying the domain parameters. The
signature hash follows the issuer's curve: SHA-256 for 256-bit curves, SHA-384
for 384-bit ones (TR-03111 §4.2.1 pairs them so).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from card import tlv
from card.crypto.keys import (
    BRAINPOOL_P256R1,
    BRAINPOOL_P384R1,
    P256,
    P384,
    Curve,
    EcPublicKey,
    der_to_raw,
    raw_to_der,
)

__all__ = [
    "CURVE_OIDS",
    "Cvc",
    "cvc_body",
    "issue_cvc",
    "curve_hash",
    "ec_sign",
    "ec_verify",
    "public_key_template",
    "parse_public_key_template",
]

TAG_CVC = 0x7F21
TAG_BODY = 0x7F4E
TAG_PROFILE = 0x5F29
TAG_CAR = 0x42
TAG_PUBLIC_KEY = 0x7F49
TAG_OID = 0x06
TAG_POINT = 0x86
TAG_CHR = 0x5F20
TAG_SIGNATURE = 0x5F37

#: DER contents of the curve OIDs (RFC 5480 §2.1.1.1; RFC 5639 §4.1).
CURVE_OIDS: dict[str, bytes] = {
    P256.name: bytes.fromhex("2A8648CE3D030107"),  # 1.2.840.10045.3.1.7
    P384.name: bytes.fromhex("2B81040022"),  # 1.3.132.0.34
    BRAINPOOL_P256R1.name: bytes.fromhex("2B2403030208010107"),  # 1.3.36.3.3.2.8.1.1.7
    BRAINPOOL_P384R1.name: bytes.fromhex("2B240303020801010B"),  # 1.3.36.3.3.2.8.1.1.11
}
_CURVES = {c.name: c for c in (P256, P384, BRAINPOOL_P256R1, BRAINPOOL_P384R1)}
_BY_OID = {oid: _CURVES[name] for name, oid in CURVE_OIDS.items()}


def curve_hash(curve: Curve) -> hashes.HashAlgorithm:
    """SHA-256 for a 256-bit curve, SHA-384 for a 384-bit one (TR-03111 §4.2.1)."""
    return hashes.SHA384() if curve.size == 48 else hashes.SHA256()


def ec_sign(key: ec.EllipticCurvePrivateKey, curve: Curve, data: bytes) -> bytes:
    """ECDSA over `data` with the curve's hash, plain r || s, RFC 6979 nonces.

    Deterministic nonces need no randomness: a card signs without touching any
    generator but its own (FIPS 186-5 §6.4.2 allows them).
    """
    der = key.sign(data, ec.ECDSA(curve_hash(curve), deterministic_signing=True))
    return der_to_raw(der, curve.size)


def ec_sign_digest(key: ec.EllipticCurvePrivateKey, curve: Curve, digest: bytes) -> bytes:
    """ECDSA over a hash computed elsewhere (SHA-256 or SHA-384 by length), plain r || s."""
    algorithm: hashes.HashAlgorithm = hashes.SHA384() if len(digest) == 48 else hashes.SHA256()
    der = key.sign(digest, ec.ECDSA(Prehashed(algorithm), deterministic_signing=True))
    return der_to_raw(der, curve.size)


def ec_verify(public: EcPublicKey, data: bytes, signature: bytes) -> bool:
    """Verify a plain r || s ECDSA signature with the key's curve hash."""
    if len(signature) != 2 * public.curve.size:
        return False
    try:
        public.cryptography_key.verify(
            raw_to_der(signature), data, ec.ECDSA(curve_hash(public.curve))
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_template(public: EcPublicKey) -> bytes:
    """7F49 { 06 curve OID, 86 uncompressed point } (ISO/IEC 7816-8 §5.1 Table 3 tags)."""
    return tlv.build(
        TAG_PUBLIC_KEY,
        [(TAG_OID, CURVE_OIDS[public.curve.name]), (TAG_POINT, public.to_point())],
    )


def parse_public_key_template(data: bytes) -> EcPublicKey:
    """The EC public key of a 7F49 { 06, 86 } template.

    Raises:
        ValueError: not such a template, an unknown curve, or not a point on it.
    """
    obj = tlv.Tlv.from_bytes(data, allow_padding=False)
    if obj.tag != TAG_PUBLIC_KEY:
        raise ValueError("not a 7F49 public key template")
    oid = obj.find(TAG_OID)
    point = obj.find(TAG_POINT)
    if oid is None or point is None or oid.value not in _BY_OID:
        raise ValueError("7F49 needs 06 (a supported curve) and 86")
    return EcPublicKey.from_point(_BY_OID[oid.value], point.value)


def cvc_body(car: bytes, chr_: bytes, public: EcPublicKey) -> bytes:
    """The certificate body 7F4E."""
    return tlv.build(
        TAG_BODY,
        [
            (TAG_PROFILE, b"\x00"),
            (TAG_CAR, car),
            public_key_template(public),
            (TAG_CHR, chr_),
        ],
    )


def issue_cvc(
    issuer: ec.EllipticCurvePrivateKey, car: bytes, chr_: bytes, public: EcPublicKey
) -> bytes:
    """A CV certificate for `public`, signed by the issuer's key (the CA with reference CAR)."""
    curve = EcPublicKey(issuer.public_key()).curve
    body = cvc_body(car, chr_, public)
    return tlv.build(TAG_CVC, body + tlv.build(TAG_SIGNATURE, ec_sign(issuer, curve, body)))


@dataclass(frozen=True)
class Cvc:
    """A parsed CV certificate."""

    car: bytes
    chr: bytes
    public: EcPublicKey
    signature: bytes
    body: bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Cvc:
        """Parse a 7F21 certificate.

        Raises:
            ValueError: malformed, a missing element, or an unsupported curve.
        """
        try:
            cert = tlv.Tlv.from_bytes(data, allow_padding=False)
            if cert.tag != TAG_CVC:
                raise ValueError("not a CV certificate (7F21)")
            body = cert.find(TAG_BODY)
            sig = cert.find(TAG_SIGNATURE)
            if body is None or sig is None or len(cert.children) != 2:
                raise ValueError("7F21 needs exactly 7F4E and 5F37")
            car = body.find(TAG_CAR)
            chr_ = body.find(TAG_CHR)
            key = body.find(TAG_PUBLIC_KEY)
            if car is None or chr_ is None or key is None:
                raise ValueError("7F4E needs 42, 7F49 and 5F20")
            public = parse_public_key_template(key.to_bytes())
        except tlv.TlvError as e:
            raise ValueError(f"CV certificate: {e}") from None
        return cls(car.value, chr_.value, public, sig.value, body.to_bytes())

    def verify(self, issuer: EcPublicKey) -> bool:
        """Is the signature the issuer's over the body?"""
        return ec_verify(issuer, self.body, self.signature)
