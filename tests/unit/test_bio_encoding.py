"""ISO/IEC 19794-2 compact-card minutiae, the 7816-11 data object 7F2E, and the BIT group 7F61."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from applets.biometric import bit
from applets.biometric.iso19794 import (
    MalformedBiometricData,
    Minutia,
    MinutiaOutOfRange,
    MinutiaType,
    build_biometric_data,
    check_minutiae,
    decode_minutiae,
    encode_minutiae,
    parse_biometric_data,
)
from card import tlv

minutiae_st = st.lists(
    st.builds(
        Minutia,
        st.integers(0, 255),
        st.integers(0, 255),
        st.sampled_from([0, 1, 2]),
        st.integers(0, 63),
    ),
    max_size=120,
)


def test_compact_card_layout_is_three_bytes_type_in_the_top_bits() -> None:
    m = Minutia(x=100, y=7, kind=MinutiaType.BIFURCATION, angle=0x2A)
    assert m.to_bytes() == bytes((100, 7, 0x80 | 0x2A))
    assert Minutia(1, 2, MinutiaType.RIDGE_ENDING, 63).to_bytes() == bytes((1, 2, 0x7F))
    assert m.x_mm == pytest.approx(10.0) and m.y_mm == pytest.approx(0.7)
    assert m.angle_deg == pytest.approx(42 * 5.625)


@settings(max_examples=200, deadline=None)
@given(minutiae_st)
def test_minutiae_round_trip(ms: list[Minutia]) -> None:
    raw = encode_minutiae(ms)
    assert len(raw) == 3 * len(ms)
    assert decode_minutiae(raw) == tuple(ms)
    assert check_minutiae(raw) == len(ms)
    assert parse_biometric_data(build_biometric_data(ms)) == raw
    assert parse_biometric_data(build_biometric_data(raw)) == raw


def test_data_object_bytes() -> None:
    raw = bytes.fromhex("0A0B41FFFF80")
    assert build_biometric_data(raw) == bytes.fromhex("7F2E088106") + raw
    # a long template takes a long-form length
    long = bytes(3 * 60)
    assert build_biometric_data(long)[:7] == bytes.fromhex("7F2E81B78181B4")


@pytest.mark.parametrize(
    "hexdata",
    [
        "",  # nothing
        "7F2E",  # truncated
        "7F2E068103010203",  # 7F2E's length runs past the data
        "5F2E0481020102",  # another tag
        "7F2E0582030102",  # 82, not 81
        "7F2E0481020102",  # 81 of two bytes: not a whole minutia
        "7F2E0A810301020381030405",  # two 81 objects
        "7F2E05810301020300",  # a trailing byte
        "7F2E0781030102039000",  # an extra object inside
    ],
)
def test_malformed_data_objects(hexdata: str) -> None:
    with pytest.raises(MalformedBiometricData):
        parse_biometric_data(bytes.fromhex(hexdata))


def test_reserved_type_is_out_of_range() -> None:
    with pytest.raises(MinutiaOutOfRange):
        check_minutiae(bytes((1, 2, 0xC0)))
    with pytest.raises(MinutiaOutOfRange):
        decode_minutiae(bytes((1, 2, 0xFF)))
    with pytest.raises(MinutiaOutOfRange):
        Minutia(256, 0, 1, 0)
    with pytest.raises(MinutiaOutOfRange):
        Minutia(0, 0, 1, 64)
    with pytest.raises(MalformedBiometricData):
        decode_minutiae(b"\x01\x02")


bit_st = st.builds(
    bit.BiometricInfo,
    reference=st.integers(0x81, 0x9F),
    subtype=st.integers(0, 0x1F),
    min_minutiae=st.integers(0, 30),
    max_minutiae=st.integers(30, 255),
    order=st.integers(0, 0x1F),
    feature_handling=st.one_of(st.none(), st.integers(0, 255)),
    format_type=st.integers(0, 0xFFFF),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(bit_st, max_size=4))
def test_bit_group_round_trip(infos: list[bit.BiometricInfo]) -> None:
    data = bit.build_group(infos)
    assert data[:2] == b"\x7f\x61"
    assert bit.parse_group(data) == tuple(infos)


def test_bit_bytes_follow_minex_layout() -> None:
    info = bit.BiometricInfo(0x96, bit.finger_subtype(bit.RIGHT, bit.INDEX), 12, 60)
    assert info.to_bytes().hex().upper() == (
        "7F601F830196A11A8101088201098702010188020006B10A81020C3C820100830100"
    )
    assert bit.describe_subtype(info.subtype) == "right index"
    assert bit.describe_subtype(0) == "unspecified"


def test_bit_parser_accepts_b1_beside_the_bht_and_ignores_unknown_objects() -> None:
    bht = [(0x82, b"\x12"), (0x87, b"\x01\x01"), (0x88, b"\x00\x06"), (0x9F01, b"\x00")]
    params = [(0x81, bytes((10, 40))), (0x82, b"\x00")]
    data = tlv.build(0x7F60, [(0x83, b"\x97"), (0xA1, bht), (0xB1, params)])
    info = bit.BiometricInfo.from_tlv(tlv.Tlv.from_bytes(data))
    assert (info.reference, info.subtype, info.min_minutiae, info.max_minutiae) == (
        0x97,
        0x12,
        10,
        40,
    )
    assert info.feature_handling is None
    assert info.biometric_type == bit.BIOMETRIC_TYPE_FINGERPRINT  # the default when 81 is absent
    assert bit.describe_subtype(info.subtype) == "left ring"


@pytest.mark.parametrize(
    "hexdata",
    [
        "7F6003020101",  # announces one BIT, holds none
        "7F600302010100",  # not a group
        "7F61057F600283",  # a truncated BIT
        "7F610C0201017F6006830196A100",  # a BHT without format owner/type
        "7F610A0201017F600483029600",  # a two-byte qualifier, no BHT
    ],
)
def test_bad_bit_groups(hexdata: str) -> None:
    with pytest.raises(bit.BitError):
        bit.parse_group(bytes.fromhex(hexdata))


def test_bit_value_checks() -> None:
    with pytest.raises(ValueError):
        bit.BiometricInfo(0x96, min_minutiae=40, max_minutiae=20)
    with pytest.raises(ValueError):
        bit.finger_subtype(3, bit.INDEX)


def test_spec_module_reads_the_applet_commands() -> None:
    from apdu_specs import decode_command, iso7816_11
    from applets.biometric.applet import BIO_AID

    assert iso7816_11.MATCH_ON_CARD.aids == (BIO_AID,)
    bdo = build_biometric_data([Minutia(10, 20, 1, 16)] * 12)
    raw = bytes((0, 0x20, 0, 0x96, len(bdo))) + bdo
    d = decode_command(raw, context=BIO_AID)
    assert d.summary == "VERIFY reference 96, 12 minutiae"
    assert not d.issues
    generic = decode_command(raw)  # without the applet: ISO 7816-4's VERIFY
    assert generic.name == "VERIFY" and "minutiae" not in generic.summary
    assert (
        iso7816_11.read_minutiae(bytes((100, 5, 0x90)))
        == "1 minutia: (10 mm, 0.5 mm, bifurcation, 90 deg)"
    )
