"""Key containers: symmetric keys with their check values, EC key pairs, ECDSA, ECDH.

- `SecretKey`: an AES, 3DES or HMAC key. `kcv()` is the GlobalPlatform key
  check value (GP Card Specification v2.3 Annex B.6); `repr` never shows the
  key.
- `EcKeyPair` / `EcPublicKey`: NIST P-256 and P-384 (FIPS 186-4 D.1.2.3-4),
  brainpoolP256r1 and brainpoolP384r1 (RFC 5639 §3.4, §3.6); `EcKeyPair` signs
  with SHA-256 whatever the curve (the keypair applet picks its own hash). Keys
  drawn from a seeded `CardRng` are reproducible; signatures from such keys use
  RFC 6979 deterministic nonces so that a seeded run replays byte for byte.
- ECDSA with SHA-256 in DER (X9.62 / RFC 3279 Ecdsa-Sig-Value) or plain r || s
  (BSI TR-03111 §5.2.1) form; ECDH (ECKA-DH, TR-03111 §4.3.1) returning the
  x-coordinate of the shared point.
"""

from __future__ import annotations

import functools
import hmac as _hmac
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature

# cryptography >= 43 (we require 44) keeps 3DES in `decrepit`; the old location is deprecated.
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from card.crypto.rng import CardRng

__all__ = [
    "KeyAlgorithm",
    "SigEncoding",
    "SecretKey",
    "Curve",
    "P256",
    "BRAINPOOL_P256R1",
    "P384",
    "BRAINPOOL_P384R1",
    "curve_by_name",
    "EcPublicKey",
    "EcKeyPair",
    "der_to_raw",
    "raw_to_der",
]

KeyAlgorithm = Literal["AES", "DES3", "HMAC"]
SigEncoding = Literal["der", "raw"]

_KEY_SIZES: dict[str, tuple[int, ...]] = {"AES": (16, 24, 32), "DES3": (16, 24)}
_DEFAULT_SIZE = {"AES": 16, "DES3": 16, "HMAC": 32}


# -- Symmetric keys ------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class SecretKey:
    """A symmetric key; the bytes stay out of `repr`, `str` and logs.

    Args:
        value: the key bytes (AES: 16/24/32; DES3: 16 for two-key or 24 for
            three-key; HMAC: at least 1).
        algorithm: 'AES', 'DES3' or 'HMAC'.
    """

    value: bytes
    algorithm: KeyAlgorithm = "AES"

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes):
            object.__setattr__(self, "value", bytes(self.value))
        if self.algorithm not in _DEFAULT_SIZE:
            raise ValueError(f"unknown key algorithm {self.algorithm!r}")
        sizes = _KEY_SIZES.get(self.algorithm)
        if sizes is not None and len(self.value) not in sizes:
            raise ValueError(f"{self.algorithm} key must be {sizes} bytes, got {len(self.value)}")
        if not self.value:
            raise ValueError("empty key")

    @classmethod
    def generate(
        cls, algorithm: KeyAlgorithm = "AES", length: int | None = None, rng: CardRng | None = None
    ) -> SecretKey:
        """A fresh key from the card RNG (OS randomness when `rng` is None)."""
        n = _DEFAULT_SIZE[algorithm] if length is None else length
        return cls((rng or CardRng()).random(n), algorithm)

    def __len__(self) -> int:
        return len(self.value)

    def kcv(self) -> bytes:
        """The 3-byte GlobalPlatform key check value.

        GP Card Specification v2.3 Annex B.6: AES keys encrypt 16 bytes of 01,
        DES keys 8 bytes of 00, in ECB; the check value is the first 3 bytes.

        Raises:
            ValueError: HMAC keys have no GP check value.
        """
        if self.algorithm == "AES":
            enc = Cipher(algorithms.AES(self.value), modes.ECB()).encryptor()
            return enc.update(b"\x01" * 16)[:3]
        if self.algorithm == "DES3":
            # K1 K2 K1 is the same two-key 3DES; cryptography deprecates 16-byte keys.
            k = self.value if len(self.value) == 24 else self.value + self.value[:8]
            enc = Cipher(TripleDES(k), modes.ECB()).encryptor()
            return enc.update(b"\x00" * 8)[:3]
        raise ValueError("no key check value is defined for HMAC keys")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return self.algorithm == other.algorithm and _hmac.compare_digest(self.value, other.value)

    def __hash__(self) -> int:
        return hash((self.algorithm, self.value))

    def __repr__(self) -> str:
        check = "" if self.algorithm == "HMAC" else f", kcv={self.kcv().hex().upper()}"
        return f"SecretKey({self.algorithm}, {len(self.value)} bytes{check})"

    __str__ = __repr__


