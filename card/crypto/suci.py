"""SUPI concealment (SUCI) and the 5G AKA key derivations of the ME.

- ECIES protection schemes, 3GPP TS 33.501 Annex C.3: Profile A (X25519,
  C.3.4.1) and Profile B (P-256 with a compressed ephemeral key, C.3.4.2). Both
  use the ANSI X9.63 KDF with SHA-256 over the shared secret with the
  ephemeral public key as SharedInfo1, giving an AES-128 key, a 128-bit initial
  counter block for AES-128-CTR and a 256-bit HMAC-SHA-256 key; the MAC tag is
  the first 64 bits of HMAC over the ciphertext. Scheme output = ephemeral
  public key || ciphertext || MAC tag (C.3.2). The null scheme (C.2) outputs
  its input.
- SUCI, TS 24.501 §9.11.3.4 (5GS mobile identity, SUCI form) and TS 23.003 §2.2B.
- RES* / XRES* (TS 33.501 Annex A.4) and K_AUSF (Annex A.2) with the KDF of
  TS 33.220 Annex B.2 (HMAC-SHA-256 over FC || P0 || L0 || ...).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from hashlib import sha256

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from card.crypto.kdf import x963_kdf

__all__ = [
    "NULL_SCHEME",
    "PROFILE_A",
    "PROFILE_B",
    "SuciError",
    "Suci",
    "conceal",
    "deconceal",
    "encode_msin",
    "decode_msin",
    "res_star",
    "kausf",
    "kdf_33220",
    "serving_network_name",
]

#: Protection scheme identifiers, TS 33.501 Annex C.1.
NULL_SCHEME = 0
PROFILE_A = 1
PROFILE_B = 2

_MAC_LEN = 8
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class SuciError(ValueError):
    """A SUCI or scheme output that cannot be decoded or does not verify."""


def _keys(shared: bytes, eph_pub: bytes) -> tuple[bytes, bytes, bytes]:
    """(encryption key, ICB, MAC key) from the X9.63 KDF, TS 33.501 C.3.4.1/C.3.4.2."""
    k = x963_kdf(shared, eph_pub, 64)
    return k[:16], k[16:32], k[32:]


def _ctr(key: bytes, icb: bytes, data: bytes) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CTR(icb)).encryptor()
    return c.update(data) + c.finalize()


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, sha256).digest()[:_MAC_LEN]


def _p256_private(raw: bytes) -> ec.EllipticCurvePrivateKey:
    d = int.from_bytes(raw, "big")
    if not 1 <= d < _P256_ORDER:
        raise ValueError("a P-256 private key is 1..n-1")
    return ec.derive_private_key(d, ec.SECP256R1())


def conceal(scheme: int, msin: bytes, hn_public: bytes, eph_private: bytes) -> bytes:
    """The scheme output for the scheme input `msin` (TS 33.501 C.3.2).

    Args:
        scheme: NULL_SCHEME, PROFILE_A or PROFILE_B.
        msin: the scheme input (the MSIN in BCD for an IMSI-based SUPI, C.3.2).
        hn_public: the home network public key: 32 bytes (A) or an encoded P-256
            point, compressed or not (B).
        eph_private: the ephemeral private key, 32 bytes from the card's RNG (a
            P-256 scalar must be 1..n-1: draw again otherwise).

    Raises:
        ValueError: an unknown scheme or a malformed key.
    """
    if scheme == NULL_SCHEME:
        return bytes(msin)
    if len(eph_private) != 32:
        raise ValueError("the ephemeral private key is 32 bytes")
    if scheme == PROFILE_A:
        priv = X25519PrivateKey.from_private_bytes(eph_private)
        eph_pub = priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        shared = priv.exchange(X25519PublicKey.from_public_bytes(hn_public))
    elif scheme == PROFILE_B:
        p = _p256_private(eph_private)
        eph_pub = p.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
        hn = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), hn_public)
        shared = p.exchange(ec.ECDH(), hn)
    else:
        raise ValueError(f"unknown protection scheme {scheme}")
    enc, icb, mac_key = _keys(shared, eph_pub)
    ct = _ctr(enc, icb, msin)
    return eph_pub + ct + _mac(mac_key, ct)


def deconceal(scheme: int, output: bytes, hn_private: bytes) -> bytes:
    """The SIDF side: the scheme input back from the scheme output (TS 33.501 C.3.3).

    Raises:
        SuciError: the output is too short or its MAC tag does not verify.
    """
    if scheme == NULL_SCHEME:
        return bytes(output)
    if scheme == PROFILE_A:
        n = 32
    elif scheme == PROFILE_B:
        n = 33
    else:
        raise SuciError(f"unknown protection scheme {scheme}")
    if len(output) < n + _MAC_LEN:
        raise SuciError("the scheme output is too short")
    eph_pub, ct, tag = output[:n], output[n:-_MAC_LEN], output[-_MAC_LEN:]
    try:
        if scheme == PROFILE_A:
            shared = X25519PrivateKey.from_private_bytes(hn_private).exchange(
                X25519PublicKey.from_public_bytes(eph_pub)
            )
        else:
            eph = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), eph_pub)
            shared = _p256_private(hn_private).exchange(ec.ECDH(), eph)
    except ValueError as e:
        raise SuciError(f"bad ephemeral or home network key: {e}") from None
    enc, icb, mac_key = _keys(shared, eph_pub)
    if not hmac.compare_digest(_mac(mac_key, ct), tag):
        raise SuciError("the MAC tag does not verify")
    return _ctr(enc, icb, ct)


def encode_msin(msin: str) -> bytes:
    """The MSIN as the scheme input: BCD, low nibble first, F-padded (TS 33.501 C.3.2)."""
    if not msin.isdigit() or not 1 <= len(msin) <= 10:
        raise ValueError("an MSIN is 1..10 digits")
    digits = msin + ("F" if len(msin) % 2 else "")
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


def decode_msin(data: bytes) -> str:
    """The MSIN digits of a scheme input (the inverse of `encode_msin`)."""
    out = []
    for b in data:
        for nib in (b & 0x0F, b >> 4):
            if nib == 0x0F:
                continue
            if nib > 9:
                raise SuciError("the scheme input is not BCD")
            out.append(str(nib))
    return "".join(out)


def _bcd_pairs(digits: str) -> bytes:
    digits = digits + ("F" if len(digits) % 2 else "")
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


@dataclass(frozen=True)
class Suci:
    """A SUCI for an IMSI-based SUPI (TS 23.003 §2.2B, TS 24.501 §9.11.3.4).

    Attributes:
        mcc, mnc: the home network (3 and 2-3 digits).
        routing_indicator: 1-4 digits ("0" when none is provisioned).
        scheme: the protection scheme identifier (0-15).
        key_id: the home network public key identifier (0-255; 0 for the null scheme).
        output: the scheme output.
    """

    mcc: str
    mnc: str
    routing_indicator: str
    scheme: int
    key_id: int
    output: bytes

    def __post_init__(self) -> None:
        if not (self.mcc.isdigit() and len(self.mcc) == 3):
            raise ValueError("an MCC is 3 digits")
        if not (self.mnc.isdigit() and len(self.mnc) in (2, 3)):
            raise ValueError("an MNC is 2 or 3 digits")
        if not (self.routing_indicator.isdigit() and 1 <= len(self.routing_indicator) <= 4):
            raise ValueError("a routing indicator is 1..4 digits")
        if not 0 <= self.scheme <= 15 or not 0 <= self.key_id <= 255:
            raise ValueError("scheme is 0..15, key_id 0..255")

    def to_bytes(self) -> bytes:
        """The 5GS mobile identity contents, SUCI with SUPI format IMSI (§9.11.3.4)."""
        mnc3 = self.mnc[2] if len(self.mnc) == 3 else "F"
        plmn = _bcd_pairs(self.mcc[:2]) + _bcd_pairs(self.mcc[2] + mnc3) + _bcd_pairs(self.mnc[:2])
        ri = _bcd_pairs(self.routing_indicator.ljust(4, "F"))
        return b"\x01" + plmn + ri + bytes((self.scheme, self.key_id)) + self.output

    @classmethod
    def from_bytes(cls, data: bytes) -> Suci:
        """Decode the 5GS mobile identity contents (SUCI, SUPI format IMSI).

        Raises:
            SuciError: not a SUCI of an IMSI, or too short.
        """
        if len(data) < 8 or data[0] & 0x07 != 0x01 or data[0] & 0x70:
            raise SuciError("not a SUCI with SUPI format IMSI")

        def nibbles(b: bytes) -> str:
            return "".join(f"{x & 0x0F:X}{x >> 4:X}" for x in b)

        plmn = nibbles(data[1:4])
        mcc, mnc = plmn[0:3], plmn[4:6] + ("" if plmn[3] == "F" else plmn[3])
        ri = nibbles(data[4:6]).rstrip("F") or "0"
        try:
            return cls(mcc, mnc, ri, data[6] & 0x0F, data[7], bytes(data[8:]))
        except ValueError as e:
            raise SuciError(str(e)) from None

    def __str__(self) -> str:
        """suci-0-<mcc>-<mnc>-<routing indicator>-<scheme>-<key id>-<output> (TS 23.003 §28.7.3)."""
        return (
            f"suci-0-{self.mcc}-{self.mnc}-{self.routing_indicator}-{self.scheme}-"
            f"{self.key_id}-{self.output.hex()}"
        )


# -- 5G AKA on the ME side, TS 33.501 Annex A ---------------------------------------------------


def kdf_33220(key: bytes, fc: int, *params: bytes) -> bytes:
    """KDF of TS 33.220 Annex B.2: HMAC-SHA-256(key, FC || P0 || L0 || P1 || L1 ...)."""
    s = bytes((fc,))
    for p in params:
        if len(p) > 0xFFFF:
            raise ValueError("a KDF parameter is at most 65535 bytes")
        s += p + len(p).to_bytes(2, "big")
    return hmac.new(key, s, sha256).digest()


def serving_network_name(mcc: str, mnc: str) -> bytes:
    """The serving network name of TS 24.501 §9.12.1 / TS 33.501 §6.1.1.4."""
    return f"5G:mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org".encode()


def res_star(ck: bytes, ik: bytes, sn_name: bytes, rand: bytes, res: bytes) -> bytes:
    """RES* (= XRES* on the network side), TS 33.501 Annex A.4: the low 128 bits of
    KDF(CK || IK, FC 0x6B, SN name, RAND, RES)."""
    return kdf_33220(ck + ik, 0x6B, sn_name, rand, res)[16:]


def kausf(ck: bytes, ik: bytes, sn_name: bytes, sqn_xor_ak: bytes) -> bytes:
    """K_AUSF for 5G AKA, TS 33.501 Annex A.2: KDF(CK || IK, FC 0x6A, SN name, SQN xor AK)."""
    if len(sqn_xor_ak) != 6:
        raise ValueError("SQN xor AK is 6 bytes")
    return kdf_33220(ck + ik, 0x6A, sn_name, sqn_xor_ak)
