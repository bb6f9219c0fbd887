"""Key pairs generated and used on the card: algorithms, generation, the stored record, use.

Shared by the applets that hold key pairs (ISO/IEC 7816-8 `applets.keypair`, PIV
`applets.piv`), each of which keeps its records in its own persistent segment.

A key is one persistent tuple (one atomic write, inside the generation's
transaction): (algorithm, policy, private parts, public key template). The
private parts are the EC scalar d, or the RSA primes p and q (the rest of the
private key is recomputed from them); they never appear in any response.

Algorithm identifiers are those of NIST SP 800-78-4 Table 6-2 where it has one
(PIV: 07 RSA-2048, 05 RSA-3072, 11 P-256, 14 P-384); the brainpool curves,
which PIV does not list, take proprietary values B1 and B2.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from card import tlv
from card.crypto.keys import BRAINPOOL_P256R1, BRAINPOOL_P384R1, P256, P384, Curve, EcKeyPair
from card.crypto.rng import CardRng
from card.crypto.rsa import generate_rsa, rsa_from_primes
from card.sm.cvc import CURVE_OIDS, ec_sign_digest

__all__ = [
    "Algorithm",
    "ALGORITHMS",
    "KeyRecord",
    "generate",
    "key_identifier",
]

TAG_PUBLIC_KEY = 0x7F49
TAG_MODULUS = 0x81
TAG_EXPONENT = 0x82
TAG_OID = 0x06
TAG_POINT = 0x86

_HASHES: dict[int, hashes.HashAlgorithm] = {
    32: hashes.SHA256(),
    48: hashes.SHA384(),
    64: hashes.SHA512(),
}


@dataclass(frozen=True)
class Algorithm:
    """A key pair algorithm the applet generates."""

    ident: int
    name: str
    curve: Curve | None = None
    rsa_bits: int = 0

    @property
    def is_ec(self) -> bool:
        return self.curve is not None


ALGORITHMS: dict[int, Algorithm] = {
    a.ident: a
    for a in (
        Algorithm(0x07, "RSA-2048", rsa_bits=2048),
        Algorithm(0x05, "RSA-3072", rsa_bits=3072),
        Algorithm(0x11, "ECC P-256", curve=P256),
        Algorithm(0x14, "ECC P-384", curve=P384),
        Algorithm(0xB1, "ECC brainpoolP256r1", curve=BRAINPOOL_P256R1),
        Algorithm(0xB2, "ECC brainpoolP384r1", curve=BRAINPOOL_P384R1),
    )
}


def _public_template_ec(key: EcKeyPair) -> bytes:
    return tlv.build(
        TAG_PUBLIC_KEY,
        [(TAG_OID, CURVE_OIDS[key.curve.name]), (TAG_POINT, key.public.to_point())],
    )


def _int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


def _public_template_rsa(key: rsa.RSAPrivateKey) -> bytes:
    pub = key.public_key().public_numbers()
    return tlv.build(
        TAG_PUBLIC_KEY, [(TAG_MODULUS, _int_bytes(pub.n)), (TAG_EXPONENT, _int_bytes(pub.e))]
    )


def key_identifier(public_template: bytes) -> bytes:
    """RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the subjectPublicKey value.

    The subjectPublicKey of an EC key is the point (RFC 5480 §2.2); of an RSA key
    the DER RSAPublicKey (RFC 3279 §2.3.1).
    """
    obj = tlv.Tlv.from_bytes(public_template)
    point = obj.find(TAG_POINT)
    if point is not None:
        spk = point.value
    else:
        n, e = obj.find(TAG_MODULUS), obj.find(TAG_EXPONENT)
        assert n is not None and e is not None
        pub = rsa.RSAPublicNumbers(int.from_bytes(e.value, "big"), int.from_bytes(n.value, "big"))
        spk = pub.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    return hashlib.sha256(spk).digest()[:20]


#: A stored key record: (algorithm, policy, private parts, public key template), and a
#: fifth item True when a seeded `CardRng` drew the key (older records have four items).
RecordValue = tuple[Any, ...]


@dataclass(frozen=True, repr=False)
class KeyRecord:
    """A stored key pair. `repr` never shows the private parts.

    `seeded` records, at generation, that the card's RNG was a seeded (reproducible)
    one: only such a key is kept in the process-wide EC memo (`keys._derive`) when it
    is rebuilt to sign. A key from OS randomness is rebuilt into the applet's RAM
    cache alone, and a record without the flag (one stored before it existed) counts
    as not seeded, the safe reading.
    """

    algorithm: int
    policy: int
    private: tuple[bytes, ...]
    public: bytes
    seeded: bool = False
    #: the applet's volatile cache of loaded keys (rebuilding an RSA key costs more than
    #: signing with it), keyed by the private parts
    cache: dict[tuple[bytes, ...], Any] | None = field(default=None, compare=False)

    def to_value(self) -> RecordValue:
        """The persistent tuple; a key from OS randomness keeps the four-item form."""
        base = (self.algorithm, self.policy, self.private, self.public)
        return (*base, True) if self.seeded else base

    @classmethod
    def from_value(
        cls, value: RecordValue, cache: dict[tuple[bytes, ...], Any] | None = None
    ) -> KeyRecord:
        """From the persistent tuple, of four items (not seeded) or five.

        Raises:
            ValueError: a tuple of another length.
        """
        if len(value) == 4:
            alg, policy, private, public = value
            seeded = False
        elif len(value) == 5:
            alg, policy, private, public, flag = value
            seeded = flag is True
        else:
            raise ValueError(f"a key record of {len(value)} items")
        return cls(alg, policy, tuple(private), public, seeded, cache)

    def _cached(self, build: Any) -> Any:
        if self.cache is None:
            return build()
        key = self.cache.get(self.private)
        if key is None:
            if len(self.cache) >= 8:
                self.cache.clear()
            key = self.cache[self.private] = build()
        return key

    @property
    def alg(self) -> Algorithm:
        return ALGORITHMS[self.algorithm]

    def ec_key(self) -> EcKeyPair:
        curve = self.alg.curve
        assert curve is not None
        return self._cached(
            lambda: EcKeyPair.from_private_value(
                curve, self.private[0], deterministic=True, seeded=self.seeded
            )
        )

    def rsa_key(self) -> rsa.RSAPrivateKey:
        def build() -> rsa.RSAPrivateKey:
            p, q = (int.from_bytes(x, "big") for x in self.private)
            e = tlv.Tlv.from_bytes(self.public).find(TAG_EXPONENT)
            assert e is not None
            return rsa_from_primes(p, q, int.from_bytes(e.value, "big"))

        return self._cached(build)

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256/384/512 hash: ECDSA (plain r || s, RFC 6979 nonces) or RSASSA-PKCS1-v1_5.

        Raises:
            ValueError: the hash length is none of 32, 48, 64.
        """
        algorithm = _HASHES.get(len(digest))
        if algorithm is None:
            raise ValueError(f"a hash of {len(digest)} bytes")
        if self.alg.is_ec:
            key = self.ec_key()
            return ec_sign_digest(key.cryptography_key, key.curve, digest)
        return self.rsa_key().sign(digest, padding.PKCS1v15(), Prehashed(algorithm))

    def sign_der(self, digest: bytes) -> bytes:
        """ECDSA over a hash cut to the field size (or shorter), DER-encoded.

        NIST SP 800-73-4 Part 2 §3.2.4 and SP 800-78-4 §3.3: a PIV client sends the hash
        cut to the curve's size and takes back an X9.62 Ecdsa-Sig-Value. Nonces follow
        RFC 6979, so a seeded card replays byte for byte.

        Raises:
            ValueError: not an EC key, or the input is empty or longer than the field.
        """
        curve = self.alg.curve
        if curve is None:
            raise ValueError("an RSA key does not make ECDSA signatures")
        if not 0 < len(digest) <= curve.size:
            raise ValueError(f"ECDSA input of {len(digest)} bytes on {curve.name}")
        # A shorter hash (SHA-256 on P-384) is the same integer left-padded (FIPS 186-4 §6.4).
        digest = digest.rjust(curve.size, b"\x00")
        algorithm: hashes.HashAlgorithm = _HASHES[curve.size]
        key = self.ec_key().cryptography_key
        return key.sign(digest, ec.ECDSA(Prehashed(algorithm), deterministic_signing=True))

    def rsa_raw(self, block: bytes) -> bytes:
        """The RSA private operation m^d mod n on a block of the modulus size (RFC 8017 §5.1.2).

        PIV signs and deciphers this way: the client pads (SP 800-73-4 Part 2 §3.2.4).

        Raises:
            ValueError: not an RSA key, a block of another size, or a value not below n.
        """
        if self.alg.is_ec:
            raise ValueError("an EC key has no RSA operation")
        nums = self.rsa_key().private_numbers()
        n = nums.public_numbers.n
        if len(block) != (n.bit_length() + 7) // 8:
            raise ValueError(f"an RSA block of {len(block)} bytes")
        c = int.from_bytes(block, "big")
        if c >= n:
            raise ValueError("the block is not below the modulus")
        # CRT (RFC 8017 §5.1.2 step 2b): two half-size exponentiations.
        m1 = pow(c, nums.dmp1, nums.p)
        m2 = pow(c, nums.dmq1, nums.q)
        h = (nums.iqmp * (m1 - m2)) % nums.p
        m = m2 + h * nums.q
        return m.to_bytes(len(block), "big")

    def piv_public(self) -> bytes:
        """The public key as PIV answers GENERATE: 7F49 { 81 n, 82 e } or 7F49 { 86 point }.

        SP 800-73-4 Part 2 §3.3.2 Table 10: an EC key carries the point alone, no curve OID.
        """
        obj = tlv.Tlv.from_bytes(self.public)
        point = obj.find(TAG_POINT)
        if point is not None:
            return tlv.build(TAG_PUBLIC_KEY, [(TAG_POINT, point.value)])
        return self.public

    def decipher(self, cryptogram: bytes) -> bytes:
        """RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1.2).

        Raises:
            ValueError: not an RSA key, or the cryptogram does not decrypt.
        """
        if self.alg.is_ec:
            raise ValueError("an EC key does not decipher")
        oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
        return self.rsa_key().decrypt(cryptogram, oaep)

    def agree(self, peer_point: bytes) -> bytes:
        """ECKA-DH (BSI TR-03111 §4.3.1): the x-coordinate of d * Q_peer.

        Raises:
            ValueError: not an EC key, or the point is not on its curve.
        """
        if not self.alg.is_ec:
            raise ValueError("an RSA key does no key agreement")
        return self.ec_key().ecdh(peer_point)

    def __repr__(self) -> str:
        return f"KeyRecord({self.alg.name}, policy={self.policy:02X}, <private hidden>)"


def generate(algorithm: Algorithm, rng: CardRng, policy: int) -> KeyRecord:
    """A new key pair from the card RNG (EC: FIPS 186-4 §B.4.1; RSA: `card.crypto.rsa`).

    The record notes whether `rng` is seeded (see `KeyRecord`).
    """
    if algorithm.curve is not None:
        key = EcKeyPair.generate(algorithm.curve, rng)
        return KeyRecord(
            algorithm.ident,
            policy,
            (key.private_bytes(),),
            _public_template_ec(key),
            seeded=rng.seeded,
        )
    rkey = generate_rsa(algorithm.rsa_bits, rng)
    nums = rkey.private_numbers()
    size = algorithm.rsa_bits // 16
    return KeyRecord(
        algorithm.ident,
        policy,
        (nums.p.to_bytes(size, "big"), nums.q.to_bytes(size, "big")),
        _public_template_rsa(rkey),
        seeded=rng.seeded,
    )
