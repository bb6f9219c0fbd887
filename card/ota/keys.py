"""SCP80 key sets in a Security Domain and PUT KEY for them (GPC §11.8, TS 102 226 §8.2.1.4).

A UICC's Security Domain keeps its SCP80 keys as key sets of versions 01-0F
(GPC v2.3.1 §11.1.8 leaves those to ETSI; TS 102 225 §5.1.2 names the key
version in KIc/KID b8-b5): key identifier 01 is KIc, 02 KID, 03 the DEK that
PUT KEY uses to carry new keys. A set is AES (GP key type 88) or DES (type 80:
8 bytes DES, 16 two-key 3DES, 24 three-key 3DES).

PUT KEY (one command, P2 = 81: keys 01, 02, 03 of one version; P1 = 00 adds a
set, P1 = its version replaces one): each key component block is the key
encrypted under the DEK of the channel it came through — SCP03's static DEK
(AES-CBC, zero ICV, Amendment D §7.2) or the SCP80 key set's own DEK (AES-CBC
with a zero ICV for AES, 3DES-ECB for DES as GP's SCP02 does, TS 102 226
§8.2.1.4); the key check value is the first three bytes of the key enciphering
8 zero bytes (DES) or 16 bytes of 01 (AES, GPC Annex B.6).
"""

from __future__ import annotations

import hmac
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from card.crypto.cmac import aes_cbc_decrypt, aes_cbc_encrypt, aes_ecb_encrypt
from card.ota.scp80 import OtaKeyset
from card.sw import SW, CardError

KEY_TYPE_DES = 0x80
KEY_TYPE_AES = 0x88
MAX_OTA_KEYSETS = 15
SW_ALGORITHM_NOT_SUPPORTED = 0x9484
SW_INVALID_KCV = 0x9485


def keysets_to_value(sets: tuple[OtaKeyset, ...]) -> tuple[Any, ...]:
    return tuple((k.kvn, k.kic, k.kid, k.dek, k.aes) for k in sets)


def keysets_from_value(v: tuple[Any, ...]) -> tuple[OtaKeyset, ...]:
    return tuple(OtaKeyset(kvn, kic, kid, dek, aes) for kvn, kic, kid, dek, aes in v)


def _tdes(key: bytes) -> TripleDES:
    if len(key) == 8:
        key = key * 3
    elif len(key) == 16:
        key = key + key[:8]
    return TripleDES(key)


def kcv(key: bytes, aes: bool) -> bytes:
    """Key check value (GPC v2.3.1 Annex B.6 / B.7)."""
    if aes:
        return aes_ecb_encrypt(key, b"\x01" * 16)[:3]
    enc = Cipher(_tdes(key), modes.ECB()).encryptor()
    return (enc.update(bytes(8)) + enc.finalize())[:3]


def wrap_key(key: bytes, dek: bytes, dek_aes: bool) -> bytes:
    """Encrypt a key under a DEK (host side of PUT KEY)."""
    if dek_aes:
        if len(key) % 16:
            raise ValueError("an AES DEK wraps whole 16-byte blocks")
        return aes_cbc_encrypt(dek, bytes(16), key)
    if len(key) % 8:
        raise ValueError("a DES DEK wraps whole 8-byte blocks")
    enc = Cipher(_tdes(dek), modes.ECB()).encryptor()
    return enc.update(key) + enc.finalize()


def unwrap_key(block: bytes, dek: bytes, dek_aes: bool) -> bytes:
    if dek_aes:
        return aes_cbc_decrypt(dek, bytes(16), block)
    dec = Cipher(_tdes(dek), modes.ECB()).decryptor()
    return dec.update(block) + dec.finalize()


def put_key_data(new: OtaKeyset, dek: bytes, dek_aes: bool) -> bytes:
    """The PUT KEY data field (P2 = 81) loading `new` (key version, then three key fields)."""
    key_type = KEY_TYPE_AES if new.aes else KEY_TYPE_DES
    out = bytearray((new.kvn,))
    for key in (new.kic, new.kid, new.dek or new.kid):
        block = wrap_key(key, dek, dek_aes)
        if new.aes:
            # GPC Table 11-71 (as SCP03's PUT KEY sends it): the key length, then the block.
            block = bytes((len(key),)) + block
        out += bytes((key_type, len(block))) + block + b"\x03" + kcv(key, new.aes)
    return bytes(out)


def parse_put_ota_key(
    p1: int, p2: int, data: bytes, dek: bytes, dek_aes: bool, existing: tuple[OtaKeyset, ...]
) -> tuple[OtaKeyset, int, bytes]:
    """Decode a PUT KEY for an SCP80 key set.

    Returns:
        (the new key set, the version it replaces or 0, the response data:
        the key version then each key's KCV).

    Raises:
        CardError: 6A86 P2 other than 81, 6A80 malformed, 6A88 the set to
            replace is absent, 9484 mixed or unknown key types, 9485 a wrong
            KCV, 6A84 no room for another set.
    """
    old_kvn = p1 & 0x7F
    if p2 != 0x81:
        raise CardError(SW.INCORRECT_P1P2)
    if not data or not 0x01 <= data[0] <= 0x0F:
        raise CardError(SW.WRONG_DATA)
    new_kvn = data[0]
    pos = 1
    keys: list[bytes] = []
    types = set()
    out = bytes((new_kvn,))
    while pos < len(data):
        if pos + 2 > len(data):
            raise CardError(SW.WRONG_DATA)
        key_type, n = data[pos], data[pos + 1]
        block = data[pos + 2 : pos + 2 + n]
        pos += 2 + n
        if len(block) != n or pos >= len(data):
            raise CardError(SW.WRONG_DATA)
        kcv_len = data[pos]
        check = data[pos + 1 : pos + 1 + kcv_len]
        pos += 1 + kcv_len
        if len(check) != kcv_len:
            raise CardError(SW.WRONG_DATA)
        if key_type not in (KEY_TYPE_DES, KEY_TYPE_AES):
            raise CardError(SW_ALGORITHM_NOT_SUPPORTED)
        types.add(key_type)
        aes = key_type == KEY_TYPE_AES
        if aes and len(block) % 16 == 1:
            length, block = block[0], block[1:]
        else:
            length = len(block)
        if not block or len(block) % (16 if dek_aes else 8) or length > len(block):
            raise CardError(SW.WRONG_DATA)
        key = unwrap_key(block, dek, dek_aes)[:length]
        if len(key) not in ((16, 24, 32) if aes else (8, 16, 24)):
            raise CardError(SW.WRONG_DATA)
        mine = kcv(key, aes)
        if check and not hmac.compare_digest(check, mine[: len(check)]):
            raise CardError(SW_INVALID_KCV)
        keys.append(key)
        out += mine
    if len(types) != 1 or len(keys) not in (2, 3):
        raise CardError(SW_ALGORITHM_NOT_SUPPORTED if len(types) > 1 else SW.WRONG_DATA)
    aes = types == {KEY_TYPE_AES}
    old = next((k for k in existing if k.kvn == old_kvn), None) if old_kvn else None
    if old_kvn and old is None:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
    clash = next((k for k in existing if k.kvn == new_kvn), None)
    if clash is not None and clash is not old:
        raise CardError(SW.WRONG_DATA)
    if old is None and len(existing) >= MAX_OTA_KEYSETS:
        raise CardError(SW.NOT_ENOUGH_MEMORY)
    try:
        keyset = OtaKeyset(new_kvn, keys[0], keys[1], keys[2] if len(keys) > 2 else b"", aes)
    except ValueError:
        raise CardError(SW.WRONG_DATA) from None
    return keyset, old_kvn, out
