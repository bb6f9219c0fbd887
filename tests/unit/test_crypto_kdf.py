"""The SCP03 KDF (GP Amendment D §4.1.5) and the ANSI X9.63 KDF."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.cmac import aes_cmac
from card.crypto.kdf import Scp03Constant, scp03_kdf, x963_kdf

h = bytes.fromhex

# --- SCP03 ---------------------------------------------------------------------
# Source: osmocom/pysim tests/unittests/test_globalplatform.py at commit
# 597f1e0398bb81d6832dc92ee4dfdcada59d3d82 (SCP03 AES-128 sessions captured
# against an eUICC ISD-R).
KEY_ENC = h("000102030405060708090a0b0c0d0e0f")
KEY_MAC = h("101112131415161718191a1b1c1d1e1f")
ISD_R_AID = h("A0000005591010FFFFFFFF8900000100")


@dataclass(frozen=True)
class Session:
    name: str
    host_challenge: str
    card_challenge: str
    card_cryptogram: str
    host_cryptogram: str
    seq_counter: str
    s_enc: str
    s_mac: str
    s_rmac: str


SESSIONS = [
    Session(
        "SCP03_Test_AES128_11",
        "b13e5f938fc108c4",
        "3eb51047495b249f",
        "66c484c1d2ef1948",
        "7d5f5826a993ebc8",
        "000002",
        "c4e87149f2114da66bb015a567d751f9",
        "8b2635556e987a6b84f43d9ffc197d3f",
        "3f6b2ce3b3abd9a99bd4453afa54cc7b",
    ),
    Session(
        "SCP03_Test_AES128_03",
        "8e1552d0513c60f3",
        "30760cd2c47c1dd3",
        "95065fe5ead8a9d7",
        "fd4721a14d9b0700",
        "000001",
        "ee54985e150155e021725489f717d645",
        "59b76ddff91dba0515a9644de3a48863",
        "5942bf778c5942f17037da8278f9330d",
    ),
    Session(
        "SCP03_Test_AES128_33",
        "fdf38259a1e0de44",
        "3b1aca81e821f219",
        "081cdc01c26b372d",
        "8c36f96bcc00724a",
        "000003",
        "bc5689f3a0b783a9ed6da1c5c6bc1f99",
        "0415f56cbb9e488bb171b2b66081f004",
        "1ee185123244e047bc9d68b914bd1fbe",
    ),
]


@pytest.mark.parametrize("s", SESSIONS, ids=lambda s: s.name)
def test_scp03_session_keys(s: Session) -> None:
    context = h(s.host_challenge) + h(s.card_challenge)
    assert scp03_kdf(KEY_ENC, Scp03Constant.S_ENC, context, 128) == h(s.s_enc)
    assert scp03_kdf(KEY_MAC, Scp03Constant.S_MAC, context, 128) == h(s.s_mac)
    assert scp03_kdf(KEY_MAC, Scp03Constant.S_RMAC, context, 128) == h(s.s_rmac)


@pytest.mark.parametrize("s", SESSIONS, ids=lambda s: s.name)
def test_scp03_cryptograms(s: Session) -> None:
    context = h(s.host_challenge) + h(s.card_challenge)
    s_mac = h(s.s_mac)
    assert scp03_kdf(s_mac, Scp03Constant.CARD_CRYPTOGRAM, context, 64) == h(s.card_cryptogram)
    assert scp03_kdf(s_mac, Scp03Constant.HOST_CRYPTOGRAM, context, 64) == h(s.host_cryptogram)


@pytest.mark.parametrize("s", SESSIONS, ids=lambda s: s.name)
def test_scp03_pseudo_random_card_challenge(s: Session) -> None:
    # Card challenge = KDF(K-ENC, 02, sequence counter || AID, L = 64).
    context = h(s.seq_counter) + ISD_R_AID
    assert scp03_kdf(KEY_ENC, Scp03Constant.CARD_CHALLENGE, context, 64) == h(s.card_challenge)


def test_scp03_constants() -> None:
    # GP Amendment D §4.1.5 Table 4-1.
    assert [int(c) for c in Scp03Constant] == [0x00, 0x01, 0x02, 0x04, 0x06, 0x07]


def test_scp03_prf_input_layout() -> None:
    # label (11 x 00 || constant) || 00 || L || i || context, spelt out by hand.
    key, ctx = KEY_MAC, b"\xaa" * 16
    first = aes_cmac(key, bytes(11) + b"\x06" + b"\x00" + b"\x01\x00" + b"\x01" + ctx)
    second = aes_cmac(key, bytes(11) + b"\x06" + b"\x00" + b"\x01\x00" + b"\x02" + ctx)
    assert scp03_kdf(key, Scp03Constant.S_MAC, ctx, 256) == first + second


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([16, 24, 32]),
    st.integers(0, 255),
    st.binary(max_size=40),
    st.integers(1, 64).map(lambda n: n * 8),
)
def test_scp03_length_and_l_binding(keylen: int, const: int, ctx: bytes, bits: int) -> None:
    key = bytes(range(keylen))
    out = scp03_kdf(key, const, ctx, bits)
    assert len(out) == bits // 8
    # L is part of the PRF input, so a shorter request is not a prefix of a longer one.
    # (Compared on 8 bytes or more: a 1-byte prefix collides by chance 1 time in 256.)
    if bits >= 64:
        assert scp03_kdf(key, const, ctx, bits + 128)[: bits // 8] != out


@pytest.mark.parametrize("bits", [0, -8, 7, 65536])
def test_scp03_bad_lengths(bits: int) -> None:
    with pytest.raises(ValueError):
        scp03_kdf(KEY_ENC, 4, b"", bits)


def test_scp03_bad_constant() -> None:
    with pytest.raises(ValueError):
        scp03_kdf(KEY_ENC, 256, b"", 128)


# --- ANSI X9.63 ----------------------------------------------------------------
# NIST CAVS ANS X9.63-2001 KDF component test vectors (ansx963_2001.rsp),
# [SHA-256] [shared secret length = 192]: COUNT 0 of [SharedInfo length = 0]
# [key data length = 128] and COUNT 0 and 1 of [SharedInfo length = 128]
# [key data length = 1024]; as carried e.g. by cryptomator/cryptolib
# KeyDerivationFunctionTest.java and Yubico's SCP11 X963Kdf tests.
X963_VECTORS = [
    ("96c05619d56c328ab95fe84b18264b08725b85e33fd34f08", "", "443024c3dae66b95e6f5670601558f71"),
    ("96f600b73ad6ac5629577eced51743dd2c24c21b1ac83ee4", "", "b6295162a7804f5667ba9070f82fa522"),
    (
        "22518b10e70f2a3f243810ae3254139efbee04aa57c7af7d",
        "75eef81aa3041e33b80971203d2c0c52",
        "c498af77161cc59f2962b9a713e2b215152d139766ce34a776df11866a69bf2e"
        "52a13d9c7c6fc878c50c5ea0bc7b00e0da2447cfd874f6cf92f30d0097111485"
        "500c90c3af8b487872d04685d14c8d1dc8d7fa08beb0ce0ababc11f0bd496269"
        "142d43525a78e5bc79a17f59676a5706dc54d54d4d1f0bd7e386128ec26afc21",
    ),
    (
        "7e335afa4b31d772c0635c7b0e06f26fcd781df947d2990a",
        "d65a4812733f8cdbcdfb4b2f4c191d87",
        "c0bd9e38a8f9de14c2acd35b2f3410c6988cf02400543631e0d6a4c1d030365a"
        "cbf398115e51aaddebdc9590664210f9aa9fed770d4c57edeafa0b8c14f93300"
        "865251218c262d63dadc47dfa0e0284826793985137e0a544ec80abf2fdf5ab9"
        "0bdaea66204012efe34971dc431d625cd9a329b8217cc8fd0d9f02b13f2f6b0b",
    ),
]


@pytest.mark.parametrize(("z", "info", "key"), X963_VECTORS)
def test_x963_cavs(z: str, info: str, key: str) -> None:
    assert x963_kdf(h(z), h(info), len(h(key))) == h(key)


def test_x963_prefix_property() -> None:
    # X9.63 has no length in its input: a shorter output is a prefix of a longer one.
    z, info = h(X963_VECTORS[2][0]), h(X963_VECTORS[2][1])
    assert x963_kdf(z, info, 40) == h(X963_VECTORS[2][2])[:40]


def test_x963_bad_length() -> None:
    with pytest.raises(ValueError):
        x963_kdf(b"z", b"", 0)
