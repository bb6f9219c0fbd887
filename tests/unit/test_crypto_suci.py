"""SUCI (TS 33.501 Annex C): the null scheme and ECIES Profiles A and B against the
implementers' test data of Annex C.4, SUCI coding (TS 24.501 §9.11.3.4), and the ME's
5G AKA derivations RES* and K_AUSF (Annex A.4, A.2).

C.4 values are copied from TS 33.501 Annex C.4 (C.4.2-C.4.4), as transcribed in
typhon-sec/3gpp-security-toolkit specs/ts33501-v20/sections/section-C-4.md (commit
8d97b0f8ca7fdbabad863d62a13cf5e1cccd0eba); Profile A/B IMSI sets also in
mitshell/CryptoMobile test/test_ECIES.py.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.suci import (
    NULL_SCHEME,
    PROFILE_A,
    PROFILE_B,
    Suci,
    SuciError,
    conceal,
    decode_msin,
    deconceal,
    encode_msin,
    kausf,
    kdf_33220,
    res_star,
    serving_network_name,
)

h = bytes.fromhex

# C.4.2.1 (null scheme), C.4.3.1 (Profile A), C.4.4.1 (Profile B): IMSI 274 012 001002086.
C4_MSIN = "001002086"
C4_SCHEME_INPUT = h("00012080F6")
C4_NSI_INPUT = b"verylongusername1"  # C.4.x.2: 766572796C6F6E67757365726E616D6531

C4_A = {
    "hn_priv": h("c53c22208b61860b06c62e5406a7b330c2b577aa5558981510d128247d38bd1d"),
    "hn_pub": h("5a8d38864820197c3394b92613b20b91633cbd897119273bf8e4a6f4eec0a650"),
    "eph_priv": h("c80949f13ebe61af4ebdbd293ea4f942696b9e815d7e8f0096bbf6ed7de62256"),
    "output": h(
        "b2e92f836055a255837debf850b528997ce0201cb82adfe4be1f587d07d8457dcb02352410cddd9e730ef3fa87"
    ),
}
C4_A_NSI = {
    "eph_priv": h("BE9EFF3E9F22A4B42A3D236E7A6C500B3F2E7E0C7449988BA800D664BF4FCD97"),
    "output": h(
        "977D8B2FDAA7B64AA700D04227D5B440630EA4EC50F9082273A26BB678C92222"
        "8E358A1582ADB15322C10E515141D2039A" "12E1D7783A97F1AC"
    ),
}  # fmt: skip
C4_B = {
    "hn_priv": h("F1AB1074477EBCC7F554EA1C5FC368B1616730155E0041AC447D6301975FECDA"),
    "hn_pub": h("0272DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1"),
    "hn_pub_uncompressed": h(
        "0472DA71976234CE833A6907425867B82E074D44EF907DFB4B3E21C1C2256EBCD1"
        "5A7DED52FCBB097A4ED250E036C7B9C8C7004C4EEDC4F068CD7BF8D3F900E3B4"
    ),
    "eph_priv": h("99798858A1DC6A2C68637149A4B1DBFD1FDFF5ADDD62A2142F06699ED7602529"),
    "output": h(
        "039AAB8376597021E855679A9778EA0B67396E68C66DF32C0F41E9ACCA2DA9B9D1"
        "46A33FC271" "6AC7DAE96AA30A4D"
    ),
}  # fmt: skip
C4_B_NSI = {
    "eph_priv": h("90A5898BD29FFA3F261E00E980067C70A2B1B992A21F5B4FEF6D4DF69FE804AD"),
    "output": h(
        "03759BB22C563D9F4A6B3C1419E543FC2F39D6823F02A9D71162B39399218B244B"
        "BE22D8B9F856A52ED381CD7EAF4CF2D525" "3CDDC61A0A7882EB"
    ),
}  # fmt: skip


def test_c4_scheme_input_is_the_msin_in_bcd() -> None:
    assert encode_msin(C4_MSIN) == C4_SCHEME_INPUT
    assert decode_msin(C4_SCHEME_INPUT) == C4_MSIN


def test_c4_null_scheme() -> None:
    assert conceal(NULL_SCHEME, C4_SCHEME_INPUT, b"", b"") == C4_SCHEME_INPUT
    assert deconceal(NULL_SCHEME, C4_SCHEME_INPUT, b"") == C4_SCHEME_INPUT


@pytest.mark.parametrize(
    "scheme, keys, case, scheme_input",
    [
        (PROFILE_A, C4_A, C4_A, C4_SCHEME_INPUT),
        (PROFILE_A, C4_A, C4_A_NSI, C4_NSI_INPUT),
        (PROFILE_B, C4_B, C4_B, C4_SCHEME_INPUT),
        (PROFILE_B, C4_B, C4_B_NSI, C4_NSI_INPUT),
    ],
    ids=["A-imsi", "A-nsi", "B-imsi", "B-nsi"],
)
def test_c4_ecies(scheme: int, keys: dict, case: dict, scheme_input: bytes) -> None:
    assert conceal(scheme, scheme_input, keys["hn_pub"], case["eph_priv"]) == case["output"]
    assert deconceal(scheme, case["output"], keys["hn_priv"]) == scheme_input


def test_c4_profile_b_takes_the_uncompressed_home_network_key() -> None:
    out = conceal(PROFILE_B, C4_SCHEME_INPUT, C4_B["hn_pub_uncompressed"], C4_B["eph_priv"])
    assert out == C4_B["output"]


@pytest.mark.parametrize("scheme, keys", [(PROFILE_A, C4_A), (PROFILE_B, C4_B)])
def test_deconceal_refuses_a_tampered_output(scheme: int, keys: dict) -> None:
    good = conceal(scheme, C4_SCHEME_INPUT, keys["hn_pub"], keys["eph_priv"])
    for i in (len(good) - 1, len(good) - 9):  # MAC tag, ciphertext
        bad = bytearray(good)
        bad[i] ^= 1
        with pytest.raises(SuciError):
            deconceal(scheme, bytes(bad), keys["hn_priv"])
    with pytest.raises(SuciError):
        deconceal(scheme, good[:20], keys["hn_priv"])


def test_refusals() -> None:
    with pytest.raises(ValueError):
        conceal(3, b"", C4_A["hn_pub"], C4_A["eph_priv"])
    with pytest.raises(ValueError):
        conceal(PROFILE_A, b"", C4_A["hn_pub"], b"\x01" * 31)
    with pytest.raises(ValueError):  # a P-256 scalar of 0
        conceal(PROFILE_B, b"", C4_B["hn_pub"], bytes(32))
    with pytest.raises(SuciError):
        deconceal(7, b"\x00" * 50, C4_A["hn_priv"])
    bad_point = b"\x02" + b"\xff" * 32  # x beyond the field
    with pytest.raises(SuciError):
        deconceal(PROFILE_B, bad_point + bytes(13), C4_B["hn_priv"])
    for bad in ("", "12345678901", "12a"):
        with pytest.raises(ValueError):
            encode_msin(bad)
    with pytest.raises(SuciError):
        decode_msin(b"\xab")


@settings(max_examples=25, deadline=None)
@given(
    scheme=st.sampled_from([PROFILE_A, PROFILE_B]),
    msg=st.binary(max_size=40),
    eph=st.binary(min_size=32, max_size=32).filter(lambda b: any(b) and b[0] < 0xF0),
)
def test_conceal_deconceal_round_trip(scheme: int, msg: bytes, eph: bytes) -> None:
    keys = C4_A if scheme == PROFILE_A else C4_B
    assert deconceal(scheme, conceal(scheme, msg, keys["hn_pub"], eph), keys["hn_priv"]) == msg


# -- SUCI coding ---------------------------------------------------------------------------------


def test_suci_coding_of_the_c4_profile_a_set() -> None:
    s = Suci("274", "012", "678", PROFILE_A, 27, C4_A["output"])
    b = s.to_bytes()
    # TS 24.501 §9.11.3.4: type SUCI / IMSI; MCC 274 MNC 012 -> 72 24 10; RI 678 -> 76 F8.
    assert b[:8] == h("0172241076F8011B")
    assert Suci.from_bytes(b) == s
    assert str(s) == "suci-0-274-012-678-1-27-" + C4_A["output"].hex()
    two = Suci("001", "01", "0", NULL_SCHEME, 0, C4_SCHEME_INPUT)
    assert two.to_bytes()[:8] == h("0100F110F0FF0000")
    assert Suci.from_bytes(two.to_bytes()) == two


@settings(max_examples=100, deadline=None)
@given(
    mcc=st.from_regex(r"[0-9]{3}", fullmatch=True),
    mnc=st.from_regex(r"[0-9]{2,3}", fullmatch=True),
    ri=st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    scheme=st.integers(0, 15),
    key_id=st.integers(0, 255),
    out=st.binary(max_size=60),
)
def test_suci_round_trip(mcc: str, mnc: str, ri: str, scheme: int, key_id: int, out: bytes) -> None:
    s = Suci(mcc, mnc, ri, scheme, key_id, out)
    back = Suci.from_bytes(s.to_bytes())
    # A routing indicator's leading zeros survive; "0" stands for none.
    assert back == s


@pytest.mark.parametrize("data", ["", "0272241076F8011B", "11722410"])
def test_suci_refuses_what_is_not_an_imsi_suci(data: str) -> None:
    with pytest.raises(SuciError):
        Suci.from_bytes(h(data))


# -- 5G AKA on the ME side -------------------------------------------------------------------------
#
# No published RES* / K_AUSF vector was found in the reference corpora; the expected values
# are computed here independently of card.crypto.suci, straight from the clause text:
# S = FC || P0 || L0 || P1 || L1 ..., key = CK || IK, HMAC-SHA-256 (TS 33.220 B.2).

CK = h("b40ba9a3c58b2a05bbf0d987b21bf8cb")  # TS 35.207 set 1 f3
IK = h("f769bcd751044604127672711c6d3441")  # TS 35.207 set 1 f4
RES = h("a54211d5e3ba50bf")  # TS 35.207 set 1 f2
RAND = h("23553cbe9637a89d218ae64dae47bf35")
SQN_XOR_AK = bytes(a ^ b for a, b in zip(h("ff9bb4d0b607"), h("aa689c648370"), strict=True))
SNN = b"5G:mnc001.mcc001.3gppnetwork.org"


def test_serving_network_name() -> None:
    assert serving_network_name("001", "01") == SNN
    assert serving_network_name("274", "012") == b"5G:mnc012.mcc274.3gppnetwork.org"


def test_res_star_independent() -> None:
    s = b"\x6b" + SNN + b"\x00\x20" + RAND + b"\x00\x10" + RES + b"\x00\x08"
    want = hmac.new(CK + IK, s, sha256).digest()[16:]
    assert res_star(CK, IK, SNN, RAND, RES) == want
    assert len(want) == 16


def test_kausf_independent() -> None:
    s = b"\x6a" + SNN + b"\x00\x20" + SQN_XOR_AK + b"\x00\x06"
    assert kausf(CK, IK, SNN, SQN_XOR_AK) == hmac.new(CK + IK, s, sha256).digest()
    with pytest.raises(ValueError):
        kausf(CK, IK, SNN, b"\x00" * 5)
    with pytest.raises(ValueError):
        kdf_33220(CK, 0x6A, bytes(0x10000))
