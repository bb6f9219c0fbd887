"""AUTHENTICATE through the APDU: TS 35.207 Milenage sets, the osmocom end-to-end and AUTS
examples, the TS 34.108 XOR algorithm, SQN freshness (TS 33.102 Annex C), a wrong MAC."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.milenage import Milenage, c2, c3, generate_auth_vector, parse_auts
from card.uicc.auth import SqnPolicy, SqnState, check_sqn
from tests.unit.usim_cards import authenticate, select_usim, send, uicc, usim_card

# 3GPP TS 35.207 §4-6, test sets 1-6 (as in mitshell/CryptoMobile test/test_Milenage.py,
# cross-checked with free5gc).
TS_35_207 = [
    # K, RAND, SQN, AMF, OP, OPc, f1, f2, f3, f4, f5
    ("465b5ce8b199b49faa5f0a2ee238a6bc", "23553cbe9637a89d218ae64dae47bf35", "ff9bb4d0b607", "b9b9",
     "cdc202d5123e20f62b6d676ac72cb318", "cd63cb71954a9f4e48a5994e37a02baf", "4a9ffac354dfafb3",
     "a54211d5e3ba50bf", "b40ba9a3c58b2a05bbf0d987b21bf8cb", "f769bcd751044604127672711c6d3441",
     "aa689c648370"),
    ("0396eb317b6d1c36f19c1c84cd6ffd16", "c00d603103dcee52c4478119494202e8", "fd8eef40df7d", "af17",
     "ff53bade17df5d4e793073ce9d7579fa", "53c15671c60a4b731c55b4a441c0bde2", "5df5b31807e258b0",
     "d3a628ed988620f0", "58c433ff7a7082acd424220f2b67c556", "21a8c1f929702adb3e738488b9f5c5da",
     "c47783995f72"),
    ("fec86ba6eb707ed08905757b1bb44b8f", "9f7c8d021accf4db213ccff0c7f71a6a", "9d0277595ffc", "725c",
     "dbc59adcb6f9a0ef735477b7fadf8374", "1006020f0a478bf6b699f15c062e42b3", "9cabc3e99baf7281",
     "8011c48c0c214ed2", "5dbdbb2954e8f3cde665b046179a5098", "59a92d3b476a0443487055cf88b2307b",
     "33484dc2136b"),
    ("9e5944aea94b81165c82fbf9f32db751", "ce83dbc54ac0274a157c17f80d017bd6", "0b604a81eca8", "9e09",
     "223014c5806694c007ca1eeef57f004f", "a64a507ae1a2a98bb88eb4210135dc87", "74a58220cba84c49",
     "f365cd683cd92e96", "e203edb3971574f5a94b0d61b816345d", "0c4524adeac041c4dd830d20854fc46b",
     "f0b9c08ad02e"),
    ("4ab1deb05ca6ceb051fc98e77d026a84", "74b0cd6031a1c8339b2b6ce2b8c4a186", "e880a1b580b6", "9f07",
     "2d16c5cd1fdf6b22383584e3bef2a8d8", "dcf07cbd51855290b92a07a9891e523e", "49e785dd12626ef2",
     "5860fc1bce351e7e", "7657766b373d1c2138f307e3de9242f9", "1c42e960d89b8fa99f2744e0708ccb53",
     "31e11a609118"),
    ("6c38a116ac280c454f59332ee35c8c4f", "ee6466bc96202c5a557abbeff8babf63", "414b98222181", "4464",
     "1ba00a1a7c6700ac8c3ff3e96ad08725", "3803ef5363b947c6aaa225e58fae3934", "078adfb488241a57",
     "16c8233f05a0ac28", "3f8c7587fe8e4b233af676aede30ba3b", "a7466cc1e6b2a1337d49d3b66e95d7b4",
     "45b0f69ab06c"),
]  # fmt: skip

# libosmocore tests/auth/milenage_test.c (.ok)
OSMO_K = OSMO_OPC = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
OSMO_RAND = bytes(16)
OSMO_AUTN = bytes.fromhex("ec9320c2c2120000c8b7de2a3449f1bd")
OSMO_RES = bytes.fromhex("e9fc88ccc8a35381")
OSMO_CK = bytes.fromhex("7200a184d8f2c758fbdf87900ddbf275")
OSMO_IK = bytes.fromhex("12cb2dd3e0ec8378f6fc1d606c619f47")
OSMO_SRES = bytes.fromhex("215fdb4d")
OSMO_KC = bytes.fromhex("6de816a759a42912")
OSMO_SQN_MS = 0x1F
OSMO_AUTS = bytes.fromhex("8711a0ec9e1637df17f80b384ee4")


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _ok(res: bytes, ck: bytes, ik: bytes, kc: bytes | None = None) -> bytes:
    out = b"\xdb" + bytes((len(res),)) + res + b"\x10" + ck + b"\x10" + ik
    return out + (b"\x08" + kc if kc is not None else b"")


@pytest.mark.parametrize("vector", TS_35_207, ids=[f"set{i + 1}" for i in range(6)])
@pytest.mark.parametrize("key_form", ["opc", "op"])
def test_ts_35_207_through_authenticate(vector: tuple[str, ...], key_form: str) -> None:
    k, rand, sqn, amf, op, opc, f1, f2, f3, f4, f5 = (bytes.fromhex(v) for v in vector)
    keys = {"opc": opc} if key_form == "opc" else {"opc": None, "op": op}
    rt = usim_card(k=k, delta=None, **keys)
    select_usim(rt)
    autn = _xor(sqn, f5) + amf + f1
    data, sw = authenticate(rt, rand, autn)
    assert sw == 0x9000
    assert data == _ok(f2, f3, f4, c3(f3, f4))
    assert rt.exceptions == 0


def test_osmocom_end_to_end_example() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    select_usim(rt)
    data, sw = authenticate(rt, OSMO_RAND, OSMO_AUTN)
    assert sw == 0x9000
    assert data == _ok(OSMO_RES, OSMO_CK, OSMO_IK, OSMO_KC)
    # the same RAND in the GSM context: c2/c3 of TS 33.102 §6.8.1.2
    data, sw = authenticate(rt, OSMO_RAND)
    assert (data, sw) == (b"\x04" + OSMO_SRES + b"\x08" + OSMO_KC, 0x9000)


def test_osmocom_auts_example() -> None:
    # With IND of 0 bits the array has one entry: after SQN 1F is accepted, SQN_MS is 1F,
    # and replaying it gives the published AUTS.
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC, ind_bits=0, delta=None)
    select_usim(rt)
    av = generate_auth_vector(
        Milenage(OSMO_K, OSMO_OPC), OSMO_RAND, OSMO_SQN_MS.to_bytes(6, "big"), b"\0\0"
    )
    data, sw = authenticate(rt, OSMO_RAND, av.autn)
    assert sw == 0x9000 and data[0] == 0xDB
    data, sw = authenticate(rt, OSMO_RAND, av.autn)
    assert (data, sw) == (b"\xdc\x0e" + OSMO_AUTS, 0x9000)


def test_kc_only_with_gsm_access_service() -> None:
    services = {10, 12, 19, 21, 33, 38}  # no n°27
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC, services=services)
    select_usim(rt)
    data, sw = authenticate(rt, OSMO_RAND, OSMO_AUTN)
    assert (data, sw) == (_ok(OSMO_RES, OSMO_CK, OSMO_IK), 0x9000)


def test_gsm_context_needs_service_38() -> None:
    rt = usim_card(services={10, 27, 33})
    select_usim(rt)
    assert authenticate(rt, OSMO_RAND)[1] == 0x9864


def _vector(sqn: int, rand: bytes = OSMO_RAND, amf: bytes = b"\x80\x00"):  # noqa: ANN202
    return generate_auth_vector(Milenage(OSMO_K, OSMO_OPC), rand, sqn.to_bytes(6, "big"), amf)


def test_replay_gives_sync_failure_and_resync_recovers() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    select_usim(rt)
    first = _vector(0x22)
    assert authenticate(rt, OSMO_RAND, first.autn)[0][0] == 0xDB
    data, sw = authenticate(rt, OSMO_RAND, first.autn)
    assert sw == 0x9000 and data[:2] == b"\xdc\x0e"
    # The AuC side: recover SQN_MS and check MAC-S (TS 33.102 §6.3.5).
    sqn_ms, xmac_s = parse_auts(Milenage(OSMO_K, OSMO_OPC), OSMO_RAND, data[2:])
    assert sqn_ms == (0x22).to_bytes(6, "big")
    assert xmac_s == data[8:]
    # Next vector after SQN_MS, same IND: accepted.
    nxt = _vector(int.from_bytes(sqn_ms, "big") + 32, rand=bytes(range(16)))
    data, sw = authenticate(rt, bytes(range(16)), nxt.autn)
    assert sw == 0x9000 and data[2:10] == nxt.xres


def test_ind_array_accepts_out_of_order_vectors() -> None:
    # TS 33.102 Annex C.2: SEQ 2 with IND 0, then SEQ 1 with IND 1 (an older vector used
    # in another serving node) is still fresh; SEQ 1 with IND 0 is not.
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    select_usim(rt)
    assert authenticate(rt, OSMO_RAND, _vector((2 << 5) | 0).autn)[0][0] == 0xDB
    assert authenticate(rt, OSMO_RAND, _vector((1 << 5) | 1).autn)[0][0] == 0xDB
    assert authenticate(rt, OSMO_RAND, _vector((1 << 5) | 0).autn)[0][0] == 0xDC
    # SQN_MS reported is the highest accepted: SEQ 2 IND 0
    data, _ = authenticate(rt, OSMO_RAND, _vector((1 << 5) | 0).autn)
    sqn_ms, _ = parse_auts(Milenage(OSMO_K, OSMO_OPC), OSMO_RAND, data[2:])
    assert int.from_bytes(sqn_ms, "big") == 2 << 5


def test_delta_rejects_a_jump_far_ahead() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC, delta=1000)
    select_usim(rt)
    assert authenticate(rt, OSMO_RAND, _vector(1001 << 5).autn)[0][0] == 0xDC
    assert authenticate(rt, OSMO_RAND, _vector(1000 << 5).autn)[0][0] == 0xDB


def test_wrong_mac_is_9862_and_changes_nothing() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    select_usim(rt)
    av = _vector(0x22)
    bad = av.autn[:-1] + bytes((av.autn[-1] ^ 1,))
    before = uicc(rt).export_profile(uicc(rt).enabled_profile())
    assert authenticate(rt, OSMO_RAND, bad) == (b"", 0x9862)
    assert uicc(rt).export_profile(uicc(rt).enabled_profile()) == before
    assert authenticate(rt, OSMO_RAND, av.autn)[0][0] == 0xDB


def test_authenticate_needs_the_usim_and_pin1() -> None:
    rt = usim_card(pin1_enabled=True)
    assert authenticate(rt, OSMO_RAND, OSMO_AUTN)[1] == 0x6985  # MF selected, not the USIM
    select_usim(rt)
    assert authenticate(rt, OSMO_RAND, OSMO_AUTN)[1] == 0x6982
    assert send(rt, "0020000108" + b"1234".hex() + "ffffffff")[1] == 0x9000
    assert authenticate(rt, OSMO_RAND, OSMO_AUTN)[1] == 0x9000


def test_authenticate_parameter_checks() -> None:
    rt = usim_card()
    select_usim(rt)
    assert send(rt, "0088018122" + "10" + "00" * 16 + "10" + "00" * 16)[1] == 0x6B00
    assert send(rt, "0088008422" + "10" + "00" * 16 + "10" + "00" * 16)[1] == 0x6A86
    assert send(rt, "0088008121" + "10" + "00" * 16 + "0F" + "00" * 15)[1] == 0x6A80
    assert send(rt, "0088008122" + "10" + "00" * 16 + "11" + "00" * 16)[1] == 0x6700
    assert send(rt, "0088008101" + "00")[1] == 0x6700


def test_xor_test_algorithm() -> None:
    # TS 34.108 §8.1.2: XDOUT = K xor RAND, RES = XDOUT[0..n-1], CK = XDOUT <<< 8,
    # IK = XDOUT <<< 16, AK = XDOUT[24..71], MAC-A = XDOUT[0..63] xor (SQN || AMF).
    k = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    rand = bytes.fromhex("f0e0d0c0b0a090807060504030201000")
    sqn, amf = (0x40).to_bytes(6, "big"), b"\x80\x00"
    xdout = _xor(k, rand)
    ak = xdout[3:9]
    autn = _xor(sqn, ak) + amf + _xor(xdout[:8], sqn + amf)
    rt = usim_card(k=k, opc=None, algorithm="xor", res_len=8)
    select_usim(rt)
    data, sw = authenticate(rt, rand, autn)
    ck, ik = xdout[1:] + xdout[:1], xdout[2:] + xdout[:2]
    assert (data, sw) == (_ok(xdout[:8], ck, ik, c3(ck, ik)), 0x9000)
    data, sw = authenticate(rt, rand)
    assert (data, sw) == (b"\x04" + c2(xdout[:8]) + b"\x08" + c3(ck, ik), 0x9000)
    assert authenticate(rt, rand, autn[:-1] + b"\x00")[1] == 0x9862


@settings(max_examples=40, deadline=None)
@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(1, (1 << 43) - 1),
    st.binary(min_size=2, max_size=2),
)
def test_card_agrees_with_the_auc(k: bytes, opc: bytes, rand: bytes, seq: int, amf: bytes) -> None:
    rt = usim_card(k=k, opc=opc, delta=None)
    select_usim(rt)
    av = generate_auth_vector(Milenage(k, opc), rand, (seq << 5).to_bytes(6, "big"), amf)
    data, sw = authenticate(rt, rand, av.autn)
    assert (data, sw) == (_ok(av.xres, av.ck, av.ik, c3(av.ck, av.ik)), 0x9000)


@given(st.integers(0, 5), st.lists(st.integers(0, (1 << 20) - 1), max_size=30))
def test_sqn_state_only_grows(ind_bits: int, sqns: list[int]) -> None:
    policy = SqnPolicy(ind_bits, None, None)
    state = SqnState.initial(policy)
    accepted: set[int] = set()
    for sqn in sqns:
        new = check_sqn(policy, state, sqn)
        if new is None:
            continue
        assert sqn not in accepted  # never the same SQN twice
        assert all(a >= b for a, b in zip(new.seq, state.seq, strict=True))
        assert new.sqn_ms >= state.sqn_ms
        accepted.add(sqn)
        state = new


class _CountingMilenage(Milenage):
    """The real Milenage, counting its f2345 runs."""

    calls = 0

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        type(self).calls += 1
        return super().f2345(rand)


def test_authenticate_3g_runs_f2345_once() -> None:
    """AK and RES/CK/IK come from one f2345 run, with the same answer."""
    from card.crypto.milenage import parse_autn
    from card.uicc.auth import authenticate_3g

    alg = _CountingMilenage(OSMO_K, OSMO_OPC)
    policy = SqnPolicy()
    _CountingMilenage.calls = 0
    out, state = authenticate_3g(
        alg, policy, SqnState.initial(policy), OSMO_RAND, OSMO_AUTN, with_kc=True
    )
    assert _CountingMilenage.calls == 1
    assert out == _ok(OSMO_RES, OSMO_CK, OSMO_IK, OSMO_KC) and state is not None
    ak = alg.f2345(OSMO_RAND)[3]
    assert parse_autn(alg, OSMO_RAND, OSMO_AUTN, ak=ak) == parse_autn(alg, OSMO_RAND, OSMO_AUTN)


def test_service_table_decoding_is_by_content() -> None:
    """The cached decoder answers by content: a changed EF.UST gives a new answer."""
    from card.uicc.ts_31_102 import decode_service_table, encode_service_table

    a = encode_service_table({27, 33}, 5)
    b = encode_service_table({33}, 5)
    assert decode_service_table(a) == {27, 33}
    assert decode_service_table(b) == {33}
    assert decode_service_table(bytearray(a)) == {27, 33}
    assert decode_service_table(a) is decode_service_table(bytes(a))  # one frozen value