# -- Curves --------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A named curve: its size in bytes and its group order n."""

    name: str
    size: int
    order: int
    _ec: type[ec.EllipticCurve]

    def ec_curve(self) -> ec.EllipticCurve:
        """The `cryptography` curve object."""
        return self._ec()

    def __repr__(self) -> str:
        return f"Curve({self.name})"


# Orders: FIPS 186-4 §D.1.2.3 (P-256) and RFC 5639 §3.4 (brainpoolP256r1, q).
P256 = Curve(
    "P-256",
    32,
    0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ec.SECP256R1,
)
BRAINPOOL_P256R1 = Curve(
    "brainpoolP256r1",
    32,
    0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
    ec.BrainpoolP256R1,
)
# FIPS 186-4 §D.1.2.4 (P-384) and RFC 5639 §3.6 (brainpoolP384r1, q).
P384 = Curve(
    "P-384",
    48,
    int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    ec.SECP384R1,
)
BRAINPOOL_P384R1 = Curve(
    "brainpoolP384r1",
    48,
    int(
        "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B3"
        "1F166E6CAC0425A7CF3AB6AF6B7FC3103B883202E9046565",
        16,
    ),
    ec.BrainpoolP384R1,
)
_CURVES = (P256, BRAINPOOL_P256R1, P384, BRAINPOOL_P384R1)


def curve_by_name(name: str) -> Curve:
    """Look a curve up by our name ('P-256', 'brainpoolP256r1') or OpenSSL's ('secp256r1').

    Raises:
        ValueError: the curve is not supported.
    """
    for c in _CURVES:
        if name.lower() in (c.name.lower(), c.ec_curve().name.lower()):
            return c
    raise ValueError(f"unsupported curve {name!r}")


# -- Signature encodings -------------------------------------------------------


def der_to_raw(sig: bytes, size: int) -> bytes:
    """DER Ecdsa-Sig-Value to r || s, each `size` bytes (BSI TR-03111 §5.2.1).

    Raises:
        ValueError: `sig` is not DER, or r or s does not fit in `size` bytes.
    """
    r, s = decode_dss_signature(sig)
    limit = 1 << (8 * size)
    if not (0 <= r < limit and 0 <= s < limit):
        raise ValueError(f"r or s does not fit in {size} bytes")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(sig: bytes) -> bytes:
    """r || s (two equal halves, TR-03111 §5.2.1) to a DER Ecdsa-Sig-Value.

    Raises:
        ValueError: `sig` is empty or of odd length.
    """
    if not sig or len(sig) % 2:
        raise ValueError(f"raw signature length {len(sig)} is not two equal halves")
    half = len(sig) // 2
    return encode_dss_signature(
        int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
    )


