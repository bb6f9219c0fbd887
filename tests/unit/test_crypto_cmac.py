"""AES-CMAC, raw AES-CBC/ECB and ISO/IEC 9797-1 padding method 2."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.cmac import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    aes_ecb_decrypt,
    aes_ecb_encrypt,
    pad80,
    unpad80,
)

h = bytes.fromhex

# The four-block message used throughout NIST SP 800-38A/B and RFC 4493.
MSG64 = h(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)
K128 = h("2b7e151628aed2a6abf7158809cf4f3c")
K192 = h("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b")
K256 = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")

# RFC 4493 §4 (AES-128) and NIST SP 800-38B Appendix D.2/D.3 (AES-192/256):
# (key, message length in bytes, tag).
CMAC_VECTORS = [
    (K128, 0, "bb1d6929e95937287fa37d129b756746"),
    (K128, 16, "070a16b46b4d4144f79bdd9dd04a287c"),
    (K128, 40, "dfa66747de9ae63030ca32611497c827"),
    (K128, 64, "51f0bebf7e3b9d92fc49741779363cfe"),
    (K192, 0, "d17ddf46adaacde531cac483de7a9367"),
    (K192, 16, "9e99a7bf31e710900662f65e617c5184"),
    (K192, 40, "8a1de5be2eb31aad089a82e6ee908b0e"),
    (K192, 64, "a1d5df0eed790f794d77589659f39a11"),
    (K256, 0, "028962f61b7bf89efc6b551f4667d983"),
    (K256, 16, "28a7023f452e8f82bd4bf28d8c37c35c"),
    (K256, 40, "aaf3d8f1de5640c232f5b169b9c911e6"),
    (K256, 64, "e1992190549f6ed5696a2c056c315410"),
]


@pytest.mark.parametrize(("key", "mlen", "tag"), CMAC_VECTORS)
def test_aes_cmac_published_vectors(key: bytes, mlen: int, tag: str) -> None:
    assert aes_cmac(key, MSG64[:mlen]) == h(tag)


def test_cbc_sp800_38a_f21() -> None:
    # NIST SP 800-38A F.2.1 CBC-AES128.Encrypt / F.2.2 Decrypt.
    iv = h("000102030405060708090a0b0c0d0e0f")
    ct = h(
        "7649abac8119b246cee98e9b12e9197d"
        "5086cb9b507219ee95db113a917678b2"
        "73bed6b8e3c1743b7116e69e22229516"
        "3ff1caa1681fac09120eca307586e1a7"
    )
    assert aes_cbc_encrypt(K128, iv, MSG64) == ct
    assert aes_cbc_decrypt(K128, iv, ct) == MSG64


def test_ecb_sp800_38a_f11() -> None:
    # NIST SP 800-38A F.1.1 ECB-AES128.Encrypt / F.1.2 Decrypt.
    ct = h(
        "3ad77bb40d7a3660a89ecaf32466ef97"
        "f5d3d58503b9699de785895a96fdbaaf"
        "43b1cd7f598ece23881b00e3ed030688"
        "7b0c785e27e8ad3f8223207104725dd4"
    )
    assert aes_ecb_encrypt(K128, MSG64) == ct
    assert aes_ecb_decrypt(K128, ct) == MSG64


def test_ecb_fips197_appendix_c() -> None:
    # FIPS 197 Appendix C.1 (AES-128) and C.3 (AES-256).
    pt = h("00112233445566778899aabbccddeeff")
    assert aes_ecb_encrypt(bytes(range(16)), pt) == h("69c4e0d86a7b0430d8cdb78070b4c55a")
    assert aes_ecb_encrypt(bytes(range(32)), pt) == h("8ea2b7ca516745bfeafc49904b496089")


@pytest.mark.parametrize("n", [1, 15, 17, 33])
def test_block_functions_refuse_partial_blocks(n: int) -> None:
    with pytest.raises(ValueError):
        aes_cbc_encrypt(K128, bytes(16), bytes(n))
    with pytest.raises(ValueError):
        aes_cbc_decrypt(K128, bytes(16), bytes(n))
    with pytest.raises(ValueError):
        aes_ecb_encrypt(K128, bytes(n))


def test_bad_key_and_iv_sizes() -> None:
    with pytest.raises(ValueError):
        aes_cmac(bytes(15), b"")
    with pytest.raises(ValueError):
        aes_cbc_encrypt(K128, bytes(8), bytes(16))


def test_pad80_examples() -> None:
    # ISO/IEC 9797-1 method 2: always a marker, zeros to the block boundary.
    assert pad80(b"") == b"\x80" + bytes(15)
    assert pad80(b"\x01\x02") == b"\x01\x02\x80" + bytes(13)
    assert pad80(bytes(15)) == bytes(15) + b"\x80"
    assert pad80(bytes(16)) == bytes(16) + b"\x80" + bytes(15)
    assert pad80(b"\xaa" * 3, 8) == b"\xaa" * 3 + b"\x80" + bytes(4)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([8, 16]))
def test_pad80_round_trip(data: bytes, block: int) -> None:
    padded = pad80(data, block)
    assert len(padded) % block == 0
    assert 1 <= len(padded) - len(data) <= block
    assert unpad80(padded, block) == data


@pytest.mark.parametrize(
    "bad",
    [
        b"",  # nothing at all
        bytes(16),  # no marker
        b"\x01" * 16,  # no marker, no zeros
        b"\x12" * 15 + b"\x81",  # wrong marker
        b"\x80" + bytes(14),  # not whole blocks
        b"\x80" + bytes(31),  # padding longer than a block
    ],
)
def test_unpad80_rejects(bad: bytes) -> None:
    with pytest.raises(ValueError):
        unpad80(bad)


def test_unpad80_keeps_data_zeros() -> None:
    # Zeros before the marker are data, not padding.
    assert unpad80(b"\x00\x00\x80" + bytes(13)) == b"\x00\x00"
