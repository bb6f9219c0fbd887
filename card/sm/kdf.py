"""Key derivation for secure messaging: ICAO Doc 9303 Part 11 §9.7.1 and the BAC key seed.

KDF(K, c) = H(K || c), c a 32-bit big-endian counter: 1 for the encryption key,
2 for the MAC key (3 for PACE's password key). 3DES and AES-128 take SHA-1 cut
to 16 bytes (3DES then parity-adjusted); AES-192 and AES-256 take SHA-256 cut
to 24 or 32 bytes (ICAO 9303-11 §9.7.1.1-§9.7.1.2).
"""

from __future__ import annotations

import hashlib
from typing import Literal

__all__ = [
    "KDF_ENC",
    "KDF_MAC",
    "KDF_PI",
    "SmCipher",
    "icao_kdf",
    "bac_key_seed",
    "adjust_des_parity",
]

KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3

SmCipher = Literal["DES3", "AES128", "AES192", "AES256"]


def adjust_des_parity(key: bytes) -> bytes:
    """Set each byte's least significant bit so the byte has odd parity (FIPS 46-3 §1)."""
    out = bytearray()
    for b in key:
        high = b & 0xFE
        out.append(high | (bin(high).count("1") + 1) % 2)
    return bytes(out)


def icao_kdf(shared: bytes, counter: int, cipher: SmCipher) -> bytes:
    """ICAO 9303-11 §9.7.1: a session key from a shared secret (or a BAC key seed).

    Args:
        shared: K, the shared secret (ECDH x-coordinate, BAC Kseed or KSseed).
        counter: c (`KDF_ENC`, `KDF_MAC`, `KDF_PI`).
        cipher: 'DES3' (16 bytes, parity-adjusted), 'AES128', 'AES192', 'AES256'.

    Raises:
        ValueError: an unknown cipher or a counter outside 32 bits.
    """
    if not 0 <= counter <= 0xFFFFFFFF:
        raise ValueError("counter must fit in 32 bits")
    data = bytes(shared) + counter.to_bytes(4, "big")
    if cipher == "DES3":
        return adjust_des_parity(hashlib.sha1(data).digest()[:16])
    if cipher == "AES128":
        return hashlib.sha1(data).digest()[:16]
    if cipher == "AES192":
        return hashlib.sha256(data).digest()[:24]
    if cipher == "AES256":
        return hashlib.sha256(data).digest()
    raise ValueError(f"unknown SM cipher {cipher!r}")


def bac_key_seed(mrz_information: str) -> bytes:
    """Kseed = SHA-1(MRZ_information)[0:16] (ICAO 9303-11 §9.7.2, Appendix D.2).

    Args:
        mrz_information: document number, its check digit, date of birth, its
            check digit, date of expiry, its check digit ("L898902C<369080619406236").
    """
    return hashlib.sha1(mrz_information.encode("ascii")).digest()[:16]
