"""TUAK (3GPP TS 35.231): Keccak-f[1600], TOPc, f1..f5*, and the published test sets
run through the USIM's AUTHENTICATE (TS 31.102 §7.1.2) in the 3G and GSM contexts and
through resynchronisation.

The vectors (tests/unit/data/tuak_vectors.json) are the 3GPP TUAK test data as carried
by mitshell/CryptoMobile test/test_TUAK.py (commit 0857cbbf140c05c54688bdb2076c25eb8f3ddb89):
the six Keccak-f[1600] permutation sets and TUAK test sets 1-6 (f1/f1* and f2-f5*
parts), which CryptoMobile attributes to TS 35.232 (the implementers' test data that
TS 35.233 accompanies).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.milenage import build_autn, c2, c3, compute_auts, generate_auth_vector, parse_auts
from card.crypto.tuak import Tuak, keccak_f1600, topc_from_top
from card.uicc.builder import sample_profile
from card.uicc.profile import ProfileFormatError
from tests.unit.usim_cards import authenticate, select_usim, send, usim_card

h = bytes.fromhex
DATA = json.loads((Path(__file__).parent / "data" / "tuak_vectors.json").read_text())
SETS: list[dict[str, Any]] = DATA["tuak"]
IDS = [f"set{s['set']}" for s in SETS]


def _tuak(s: dict[str, Any], mac_bits: int | None = None) -> Tuak:
    return Tuak.from_top(
        h(s["K"]),
        h(s["TOP"]),
        mac_len=(mac_bits or s["mac_bits"]) // 8,
        res_len=s["res_bits"] // 8,
        ck_len=s["ck_bits"] // 8,
        ik_len=s["ik_bits"] // 8,
        iterations=s["iterations"],
    )


@pytest.mark.parametrize("v", DATA["keccak_f1600"], ids=[f"keccak{i}" for i in range(1, 7)])
def test_keccak_permutation_sets(v: dict[str, str]) -> None:
    assert keccak_f1600(h(v["IN"])) == h(v["OUT"])


def _sha3_256(msg: bytes) -> bytes:
    # FIPS 202 sponge on our permutation: rate 136 bytes, domain padding 01 + pad10*1.
    rate = 136
    padded = bytearray(msg + b"\x06" + bytes(-(len(msg) + 1) % rate))
    padded[-1] |= 0x80
    state = bytes(200)
    for i in range(0, len(padded), rate):
        block = bytes(padded[i : i + rate]) + bytes(200 - rate)
        state = keccak_f1600(bytes(a ^ b for a, b in zip(state, block, strict=True)))
    return state[:32]


@settings(max_examples=20, deadline=None)
@given(st.binary(max_size=300))
def test_keccak_permutation_against_hashlib_sha3(msg: bytes) -> None:
    assert _sha3_256(msg) == hashlib.sha3_256(msg).digest()


def test_keccak_refuses_a_wrong_state_size() -> None:
    with pytest.raises(ValueError):
        keccak_f1600(bytes(199))


@pytest.mark.parametrize("s", SETS, ids=IDS)
def test_tuak_test_sets(s: dict[str, Any]) -> None:
    t = _tuak(s)
    rand, sqn, amf = h(s["RAND"]), h(s["SQN"]), h(s["AMF"])
    assert topc_from_top(h(s["K"]), h(s["TOP"]), s["iterations"]) == h(s["TOPc"])
    assert t.topc == h(s["TOPc"])
    assert t.f1(rand, sqn, amf) == h(s["f1"])
    assert t.f1_star(rand, sqn, amf) == h(s["f1star"])
    assert t.f2345(rand) == (h(s["f2"]), h(s["f3"]), h(s["f4"]), h(s["f5"]))
    assert t.f5_star(rand) == h(s["f5star"])
    # The same from TOPc directly.
    t2 = Tuak(h(s["K"]), h(s["TOPc"]), mac_len=t.mac_len, res_len=t.res_len,
              ck_len=t.ck_len, ik_len=t.ik_len, iterations=s["iterations"])  # fmt: skip
    assert t2.f1(rand, sqn, amf) == h(s["f1"])


@pytest.mark.parametrize(
    "kwargs",
    [{"mac_len": 12}, {"res_len": 6}, {"ck_len": 24}, {"ik_len": 8}, {"iterations": 0}],
)
def test_tuak_refuses_bad_lengths(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Tuak(bytes(16), bytes(32), **kwargs)


@pytest.mark.parametrize("k, topc", [(bytes(24), bytes(32)), (bytes(16), bytes(16))])
def test_tuak_refuses_bad_keys(k: bytes, topc: bytes) -> None:
    with pytest.raises(ValueError):
        Tuak(k, topc)
    with pytest.raises(ValueError):
        Tuak(bytes(16), bytes(32)).f1(bytes(15), bytes(6), bytes(2))


def test_tuak_repr_hides_keys() -> None:
    t = Tuak(b"\x42" * 16, b"\x43" * 32)
    assert "42" not in repr(t) and "43" not in repr(t)


# -- through the APDU interface ----------------------------------------------------------------


def _card(s: dict[str, Any], **extra: object) -> Any:
    return usim_card(
        sample_profile(
            algorithm="tuak",
            k=h(s["K"]),
            opc=h(s["TOPc"]),
            res_len=s["res_bits"] // 8,
            ck_len=s["ck_bits"] // 8,
            ik_len=s["ik_bits"] // 8,
            keccak_iterations=s["iterations"],
            delta=None,  # the sets' SQNs are far from 0 (no wrap-around limit here)
            **extra,
        )
    )


def _lv_items(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        n = data[pos]
        out.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return out


@pytest.mark.parametrize("s", SETS, ids=IDS)
def test_tuak_test_sets_through_authenticate(s: dict[str, Any]) -> None:
    """Each set's RES, CK, IK (f2-f4) come back from AUTHENTICATE; the card recovers SQN
    with the published AK (f5) and checks a 64-bit MAC-A (the published f1 where the set
    uses a 64-bit MAC)."""
    rand, sqn, amf = h(s["RAND"]), h(s["SQN"]), h(s["AMF"])
    mac_a = h(s["f1"]) if s["mac_bits"] == 64 else _tuak(s, 64).f1(rand, sqn, amf)
    autn = build_autn(sqn, h(s["f5"]), amf, mac_a)
    rt = _card(s)
    select_usim(rt)
    data, status = authenticate(rt, rand, autn)
    assert status == 0x9000, f"{status:04X}"
    assert data[0] == 0xDB
    items = _lv_items(data[1:])
    assert items[:3] == [h(s["f2"]), h(s["f3"]), h(s["f4"])]
    if s["ck_bits"] == s["ik_bits"] == 128:
        assert items[3] == c3(h(s["f3"]), h(s["f4"]))  # Kc, service 27 is on
    else:
        assert len(items) == 3
    # Resynchronisation: the same AUTN again is stale; AUTS carries SQN_MS under the
    # published AK* (f5*) and a MAC-S the AuC verifies.
    data, status = authenticate(rt, rand, autn)
    assert status == 0x9000 and data[0] == 0xDC
    auts = _lv_items(data[1:])[0]
    sqn_ms = bytes(a ^ b for a, b in zip(auts[:6], h(s["f5star"]), strict=True))
    assert sqn_ms == sqn
    alg = _tuak(s, 64)
    assert parse_auts(alg, rand, auts) == (sqn, auts[6:])
    assert compute_auts(alg, rand, sqn) == auts


@pytest.mark.parametrize("s", SETS, ids=IDS)
def test_tuak_gsm_context(s: dict[str, Any]) -> None:
    rt = _card(s)
    select_usim(rt)
    data, status = authenticate(rt, h(s["RAND"]))
    if s["res_bits"] <= 128 and s["ck_bits"] == s["ik_bits"] == 128:
        assert status == 0x9000
        assert _lv_items(data) == [c2(h(s["f2"])), c3(h(s["f3"]), h(s["f4"]))]
    else:
        # c2/c3 (TS 33.102 §6.8.1.2) are not defined for these lengths.
        assert status == 0x6985


def test_tuak_wrong_mac_is_9862() -> None:
    s = SETS[0]
    rt = _card(s)
    select_usim(rt)
    autn = build_autn(h(s["SQN"]), h(s["f5"]), h(s["AMF"]), bytes(8))
    assert authenticate(rt, h(s["RAND"]), autn)[1] == 0x9862


def test_tuak_profile_with_top_and_256_bit_key() -> None:
    s = SETS[1]  # a 256-bit K
    rt = usim_card(sample_profile(algorithm="tuak", k=h(s["K"]), opc=None, op=h(s["TOP"])))
    select_usim(rt)
    alg = Tuak.from_top(h(s["K"]), h(s["TOP"]))
    v = generate_auth_vector(alg, h(s["RAND"]), bytes.fromhex("000000000020"), b"\x80\x00")
    data, status = authenticate(rt, v.rand, v.autn)
    assert status == 0x9000 and _lv_items(data[1:])[:3] == [v.xres, v.ck, v.ik]
    send(rt, "00A40004023F00")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": bytes(32)},  # a 256-bit K is TUAK's only
        {"algorithm": "tuak", "opc": bytes(16)},  # TOPc is 32 bytes
        {"algorithm": "tuak", "opc": bytes(32), "res_len": 12},
        {"algorithm": "tuak", "opc": bytes(32), "ck_len": 24},
        {"ck_len": 32},  # Milenage's CK is 128 bits
        {"algorithm": "tuak", "opc": bytes(32), "keccak_iterations": 0},
    ],
)
def test_profile_refuses_bad_tuak_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ProfileFormatError):
        sample_profile(**kwargs)


def test_tuak_profile_round_trips_through_its_export() -> None:
    from card.uicc.profile import Profile

    p = sample_profile(algorithm="tuak", opc=h(SETS[5]["TOPc"]), k=h(SETS[5]["K"]),
                       res_len=32, ck_len=32, ik_len=32, keccak_iterations=2)  # fmt: skip
    back = Profile.from_bytes(p.to_bytes())
    assert back.auth == p.auth


def test_cli_auth_algorithm_tuak(tmp_path: Path) -> None:
    """`cardemu usim auth --algorithm tuak` builds AUTN with TUAK and checks the answer."""
    from click.testing import CliRunner

    from host.cli import cli

    s = SETS[0]
    image = str(tmp_path / "tuak.img")
    rt = usim_card(
        sample_profile(algorithm="tuak", k=h(s["K"]), opc=h(s["TOPc"]), res_len=4), image=image
    )
    rt.close()
    args = ["usim", "auth", "-q", "--json", "--card", image, "--algorithm", "tuak"]
    args += ["--k", s["K"], "--opc", s["TOPc"], "--res-len", "4", "--rand", s["RAND"]]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["res"] == s["f2"].upper() and doc["check"]["ok"] is True
    # The same card, checked with the wrong TOPc: AUTN's MAC fails on the card (exit 3).
    bad = [a if a != s["TOPc"] else "00" * 32 for a in args]
    assert CliRunner().invoke(cli, bad).exit_code == 3
    # TUAK's TOPc is 32 bytes.
    short = [a if a != s["TOPc"] else "00" * 16 for a in args]
    assert CliRunner().invoke(cli, short).exit_code == 2
