"""Security Domain keys: key sets, PUT KEY and the Key Information Template.

- PUT KEY: GPC v2.3.1 §11.8 (P1/P2 Tables 11-63/11-64, key data field basic
  format Table 11-68, key component block Tables 11-70/11-71) with SCP03's
  rules from Amendment D §7.2: AES keys (type 88) are encrypted under the
  static DEK of the current session, AES-CBC with a zero ICV, and checked
  with their KCV (AES-ECB of 16 x 01, first 3 bytes, GPC Annex B.6).
- Key Information Template `E0 {C0 ...}`: GPC v2.3.1 §11.3.3.1 (Table 11-32,
  basic format: key identifier, key version, then key type / key length pairs).
- The DAP verification key: an ECC public key (type B0, with key parameter
  reference F0, 00 = P-256) under key version 73, key identifier 01 (GPC
  v2.3.1 §C.3 and the KVN allocation of GPC_GUI_003).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from card import tlv
from card.crypto.cmac import aes_cbc_decrypt
from card.crypto.keys import P256, EcPublicKey
from card.gp.scp03 import Scp03Keys, aes_kcv
from card.sw import SW, CardError

KEY_TYPE_AES = 0x88
KEY_TYPE_ECC_PUBLIC = 0xB0
KEY_TYPE_KEY_PARAMETER_REFERENCE = 0xF0
DAP_KVN = 0x73
MAX_KEY_SETS = 8

SW_ALGORITHM_NOT_SUPPORTED = 0x9484  # GPC v2.3.1 Table 11-66
SW_INVALID_KCV = 0x9485

_ZERO_ICV = bytes(16)


def keysets_to_value(sets: tuple[Scp03Keys, ...]) -> tuple[Any, ...]:
    return tuple((k.kvn, k.enc, k.mac, k.dek) for k in sets)


def keysets_from_value(v: tuple[Any, ...]) -> tuple[Scp03Keys, ...]:
    return tuple(Scp03Keys(enc, mac, dek, kvn) for kvn, enc, mac, dek in v)


def find_keyset(sets: tuple[Scp03Keys, ...], kvn: int) -> Scp03Keys | None:
    """The key set for INITIALIZE UPDATE's P1: 00 means the first one (GPC §E.5.1.3)."""
    if kvn == 0:
        return sets[0] if sets else None
    return next((k for k in sets if k.kvn == kvn), None)


@dataclass(frozen=True)
class PutKeyResult:
    """What a PUT KEY command asks for, decoded and checked."""

    new_kvn: int
    old_kvn: int
    keyset: Scp03Keys | None  # for SCP03 keys
    dap_key: bytes | None  # an uncompressed P-256 point, for key version 73
    response: bytes


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    # §11.8.2.3.1: BER lengths, except that 80 on its own also means 128.
    if pos >= len(data):
        raise CardError(SW.WRONG_DATA)
    if data[pos] == 0x80:
        return 0x80, pos + 1
    try:
        return tlv.decode_length(data, pos)
    except tlv.TlvError:
        raise CardError(SW.WRONG_DATA) from None


