"""AES-CMAC, raw AES-CBC/ECB and ISO/IEC 9797-1 padding method 2.

AES-CMAC is RFC 4493 / NIST SP 800-38B; CBC and ECB are NIST SP 800-38A with
no padding of their own (callers pad explicitly, as GlobalPlatform SCP03 and
ISO/IEC 7816-4 secure messaging do, with `pad80`).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "AES_BLOCK",
    "aes_cmac",
    "aes_cbc_encrypt",
    "aes_cbc_decrypt",
    "aes_ecb_encrypt",
    "aes_ecb_decrypt",
    "pad80",
    "unpad80",
]

AES_BLOCK = 16


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC of `data` (RFC 4493 §2.4), the full 16-byte tag.

    Args:
        key: a 16-, 24- or 32-byte AES key.
        data: the message, any length (including empty).

    Returns:
        The 16-byte MAC; SCP03 and others truncate it themselves.
    """
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def _check_blocks(data: bytes, what: str) -> None:
    if len(data) % AES_BLOCK:
        raise ValueError(f"{what} length {len(data)} is not a multiple of {AES_BLOCK}")


def aes_cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CBC encryption without padding (NIST SP 800-38A §6.2).

    Raises:
        ValueError: `data` is not whole blocks, or the key or IV size is wrong.
    """
    _check_blocks(data, "plaintext")
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CBC decryption without padding removal (NIST SP 800-38A §6.2).

    Raises:
        ValueError: `data` is not whole blocks, or the key or IV size is wrong.
    """
    _check_blocks(data, "ciphertext")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_ecb_encrypt(key: bytes, block: bytes) -> bytes:
    """AES-ECB encryption of whole blocks (NIST SP 800-38A §6.1; FIPS 197 for one block).

    Raises:
        ValueError: `block` is not whole blocks, or the key size is wrong.
    """
    _check_blocks(block, "plaintext")
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def aes_ecb_decrypt(key: bytes, block: bytes) -> bytes:
    """AES-ECB decryption of whole blocks (NIST SP 800-38A §6.1).

    Raises:
        ValueError: `block` is not whole blocks, or the key size is wrong.
    """
    _check_blocks(block, "ciphertext")
    dec = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return dec.update(block) + dec.finalize()


def pad80(data: bytes, block_size: int = AES_BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append 80, then 00s to a block boundary.

    A padding block is always added, so a message that already fills its last
    block gains a whole block (ISO/IEC 7816-4 §10.2.3.1 uses the same rule).
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    zeros = (-len(data) - 1) % block_size
    return data + b"\x80" + b"\x00" * zeros


def unpad80(data: bytes, block_size: int = AES_BLOCK) -> bytes:
    """Remove ISO/IEC 9797-1 padding method 2.

    Raises:
        ValueError: `data` is not whole blocks, has no 80 marker, or its padding
            is longer than a block.
    """
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    if not data or len(data) % block_size:
        raise ValueError(f"padded length {len(data)} is not a multiple of {block_size}")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise ValueError("padding method 2: no 80 marker")
    if len(data) - len(stripped) >= block_size:
        raise ValueError("padding method 2: padding longer than one block")
    return stripped[:-1]
