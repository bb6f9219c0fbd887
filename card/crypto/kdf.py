"""Key derivation functions: the SCP03 KDF and the ANSI X9.63 KDF.

`scp03_kdf` is the NIST SP 800-108 KDF in counter mode with AES-CMAC as PRF,
laid out as GlobalPlatform Card Specification Amendment D (SCP03) §4.1.5
fixes it (the data derivation scheme behind its session keys, cryptograms
and pseudo-random card challenge). `x963_kdf` is the ANSI X9.63 KDF (SEC 1 v2
§3.6.1) with SHA-256, which GSMA SGP.22 applies to the ECKA shared secret to
get the BPP session keys.
"""

from __future__ import annotations

from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from card.crypto.cmac import aes_cmac

__all__ = ["Scp03Constant", "scp03_kdf", "x963_kdf"]


class Scp03Constant(IntEnum):
    """Derivation constants, GP Amendment D §4.1.5 Table 4-1."""

    CARD_CRYPTOGRAM = 0x00
    HOST_CRYPTOGRAM = 0x01
    CARD_CHALLENGE = 0x02
    S_ENC = 0x04
    S_MAC = 0x06
    S_RMAC = 0x07


# Amendment D §4.1.5: the label is 11 zero bytes then the derivation constant.
_LABEL_PREFIX = b"\x00" * 11
_SEPARATOR = b"\x00"
_PRF_BITS = 128  # AES-CMAC output


def scp03_kdf(key: bytes, constant: int, context: bytes, bit_length: int) -> bytes:
    """SCP03 key derivation, GP Amendment D §4.1.5 (NIST SP 800-108 §5.1).

    Each PRF input is label (11 x 00 || constant) || 00 || L (2 bytes, bits)
    || i (1 byte, from 01) || context, and the outputs K(1) || K(2) || ... are
    cut to L bits.

    Args:
        key: the AES key the PRF is keyed with (static key or session key).
        constant: the derivation constant (see `Scp03Constant`).
        context: host challenge || card challenge for session keys and
            cryptograms; sequence counter || AID for the card challenge.
        bit_length: L, a positive multiple of 8: 64 or 128 for cryptograms and
            challenges, the key length for session keys.

    Returns:
        bit_length / 8 bytes.

    Raises:
        ValueError: `bit_length` or `constant` is out of range.
    """
    if bit_length <= 0 or bit_length % 8 or bit_length > 0xFFFF:
        raise ValueError(f"bit_length {bit_length} must be a positive multiple of 8 below 2**16")
    if not 0 <= constant <= 0xFF:
        raise ValueError(f"derivation constant {constant} is not one byte")
    blocks = -(-bit_length // _PRF_BITS)
    if blocks > 0xFF:
        raise ValueError("bit_length needs more than 255 PRF blocks")
    fixed_head = _LABEL_PREFIX + bytes([constant]) + _SEPARATOR + bit_length.to_bytes(2, "big")
    out = b"".join(aes_cmac(key, fixed_head + bytes([i]) + context) for i in range(1, blocks + 1))
    return out[: bit_length // 8]


def x963_kdf(shared_secret: bytes, shared_info: bytes, length: int) -> bytes:
    """ANSI X9.63 KDF with SHA-256 (SEC 1 v2 §3.6.1).

    K = SHA-256(Z || counter(4 bytes, from 1) || SharedInfo) || ... cut to
    `length` bytes.

    Args:
        shared_secret: Z, the ECDH shared secret.
        shared_info: SharedInfo (may be empty).
        length: the number of key bytes wanted.

    Raises:
        ValueError: `length` is not positive or too large.
    """
    if length <= 0:
        raise ValueError("length must be positive")
    return X963KDF(hashes.SHA256(), length, shared_info or None).derive(shared_secret)