def _curve_of(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> Curve:
    return curve_by_name(key.curve.name)


def _ecdsa(prehashed: bool, deterministic: bool = False) -> ec.ECDSA:
    alg: hashes.HashAlgorithm | Prehashed = (
        Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    )
    if deterministic:
        # RFC 6979 nonces; older cryptography releases lack this keyword.
        return ec.ECDSA(alg, deterministic_signing=True)
    return ec.ECDSA(alg)


# -- EC keys -------------------------------------------------------------------


class EcPublicKey:
    """An EC public key on a supported curve."""

    __slots__ = ("_key", "curve")

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self.curve = _curve_of(key)
        self._key = key

    @classmethod
    def from_point(cls, curve: Curve, point: bytes) -> EcPublicKey:
        """From an encoded point, uncompressed (04 || X || Y) or compressed (SEC 1 §2.3.4).

        Raises:
            ValueError: the bytes are not a point on the curve.
        """
        return cls(ec.EllipticCurvePublicKey.from_encoded_point(curve.ec_curve(), bytes(point)))

    @classmethod
    def from_der(cls, der: bytes) -> EcPublicKey:
        """From a DER SubjectPublicKeyInfo (RFC 5480).

        Raises:
            ValueError: not an EC key on a supported curve.
        """
        key = serialization.load_der_public_key(der)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC public key")
        return cls(key)

    @property
    def cryptography_key(self) -> ec.EllipticCurvePublicKey:
        """The underlying `cryptography` key, for X.509 and the like."""
        return self._key

    def to_point(self, compressed: bool = False) -> bytes:
        """The SEC 1 §2.3.3 point encoding (uncompressed by default)."""
        fmt = (
            serialization.PublicFormat.CompressedPoint
            if compressed
            else serialization.PublicFormat.UncompressedPoint
        )
        return self._key.public_bytes(serialization.Encoding.X962, fmt)

    def to_der(self) -> bytes:
        """DER SubjectPublicKeyInfo (RFC 5480)."""
        return self._key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        encoding: SigEncoding = "der",
        prehashed: bool = False,
    ) -> bool:
        """Verify an ECDSA-SHA-256 signature; a malformed signature is just invalid.

        Args:
            data: the message, or its SHA-256 digest if `prehashed`.
            signature: DER or raw r || s, as `encoding` says.

        Raises:
            ValueError: `encoding` is neither 'der' nor 'raw'.
        """
        if encoding not in ("der", "raw"):
            raise ValueError(f"unknown signature encoding {encoding!r}")
        try:
            if encoding == "raw":
                if len(signature) != 2 * self.curve.size:
                    return False
                signature = raw_to_der(signature)
            self._key.verify(signature, data, _ecdsa(prehashed))
        except (InvalidSignature, ValueError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EcPublicKey):
            return NotImplemented
        return self.curve == other.curve and self.to_point() == other.to_point()

    def __hash__(self) -> int:
        return hash(self.to_point())

    def __repr__(self) -> str:
        return f"EcPublicKey({self.curve.name}, {self.to_point().hex()})"


@functools.lru_cache(maxsize=256)
def _derive(curve: Curve, d: int) -> ec.EllipticCurvePrivateKey:
    """The key of private scalar d: d x G worked out once for each (curve, d) seen again.

    The public point is most of a key generation (P-384: about 0.4 ms). The same d
    comes back when a card is rebuilt from its seed and replays its commands (the
    fuzzer's clones, `cardemu run`) and when a stored key is rebuilt to sign
    (`KeyRecord.ec_key`: its cache is the applet's RAM, which a power-up clears). A
    `cryptography` key is immutable, so one object serves every caller; the 256 most
    recent are kept. Only keys drawn from a seeded `CardRng` come here (`generate`
    with one, `from_private_value(..., seeded=True)` for a stored key whose record
    says so): their d is reproducible from the seed, so keeping it adds nothing a
    seed does not already give away. A key from OS randomness (a card's real key, a
    host's) never comes here, whatever its signing mode, and lives no longer than
    its owner's objects.

    Raises:
        ValueError: d is not in 1..n-1.
    """
    return ec.derive_private_key(d, curve.ec_curve())