def _split_key_fields(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(key type, key component block, KCV) of each key data field (Table 11-68)."""
    out = []
    pos = 0
    while pos < len(data):
        key_type = data[pos]
        n, pos = _read_length(data, pos + 1)
        block = data[pos : pos + n]
        pos += n
        if len(block) != n or pos >= len(data):
            raise CardError(SW.WRONG_DATA)
        kcv_len = data[pos]
        kcv = data[pos + 1 : pos + 1 + kcv_len]
        pos += 1 + kcv_len
        if len(kcv) != kcv_len:
            raise CardError(SW.WRONG_DATA)
        out.append((key_type, block, kcv))
    return out


def decrypt_aes_key(block: bytes, dek: bytes) -> bytes:
    """The clear AES key from a key component block (Tables 11-70 / 11-71).

    A block that is whole AES blocks is the encrypted key alone; otherwise it
    starts with the key length (BER) and the encrypted key was padded.

    Raises:
        CardError: 6A80 when the block does not hold an AES key.
    """
    if len(block) % 16 == 0:
        key_len, enc = len(block), block
    else:
        key_len, p = _read_length(block, 0)
        enc = block[p:]
    if key_len not in (16, 24, 32) or not enc or len(enc) % 16 or len(enc) < key_len:
        raise CardError(SW.WRONG_DATA)
    return aes_cbc_decrypt(dek, _ZERO_ICV, enc)[:key_len]


def parse_put_key(
    p1: int, p2: int, data: bytes, dek: bytes, existing: tuple[Scp03Keys, ...]
) -> PutKeyResult:
    """Decode and check a PUT KEY command (GPC v2.3.1 §11.8.2, Amendment D §7.2).

    Supported: a whole SCP03 key set (key identifiers 1-3: ENC, MAC, DEK; P2 = 81)
    added (P1 = 00) or replacing one (P1 = its key version); a single key of an
    existing set replaced under the same version (P2 = 01, 02 or 03); the ECC
    DAP key under key version 73.

    Raises:
        CardError: 6A86 bad P1/P2, 6A80 bad data, 6A88 the key set to replace is
            absent, 9484 an unsupported key type, 9485 a wrong key check value,
            6A84 no room for another key set.
    """
    old_kvn = p1 & 0x7F
    first_kid = p2 & 0x7F
    multiple = bool(p2 & 0x80)
    if not data or first_kid == 0:
        raise CardError(SW.WRONG_DATA if not data else SW.INCORRECT_P1P2)
    new_kvn = data[0]
    if not 0x01 <= new_kvn <= 0x7F:
        raise CardError(SW.WRONG_DATA)
    fields = _split_key_fields(data[1:])
    if fields and fields[0][0] == KEY_TYPE_ECC_PUBLIC:
        # One ECC key: its public point and its key parameter reference (F0).
        return _parse_dap_key(old_kvn, new_kvn, first_kid, fields)
    if not fields or (len(fields) > 1 and not multiple):
        raise CardError(SW.WRONG_DATA)
    old = find_keyset(existing, old_kvn) if old_kvn else None
    if old_kvn and old is None:
        raise CardError(SW.REFERENCED_DATA_NOT_FOUND)

    keys: dict[int, bytes] = {}
    kcvs = b""
    for i, (key_type, block, kcv) in enumerate(fields):
        if key_type != KEY_TYPE_AES:
            raise CardError(SW_ALGORITHM_NOT_SUPPORTED)
        key = decrypt_aes_key(block, dek)
        check = aes_kcv(key)
        if kcv and not hmac.compare_digest(kcv, check[: len(kcv)]):
            raise CardError(SW_INVALID_KCV)
        keys[first_kid + i] = key
        kcvs += check
    if not set(keys) <= {1, 2, 3}:
        raise CardError(SW.WRONG_DATA)
    if len(keys) < 3:
        # Replacing some keys of a set keeps its version and the other keys.
        if old is None or new_kvn != old.kvn:
            raise CardError(SW.WRONG_DATA)
        current = {1: old.enc, 2: old.mac, 3: old.dek}
        keys = {**current, **keys}
    if len({len(k) for k in keys.values()}) != 1:
        raise CardError(SW.WRONG_DATA)
    clash = find_keyset(existing, new_kvn) if new_kvn else None
    if clash is not None and clash is not old:
        raise CardError(SW.WRONG_DATA)
    if old is None and len(existing) >= MAX_KEY_SETS:
        raise CardError(SW.NOT_ENOUGH_MEMORY)
    keyset = Scp03Keys(keys[1], keys[2], keys[3], new_kvn)
    return PutKeyResult(new_kvn, old_kvn, keyset, None, bytes((new_kvn,)) + kcvs)


def _parse_dap_key(
    old_kvn: int, new_kvn: int, first_kid: int, fields: list[tuple[int, bytes, bytes]]
) -> PutKeyResult:
    if new_kvn != DAP_KVN or first_kid != 1 or old_kvn not in (0, DAP_KVN):
        raise CardError(SW.WRONG_DATA)
    _, point, _ = fields[0]
    for key_type, block, _ in fields[1:]:
        if key_type != KEY_TYPE_KEY_PARAMETER_REFERENCE or block != b"\x00":
            raise CardError(SW_ALGORITHM_NOT_SUPPORTED)
    try:
        key = EcPublicKey.from_point(P256, point)
    except ValueError:
        raise CardError(SW.WRONG_DATA) from None
    return PutKeyResult(new_kvn, old_kvn, None, key.to_point(), bytes((new_kvn,)))


def key_information(
    sets: tuple[Scp03Keys, ...],
    dap_key: bytes | None,
    ota_sets: tuple[tuple[int, int, tuple[int, ...]], ...] = (),
) -> bytes:
    """The Key Information Template, tag E0 (GPC v2.3.1 §11.3.3.1, basic format).

    `ota_sets`: (key version, key type, (length of each key)) of the SCP80 key sets.
    """
    entries = []
    for kvn, key_type, lengths in ota_sets:
        for kid, n in enumerate(lengths, start=1):
            entries.append((0xC0, bytes((kid, kvn, key_type, n))))
    for ks in sets:
        n = len(ks.enc)
        for kid in (1, 2, 3):
            entries.append((0xC0, bytes((kid, ks.kvn, KEY_TYPE_AES, n))))
    if dap_key:
        entries.append((0xC0, bytes((1, DAP_KVN, KEY_TYPE_ECC_PUBLIC, len(dap_key), 0xF0, 1))))
    return tlv.build(0xE0, entries)


def put_key_data_for_dap(point: bytes) -> bytes:
    """The PUT KEY data field that sets the DAP key (for hosts and tests)."""
    return bytes((DAP_KVN, KEY_TYPE_ECC_PUBLIC, len(point))) + point + b"\x00" + b"\xf0\x01\x00\x00"
