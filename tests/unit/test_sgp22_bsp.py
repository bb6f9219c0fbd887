"""SCP03t / BSP (card.sgp22.bsp): SGP.22 §2.6.4 and Annex G.

Known answers: the session keys and segments below were taken by osmocom's
pySim (tests/unittests/test_esim_bsp.py, class BSP_Test_mode51) from a trace
of a third-party SM-DP+; they are data, not code. The MAC and ICV are also
recomputed here independently, straight from `cryptography`'s AES and CMAC.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from hypothesis import given, settings
from hypothesis import strategies as st

from card.sgp22.bsp import (
    MAX_SEGMENT,
    BspError,
    BspMacError,
    BspState,
    derive_session_keys,
    kdf_shared_info,
    protect_all,
    unprotect_all,
)

h = bytes.fromhex

# Third-party SM-DP+ trace (see the module docstring).
SHS = h("c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe")
EID = h("89049032123451234512345678901235")
HOST_ID = b"\x80" * 8
S_ENC = h("472f5bfadd97f21d34f3ce9b51b92751")
S_MAC = h("9ec07f5b36a13e12a991d66e294e6242")
MCV0 = h("406d507b448a699e7a36a38494debbde")
CONFIGURE_ISDP = h("bf2400")
SEG_CONFIGURE_ISDP = h("8718f6fe031e4b9cfe87c8e1e62f3fde85c49412d7722a6a2d89")
STORE_METADATA = h(
    "bf252d5a0a98001032547698103214910947534d415f54455354921147534d415f544553545f50524f"
    "46494c45950100"
)
SEG_STORE_METADATA = h(
    "8838bf252d5a0a98001032547698103214910947534d415f54455354921147534d415f544553545f50"
    "524f46494c459501008a62cc9adbb5ccbc"
)
REPLACE_KEYS = h(
    "bf26368010000102030405060708090a0b0c0d0e0f8110010102030405060708090a0b0c0d0e0f8210"
    "020102030405060708090a0b0c0d0e0f"
)
SEG_REPLACE_KEYS = h(
    "8748a14c800a001992351cd46ad2945654674369701d82b7b46567652bc8fbed234939fc57fba7480155"
    "25fd6c651e9d3d1330652d42a0cfad950e912122af4ec5362d3c0bc535729c40"
)
# A second KDF answer from the same source (class BSP_Test).
SHS2 = h("8902dca391bbb22570fe60c176076246f568b1941265dff1d729e63039658089")
EID2 = h("89049032123451234512345678901335")


def test_kdf_known_answers() -> None:
    assert derive_session_keys(SHS, 0x88, 16, HOST_ID, EID) == (MCV0, S_ENC, S_MAC)
    assert derive_session_keys(SHS2, 0x88, 16, HOST_ID, EID2) == (
        h("734bc93ddb10c71c5ad13d420dc08b5b"),
        h("d782d575b22a38334556a3d9a1e2ae6b"),
        h("a35addc192ae8f934e2932116c7e89e7"),
    )


def test_kdf_shared_info_layout() -> None:
    # Annex G: key type, key length, then host ID and EID each with a length byte.
    assert kdf_shared_info(0x88, 16, HOST_ID, EID) == b"\x88\x10\x08" + HOST_ID + b"\x10" + EID
    # Independent X9.63 computation with the same SharedInfo.
    ref = X963KDF(hashes.SHA256(), 48, kdf_shared_info(0x88, 16, HOST_ID, EID)).derive(SHS)
    assert ref == MCV0 + S_ENC + S_MAC


def test_segments_known_answers_both_directions() -> None:
    s = BspState.from_shared_secret(SHS, 0x88, 16, HOST_ID, EID)
    seg1, s = s.protect(0x87, CONFIGURE_ISDP)
    seg2, s = s.protect(0x88, STORE_METADATA, encrypt=False)
    seg3, s = s.protect(0x87, REPLACE_KEYS)
    assert (seg1, seg2, seg3) == (SEG_CONFIGURE_ISDP, SEG_STORE_METADATA, SEG_REPLACE_KEYS)
    assert s.counter == 4  # the MAC-only segment moved the counter too

    r = BspState(S_ENC, S_MAC, MCV0)
    p1, r = r.unprotect(SEG_CONFIGURE_ISDP, tag=0x87)
    p2, r = r.unprotect(SEG_STORE_METADATA, encrypted=False, tag=0x88)
    p3, r = r.unprotect(SEG_REPLACE_KEYS, tag=0x87)
    assert (p1, p2, p3) == (CONFIGURE_ISDP, STORE_METADATA, REPLACE_KEYS)
    assert r == s


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def _cmac(key: bytes, data: bytes) -> bytes:
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def test_independent_recomputation_of_the_first_segment() -> None:
    # ICV = AES(S-ENC, counter 1 on 16 bytes); CBC over bf2400 || 80 || 00*12.
    icv = _aes_ecb(S_ENC, (1).to_bytes(16, "big"))
    e = Cipher(algorithms.AES(S_ENC), modes.CBC(icv)).encryptor()
    ct = e.update(CONFIGURE_ISDP + b"\x80" + b"\x00" * 12) + e.finalize()
    header = b"\x87" + bytes([len(ct) + 8])
    mac = _cmac(S_MAC, MCV0 + header + ct)[:8]
    assert header + ct + mac == SEG_CONFIGURE_ISDP


def test_replace_keys_restarts_the_counter() -> None:
    s = BspState(S_ENC, S_MAC, MCV0, 7).replace_keys(b"\x01" * 16, b"\x02" * 16, b"\x03" * 16)
    assert (s.counter, s.mcv) == (1, b"\x03" * 16)
    with pytest.raises(BspError):
        s.replace_keys(b"\x01" * 15, b"\x02" * 16, b"\x03" * 16)


def test_bad_mac_replay_and_reorder_are_refused() -> None:
    s0 = BspState(S_ENC, S_MAC, MCV0)
    bad = SEG_CONFIGURE_ISDP[:-1] + bytes([SEG_CONFIGURE_ISDP[-1] ^ 1])
    with pytest.raises(BspMacError):
        s0.unprotect(bad)
    _, s1 = s0.unprotect(SEG_CONFIGURE_ISDP)
    with pytest.raises(BspMacError):  # replayed: the chaining value moved on
        s1.unprotect(SEG_CONFIGURE_ISDP)
    with pytest.raises(BspMacError):  # reordered: the third segment out of turn
        s1.unprotect(SEG_REPLACE_KEYS)
    with pytest.raises(BspError):
        s0.unprotect(SEG_CONFIGURE_ISDP, tag=0x86)
    with pytest.raises(BspError):
        s0.unprotect(SEG_CONFIGURE_ISDP[:-3])


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=3000),
    encrypt=st.booleans(),
    keys=st.tuples(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16)),
)
def test_round_trip_and_segment_bound(
    data: bytes, encrypt: bool, keys: tuple[bytes, bytes]
) -> None:
    s = BspState(keys[0], keys[1], b"\x00" * 16)
    segs, end = protect_all(s, 0x86, data, encrypt=encrypt)
    assert all(len(x) <= MAX_SEGMENT for x in segs)
    plain, end2 = unprotect_all(s, segs, encrypted=encrypt, tag=0x86)
    assert plain == data and end2 == end and end.counter == 1 + len(segs)


def test_a_whole_bound_profile_package_from_another_implementation() -> None:
    """Open every segment of a BPP made elsewhere (tests/unit/data/sgp22/README.md)."""
    from pathlib import Path

    from card.sgp22 import asn1

    bpp = (Path(__file__).parent / "data" / "sgp22" / "bpp-osmocom-test.der").read_bytes()
    value = asn1.decode("BoundProfilePackage", bpp)
    assert asn1.encode("BoundProfilePackage", value) == bpp
    # This package wraps each segment in one more tag (A0 { 87 { 87 L ... } }): the
    # decoded element values are the segments themselves.
    s = BspState(
        h("f11b921c302efb1df6bf218bf2de0dd8"),
        h("8cd4d3a761eeac108641d5f4531a137e"),
        h("ee3140eafd692b68eff40119b363bc6c"),
    )
    configure, s = unprotect_all(s, value["firstSequenceOf87"], tag=0x87)
    assert configure == h("bf2400")
    metadata, s = unprotect_all(s, value["sequenceOf88"], encrypted=False, tag=0x88)
    assert metadata == h(
        "bf25285a0a89000123456789012341910a4f736d6f636f6d53504e920e4f736d6f636f6d50726f66696c65"
    )
    ppk = BspState(b"\x00" * 16, b"\x11" * 16, b"\x22" * 16)
    upp, end = unprotect_all(ppk, value["sequenceOf86"], tag=0x86)
    assert end.counter == 1 + len(value["sequenceOf86"])
    pes = asn1.decode_pe_sequence(upp)
    assert pes[0][0] == "header" and pes[-1][0] == "end"
    assert pes[0][1]["iccid"] == h("89000123456789012341")
