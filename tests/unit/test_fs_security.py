"""Access rules: compact and expanded formats, EF.ARR records.

ISO 7816-4 §7.4.3; ETSI TS 102 221 §9.2.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.fs.fcp import Compact, Expanded
from card.fs.security import (
    ADM1,
    ALW,
    ALWAYS,
    INS_INCREASE,
    NEV,
    NEVER,
    PIN1,
    PIN2,
    UNIVERSAL_PIN,
    AccessRules,
    Condition,
    Op,
    StaticEnvironment,
    all_of,
    any_of,
    as_condition,
    compact,
    encode_rules,
    key,
    parse_arr_record,
    parse_compact,
    parse_expanded,
    rules,
    sc_do,
)


def ok(rules_: AccessRules, op: int, verified: set[int], ins: int | None = None) -> bool:
    return rules_.allows(op, StaticEnvironment(frozenset(verified)).is_verified, ins)


def test_ts_102_221_style_arr_record() -> None:
    # READ always; UPDATE PIN1; ACTIVATE+DEACTIVATE (AM 18) ADM1 -- each SC DO a CRT
    # with key reference 83 and usage qualifier 95 08, as in TS 102 221 Annex G.
    rec = bytes.fromhex(
        "8001019000800102A40683010195 0108".replace(" ", "")
        + "800118A40683010A950108"
        + "FFFFFFFFFFFF"
    )
    r = parse_arr_record(rec)
    assert ok(r, Op.READ, set())
    assert not ok(r, Op.UPDATE, set()) and ok(r, Op.UPDATE, {PIN1})
    assert not ok(r, Op.UPDATE, {PIN2})
    assert ok(r, Op.ACTIVATE, {ADM1}) and ok(r, Op.DEACTIVATE, {ADM1})
    assert not ok(r, Op.DEACTIVATE, {PIN1})
    # operations no rule names are never allowed
    assert not ok(r, Op.TERMINATE, {PIN1, PIN2, ADM1}) and not ok(r, Op.DELETE, {ADM1})
    assert r.alternatives(Op.UPDATE) == (frozenset({PIN1}),)


def test_or_and_templates_and_multiple_sc_dos() -> None:
    # UPDATE: PIN1 OR universal PIN (A0); READ: PIN1 AND ADM1 (AF);
    # DEACTIVATE: two SC DOs after one AM DO, i.e. either.
    rec = bytes.fromhex(
        "800102A010A40683010195 0108A40683011195 0108".replace(" ", "")
        + "800101AF10A406830101950108A40683010A950108"
        + "800108A406830181950108A40683010A950108"
    )
    r = parse_expanded(rec)
    assert ok(r, Op.UPDATE, {PIN1}) and ok(r, Op.UPDATE, {UNIVERSAL_PIN})
    assert not ok(r, Op.UPDATE, {ADM1})
    assert ok(r, Op.READ, {PIN1, ADM1}) and not ok(r, Op.READ, {PIN1})
    assert ok(r, Op.DEACTIVATE, {PIN2}) and ok(r, Op.DEACTIVATE, {ADM1})
    assert not ok(r, Op.DEACTIVATE, {PIN1})


def test_never_sm_not_and_unknown_conditions() -> None:
    r = parse_expanded(
        bytes.fromhex(
            "8001019700"  # READ never
            "800102B400"  # UPDATE: secure messaging -- not available to the file system
            "800104A700"  # WRITE: NOT template -- unsupported, so never
            "800108A4039501 08".replace(" ", "")  # DEACTIVATE: CRT without key reference
        )
    )
    for op in (Op.READ, Op.UPDATE, Op.WRITE, Op.DEACTIVATE):
        assert not ok(r, op, {PIN1, PIN2, ADM1})


def test_sm_alternative_does_not_hide_a_pin_alternative() -> None:
    r = parse_expanded(bytes.fromhex("800101A007B400A403830101"))
    assert ok(r, Op.READ, {PIN1})


def test_sc_byte_do_and_am_byte_b8() -> None:
    # 9E carries a compact SC byte; AM b8 = 1 leaves only b3-b1 meaningful.
    r = parse_expanded(bytes.fromhex("80017F9E0100" + "80018F9E0111"))
    assert ok(r, Op.DELETE, set())  # from the first rule
    assert ok(r, Op.READ, set())  # either rule grants READ
    r2 = parse_expanded(bytes.fromhex("8001F19E0111"))
    assert ok(r2, Op.READ, {0x01}) and not ok(r2, Op.READ, set())
    assert not ok(r2, Op.ACTIVATE, {0x01})  # b5 of a b8 = 1 AM byte is proprietary


def test_command_specific_am_do() -> None:
    # AM DO 84 (INS) for INCREASE, and 8C (CLA+INS) for an UPDATE BINARY
    r = parse_expanded(bytes.fromhex("800102A40683010A950108840132A4068301019501088C0200D69000"))
    assert r.alternatives(Op.UPDATE, INS_INCREASE) == (frozenset({PIN1}),)
    assert ok(r, Op.UPDATE, {PIN1}, INS_INCREASE) and not ok(r, Op.UPDATE, {ADM1}, INS_INCREASE)
    assert ok(r, Op.UPDATE, set(), 0xD6)  # the INS rule wins over the AM byte rule
    assert not ok(r, Op.UPDATE, {PIN1}, 0xDC)  # no INS rule: AM byte rule (ADM1)


def test_compact_format() -> None:
    # MF of a commercial UICC: 8C 04 26 1A 00 00 -- AM 26 is TERMINATE (b6),
    # CREATE DF (b3), CREATE EF (b2); SC 1A = user authentication in SE 10 (ADM1).
    r = parse_compact(bytes.fromhex("261A0000"))
    assert r.alternatives(Op.TERMINATE) == (frozenset({ADM1}),)
    assert r.alternatives(Op.CREATE_DF) == ALWAYS == r.alternatives(Op.CREATE_EF)
    assert r.alternatives(Op.DELETE_CHILD) == NEVER
    # SC bytes: FF never; b8 = 1 with SM also required -> never; b8 = 0 -> the PIN suffices
    r = parse_compact(bytes.fromhex("03FF" + "00"))
    assert r.alternatives(Op.UPDATE) == NEVER and r.alternatives(Op.READ) == ALWAYS
    assert parse_compact(bytes.fromhex("01D1")).alternatives(Op.READ) == NEVER
    assert parse_compact(bytes.fromhex("0151")).alternatives(Op.READ) == (frozenset({1}),)
    assert parse_compact(bytes.fromhex("0191")).alternatives(Op.READ) == (frozenset({1}),)
    assert parse_compact(bytes.fromhex("0140")).alternatives(Op.READ) == NEVER
    with pytest.raises(ValueError):
        parse_compact(bytes.fromhex("0300"))
    assert compact(read=0x00, update=0x1A) == Compact(0x03, (0x1A, 0x00))


def test_encode_rules_groups_ops_like_annex_g() -> None:
    enc = encode_rules(read=ALW, update=PIN1, activate=ADM1, deactivate=ADM1, increase=PIN1)
    assert enc == bytes.fromhex(
        "8001019000800102A406830101950108800118A40683010A950108840132A406830101950108"
    )
    assert rules(read=NEV) == Expanded(bytes.fromhex("8001019700"))
    with pytest.raises(TypeError):
        encode_rules(erase=ALW)


def test_sc_do_encodings() -> None:
    assert sc_do(ALW) == b"\x90\x00" and sc_do(NEV) == b"\x97\x00"
    assert sc_do(PIN2) == bytes.fromhex("A406830181950108")
    assert sc_do(any_of(PIN1, UNIVERSAL_PIN)) == bytes.fromhex(
        "A010A406830101950108A406830111950108"
    )
    assert sc_do(all_of(PIN1, ADM1)) == bytes.fromhex("AF10A406830101950108A40683010A950108")


def test_condition_algebra() -> None:
    assert (key(1) | ALW) == ALW
    assert (key(1) & NEV) == NEV
    assert (key(1) & key(2)).alternatives == (frozenset({1, 2}),)
    assert any_of(1, 1).alternatives == (frozenset({1}),)
    assert all_of().alternatives == ALWAYS
    with pytest.raises(TypeError):
        as_condition("PIN1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        key(256)


def test_static_environment() -> None:
    env = StaticEnvironment(frozenset({PIN1}), se=1, disabled=frozenset({PIN2}))
    assert env.is_verified(PIN1) and not env.is_verified(PIN2)
    assert env.pin_enabled(PIN1) and not env.pin_enabled(PIN2)


# -- Property: what encode_rules writes, parse_expanded reads back ------------------

refs = st.sampled_from([0x01, 0x02, 0x11, 0x81, 0x0A, 0x0B])
conditions = st.recursive(
    st.one_of(st.just(ALW), st.just(NEV), refs.map(key)),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: any_of(*cs)),
        st.lists(inner, min_size=1, max_size=3).map(lambda cs: all_of(*cs)),
    ),
    max_leaves=6,
)
OPS = ["read", "update", "write", "deactivate", "activate", "terminate", "delete"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(OPS + ["increase"]), conditions, min_size=1))
def test_encode_parse_round_trip(spec: dict[str, Condition]) -> None:
    r = parse_expanded(encode_rules(**spec))
    bits = {"read": 1, "update": 2, "write": 4, "deactivate": 8, "activate": 16}
    bits |= {"terminate": 32, "delete": 64}
    for name, cond in spec.items():
        got = (
            r.by_ins.get(INS_INCREASE, NEVER) if name == "increase" else r.alternatives(bits[name])
        )
        assert frozenset(got) == frozenset(cond.alternatives), name


@settings(max_examples=300, deadline=None)
@given(conditions, st.sets(refs))
def test_evaluation_matches_the_condition(cond: Condition, verified: set[int]) -> None:
    r = parse_expanded(encode_rules(read=cond))
    expected = any(alt <= verified for alt in cond.alternatives)
    assert ok(r, Op.READ, verified) == expected