class EcKeyPair:
    """An EC key pair: ECDSA-SHA-256 signing and ECDH.

    Args:
        private_key: a `cryptography` EC private key on a supported curve.
        deterministic: sign with RFC 6979 nonces (set for keys from a seeded RNG, and
            for the stored keys the applets sign with, whatever RNG drew them).
        d: the private scalar, when the caller has it (saves asking the key for it).
    """

    __slots__ = ("_key", "curve", "public", "deterministic", "_d")

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        *,
        deterministic: bool = False,
        d: int | None = None,
    ) -> None:
        self.curve = _curve_of(private_key)
        self._key = private_key
        self.public = EcPublicKey(private_key.public_key())
        self.deterministic = deterministic
        self._d = d

    @classmethod
    def generate(cls, curve: Curve, rng: CardRng | None = None) -> EcKeyPair:
        """Generate a key pair from the card RNG (FIPS 186-4 §B.4.1, extra random bits).

        d = (c mod (n - 1)) + 1 with c drawn as `curve.size + 8` random bytes, so
        the bias is below 2**-64. With a seeded RNG the key, and (through RFC
        6979) every signature it makes, are reproducible.
        """
        rng = rng or CardRng()
        c = int.from_bytes(rng.random(curve.size + 8), "big")
        d = c % (curve.order - 1) + 1
        if not rng.seeded:  # a fresh d never comes back: nothing to keep
            return cls(ec.derive_private_key(d, curve.ec_curve()), d=d)
        return cls(_derive(curve, d), deterministic=True, d=d)

    @classmethod
    def from_private_value(
        cls, curve: Curve, d: int | bytes, *, deterministic: bool = False, seeded: bool = False
    ) -> EcKeyPair:
        """From the private scalar d (an int or big-endian bytes).

        Args:
            deterministic: sign with RFC 6979 nonces.
            seeded: d was drawn from a seeded `CardRng` (a stored key's record says so):
                its key may be kept in the process-wide memo (`_derive`), so that a
                replay rebuilding it again is fast. Without it (a key from OS
                randomness, a host's key) nothing of d outlives the returned object.

        Raises:
            ValueError: d is not in 1..n-1.
        """
        value = int.from_bytes(d, "big") if isinstance(d, (bytes, bytearray)) else d
        if not 0 < value < curve.order:
            raise ValueError("private value out of range 1..n-1")
        if not seeded:
            return cls(
                ec.derive_private_key(value, curve.ec_curve()), deterministic=deterministic, d=value
            )
        return cls(_derive(curve, value), deterministic=deterministic, d=value)

    @property
    def cryptography_key(self) -> ec.EllipticCurvePrivateKey:
        """The underlying `cryptography` key, for X.509 signing and the like."""
        return self._key

    def private_bytes(self) -> bytes:
        """The private scalar d as `curve.size` big-endian bytes, for the card's NVM."""
        d = self._d if self._d is not None else self._key.private_numbers().private_value
        return d.to_bytes(self.curve.size, "big")

    def sign(self, data: bytes, *, encoding: SigEncoding = "der", prehashed: bool = False) -> bytes:
        """ECDSA with SHA-256 (FIPS 186-4 §6.4).

        Args:
            data: the message, or its SHA-256 digest if `prehashed`.
            encoding: 'der' (X9.62) or 'raw' (r || s, TR-03111 §5.2.1).
        """
        if encoding not in ("der", "raw"):
            raise ValueError(f"unknown signature encoding {encoding!r}")
        der = self._key.sign(data, _ecdsa(prehashed, self.deterministic))
        return der if encoding == "der" else der_to_raw(der, self.curve.size)

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        encoding: SigEncoding = "der",
        prehashed: bool = False,
    ) -> bool:
        """Verify with the public half (see `EcPublicKey.verify`)."""
        return self.public.verify(data, signature, encoding=encoding, prehashed=prehashed)

    def ecdh(self, peer: EcPublicKey | bytes) -> bytes:
        """ECKA-DH (BSI TR-03111 §4.3.1): the x-coordinate of d * Q_peer.

        Args:
            peer: the peer's public key, or its encoded point on our curve.

        Raises:
            ValueError: the peer point is invalid or on another curve.
        """
        if not isinstance(peer, EcPublicKey):
            peer = EcPublicKey.from_point(self.curve, peer)
        if peer.curve != self.curve:
            raise ValueError(f"peer key is on {peer.curve.name}, not {self.curve.name}")
        return self._key.exchange(ec.ECDH(), peer.cryptography_key)

    def __repr__(self) -> str:
        return (
            f"EcKeyPair({self.curve.name}, public={self.public.to_point().hex()}, <private hidden>)"
        )
