"""ATR: real ATRs, structure round-trips, the builder, historical bytes, errors with offsets."""

from __future__ import annotations

from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.atr import (
    DI_TABLE,
    FI_TABLE,
    Atr,
    AtrError,
    CardCapabilities,
    Edc,
    HistoricalBytes,
    InterfaceBytes,
    SpecificMode,
    build_atr,
    build_compact_tlv,
    build_historical,
    parse_compact_tlv,
)

H = bytes.fromhex
SETTINGS = settings(max_examples=300, deadline=None)

# Real ATRs, from pcsc-tools' smartcard_list.txt (Ludovic Rousseau, 2023 edition).
USIM_ORANGE = H("3B 9F 96 80 1F C7 80 31 E0 73 FE 21 1B 63 E2 03 94 83 0F 90 00 BD")
USIM_H3G = H("3B 9F 96 80 1F C7 80 31 E0 73 FE 21 1B 63 00 57 00 83 81 90 00 11")
MIFARE_PCSC = H("3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A")
MULTIFLEX = H("3B 02 14 50")
EGK_G2 = H("3B D0 96 FF 81 B1 FE 45 1F C7 EA")  # German health card, T=1 only
NPA = H("3B 88 80 01 00 00 00 00 00 00 00 00 09")  # German eID, contactless

# A UICC ATR as it was once written down by hand: its last byte 31 is not the TCK
# (the XOR of T0..TCK must be 00); the right TCK is 93.
UICC_BAD_TCK = H("3B 9F 96 80 1F C7 80 31 E0 73 FE 21 1B 63 3A 20 4E 83 00 90 00 31")
UICC = UICC_BAD_TCK[:-1] + b"\x93"


def xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


# -- real ATRs ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [USIM_ORANGE, USIM_H3G, MIFARE_PCSC, MULTIFLEX, EGK_G2, NPA, UICC])
def test_real_atrs_round_trip(raw: bytes) -> None:
    atr = Atr.from_bytes(raw)
    assert atr.to_bytes() == raw
    assert bytes(atr) == raw
    assert str(atr) == raw.hex(" ").upper()
    if atr.tck_present:
        assert xor(raw[1:]) == 0
        assert atr.tck == raw[-1]


def test_uicc_bad_tck_from_brief() -> None:
    with pytest.raises(AtrError) as e:
        Atr.from_bytes(UICC_BAD_TCK)
    assert e.value.offset == 21
    assert "31" in e.value.message and "93" in e.value.message


def test_uicc() -> None:
    atr = Atr.from_bytes(UICC)
    assert atr.ts == 0x3B and not atr.inverse
    assert atr.t0 == 0x9F
    assert atr.interface == (
        InterfaceBytes(ta=0x96, td=0x80),
        InterfaceBytes(td=0x1F),
        InterfaceBytes(ta=0xC7),
    )
    # T=15 is indicated (so TCK is present) but is not a protocol.
    assert atr.protocols == {0}
    assert atr.default_protocol == 0
    assert atr.tck_present and atr.tck == 0x93
    assert (atr.ta1, atr.fi, atr.di, atr.f_max) == (0x96, 512, 32, 5)
    assert atr.class_indicator == 0xC7
    assert atr.extra_guard_time == 0
    assert atr.specific_mode is None
    assert len(atr.historical) == 15
    info = atr.historical_info
    assert info.category == 0x80
    assert [t for t, _ in info.objects] == [3, 7, 6, 8]
    assert info.get(3) == b"\xe0"
    assert info.status_indicator == H("009000")
    caps = atr.card_capabilities
    assert caps == CardCapabilities(
        selection_methods=0xFE,
        data_coding=0x21,
        chaining=False,
        extended_length=False,
        extended_length_info=False,
        channel_assignment_by_card=True,
        channel_assignment_by_ifd=True,
        max_channels=4,
    )
    assert atr.extended_length is False
    assert info.to_bytes() == atr.historical


def test_pcsc_contactless_storage_card() -> None:
    atr = Atr.from_bytes(MIFARE_PCSC)
    assert atr.protocols == {0, 1}
    assert atr.default_protocol == 0
    assert atr.tck == 0x6A
    assert atr.interface == (InterfaceBytes(td=0x80), InterfaceBytes(td=0x01), InterfaceBytes())
    assert atr.historical == H("80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00")
    # PC/SC part 3 writes 4F 0C as a BER tag and length, which is not COMPACT-TLV
    # (tag 4 would announce 15 bytes): the historical bytes do not decode.
    with pytest.raises(AtrError) as e:
        _ = atr.historical_info
    assert e.value.offset == 1
    assert atr.card_capabilities is None
    assert atr.extended_length is False
    assert (atr.ifsc, atr.bwi, atr.cwi, atr.t1_edc) == (32, 4, 13, Edc.LRC)


def test_t0_only_without_interface_bytes() -> None:
    atr = Atr.from_bytes(MULTIFLEX)
    assert atr.interface == (InterfaceBytes(),)
    assert atr.protocols == {0}
    assert atr.tck is None and not atr.tck_present
    assert atr.historical == H("1450")
    assert (atr.fi, atr.di, atr.f_max, atr.wi) == (372, 1, 5, 10)
    assert atr.historical_info == HistoricalBytes(0x14, (), b"\x50")
    assert atr.extended_length is False


def test_t1_card_parameters() -> None:
    atr = Atr.from_bytes(EGK_G2)
    assert atr.protocols == {1}
    assert atr.default_protocol == 1
    assert (atr.fi, atr.di) == (512, 32)
    assert atr.extra_guard_time == 255
    assert atr.ifsc == 254
    assert (atr.bwi, atr.cwi) == (4, 5)
    assert atr.t1_edc is Edc.LRC
    assert atr.class_indicator == 0xC7
    assert atr.historical == b""
    assert atr.historical_info.category is None
    assert list(atr.groups_for(1)) == [InterfaceBytes(ta=0xFE, tb=0x45, td=0x1F)]


def test_ta2_after_td1_is_not_ifsc() -> None:
    # TD1 announces T=1, so group 2 follows it, but i = 2 is not > 2: TA2 is the
    # specific mode byte, and IFSC stays at its default.
    atr = Atr.from_levels([(None, None, None, 1), (0x81, None, None, None)])
    assert atr.to_bytes()[:4] == H("3B 80 11 81")
    assert atr.ifsc == 32
    assert atr.specific_mode == SpecificMode(protocol=1, changeable=False, implicit=False)
    assert Atr.from_levels([(None, None, None, 0), (0x10, None, None, None)]).specific_mode == (
        SpecificMode(protocol=0, changeable=True, implicit=True)
    )


def test_t1_crc_and_first_group_wins() -> None:
    atr = Atr.from_levels(
        [
            (None, None, None, 0),
            (None, None, None, 1),
            (0x80, 0x25, 0x01, 1),
            (0x20, 0x99, 0x00, None),
        ]
    )
    assert (atr.ifsc, atr.bwi, atr.cwi, atr.t1_edc) == (0x80, 2, 5, Edc.CRC)
    assert Atr.from_bytes(atr.to_bytes()) == atr


def test_inverse_convention_and_tc2() -> None:
    atr = Atr.from_bytes(H("3F 82 40 14 14 50"))
    assert atr.inverse
    assert atr.wi == 20
    assert atr.protocols == {0}
    assert not atr.tck_present  # TD1 indicates T=0 only


def test_rfu_ta1() -> None:
    atr = Atr.from_levels([(0x70, None, None, None)])
    assert (atr.fi, atr.f_max, atr.di) == (None, None, None)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "offset", "what"),
    [
        ("", 0, "TS"),
        ("3C 00", 0, "TS"),
        ("3B", 1, "T0"),
        ("3B 10", 2, "TA1"),
        ("3B 90 11", 3, "TD1"),
        ("3B 80 81", 3, "TD2"),
        ("3B 80 F1 01 02", 5, "TC2"),
        ("3B 02 14", 2, "historical"),
        ("3B 80 01", 3, "TCK"),
        ("3B 80 01 00", 3, "TCK"),
        ("3B 02 14 50 00", 4, "unexpected"),
        ("3B 80 01 81 01", 4, "unexpected"),
    ],
)
def test_malformed_atr(raw: str, offset: int, what: str) -> None:
    with pytest.raises(AtrError) as e:
        Atr.from_bytes(H(raw))
    assert e.value.offset == offset
    assert what in str(e.value)
    assert isinstance(e.value, ValueError)


def test_atr_validates_structure() -> None:
    with pytest.raises(ValueError, match="TS"):
        Atr(0x3C)
    with pytest.raises(ValueError, match="TD1"):
        Atr(0x3B, (InterfaceBytes(td=0x01),))
    with pytest.raises(ValueError, match="TD1=11"):
        Atr(0x3B, (InterfaceBytes(td=0x11), InterfaceBytes()))
    with pytest.raises(ValueError, match="TD1 absent"):
        Atr(0x3B, (InterfaceBytes(), InterfaceBytes()))
    with pytest.raises(ValueError, match="historical"):
        Atr(0x3B, historical=bytes(16))
    with pytest.raises(ValueError, match="not a byte"):
        Atr(0x3B, (InterfaceBytes(ta=256),))
    with pytest.raises(ValueError):
        Atr.from_levels([(None, None, None, None), (1, None, None, None)])


# -- structure round-trips -----------------------------------------------------------------------

_byte = st.none() | st.integers(0, 0xFF)
_level = st.tuples(_byte, _byte, _byte, st.integers(0, 15))


@st.composite
def atr_structures(draw: st.DrawFn) -> tuple[list[tuple], bytes, int]:
    levels = draw(st.lists(_level, min_size=1, max_size=6))
    last = levels[-1]
    levels[-1] = (*last[:3], draw(st.none() | st.integers(0, 15)))
    return levels, draw(st.binary(max_size=15)), draw(st.sampled_from((0x3B, 0x3F)))


@SETTINGS
@given(atr_structures())
def test_structure_round_trip(structure: tuple[list[tuple], bytes, int]) -> None:
    levels, historical, ts = structure
    atr = Atr.from_levels(levels, historical, ts)
    raw = atr.to_bytes()
    assert Atr.from_bytes(raw) == atr
    assert Atr.from_bytes(raw).to_bytes() == raw
    assert raw[0] == ts and raw[1] & 0x0F == len(historical)
    for group, (ta, tb, tc, t) in zip(atr.interface, levels, strict=False):
        assert group[:3] == (ta, tb, tc)
        assert (group.td is None) == (t is None)
        if t is not None:
            assert group.td & 0x0F == t
    indicated = {t for *_, t in levels if t is not None}
    assert atr.tck_present == bool(indicated - {0})
    n_interface = sum(v is not None for g in atr.interface for v in g)
    assert len(raw) == 2 + n_interface + len(historical) + atr.tck_present
    if atr.tck_present:
        assert xor(raw[1:]) == 0
    assert atr.protocols == ((indicated - {15}) or {0})


@SETTINGS
@given(atr_structures(), st.data())
def test_every_truncation_and_extension_fails(structure: tuple, data: st.DataObject) -> None:
    raw = Atr.from_levels(*structure).to_bytes()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(AtrError) as e:
        Atr.from_bytes(raw[:cut])
    assert e.value.offset <= cut
    with pytest.raises(AtrError) as e:
        Atr.from_bytes(raw + data.draw(st.binary(min_size=1, max_size=2)))
    assert e.value.offset == len(raw)


@SETTINGS
@given(atr_structures(), st.integers(1, 0xFF))
def test_bad_tck_is_caught(structure: tuple, flip: int) -> None:
    atr = Atr.from_levels(*structure)
    if not atr.tck_present:
        return
    raw = bytearray(atr.to_bytes())
    raw[-1] ^= flip
    with pytest.raises(AtrError) as e:
        Atr.from_bytes(bytes(raw))
    assert e.value.offset == len(raw) - 1
    assert "TCK" in e.value.message


# -- the builder ---------------------------------------------------------------------------------

_FI = sorted({f for f in FI_TABLE if f is not None})
_DI = sorted({d for d in DI_TABLE if d is not None})


def test_build_atr_default() -> None:
    atr = build_atr()
    raw = atr.to_bytes()
    # TD1 T=0, TD2 T=1 announcing TA3 = IFSC FE; historical: card capabilities.
    assert raw == H("3B 85 80 11 FE 80 73 F6 21 DB 15")
    assert atr.protocols == {0, 1}
    assert atr.ifsc == 254
    assert atr.extended_length is True
    assert atr.card_capabilities.max_channels == 4


def test_build_atr_t1_only_repeats_td_for_t1_bytes() -> None:
    raw = build_atr((1,), bwi=4, cwi=5, historical=b"").to_bytes()
    assert raw == H("3B 80 81 31 FE 45") + bytes((xor(H("80 81 31 FE 45")),))
    assert build_atr((1,), ifsc=32, historical=b"").to_bytes() == H("3B 80 01 81")


def test_build_atr_t0_only_has_no_td_and_no_tck() -> None:
    atr = build_atr((0,), historical=H("1450"))
    assert atr.to_bytes() == MULTIFLEX
    assert build_atr((0,), wi=20, historical=H("1450"), inverse=True).to_bytes() == (
        H("3F 82 40 14 14 50")
    )


def test_build_atr_like_a_uicc() -> None:
    hist = UICC[6:21]
    atr = build_atr((0,), fi=512, di=32, class_indicator=0xC7, historical=hist)
    assert atr.to_bytes() == UICC


def test_build_atr_ta1_and_ta2() -> None:
    atr = build_atr((1,), ta1=0x18, ta2=0x81, extra_guard_time=2, historical=b"")
    assert (atr.ta1, atr.fi, atr.di, atr.extra_guard_time) == (0x18, 372, 12, 2)
    assert atr.specific_mode == SpecificMode(1, False, False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocols": ()},
        {"protocols": (15,)},
        {"protocols": (0,), "ifsc": 254},
        {"protocols": (0,), "crc": True},
        {"protocols": (1,), "wi": 20},
        {"wi": 0},
        {"ifsc": 0},
        {"ifsc": 255},
        {"bwi": 10},
        {"cwi": 16},
        {"fi": 373},
        {"di": 3},
        {"ta1": 0x100},
        {"historical": b"", "extended_length": True},
        {"historical": b"", "max_channels": 2},
        {"max_channels": 9},
        {"historical": bytes(16)},
        {"protocols": range(15), "historical": bytes(15)},  # over 33 bytes
    ],
)
def test_build_atr_rejects(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        build_atr(**kwargs)


@SETTINGS
@given(
    protocols=st.sets(st.sampled_from((0, 1, 2, 14)), min_size=1),
    fi=st.sampled_from(_FI),
    di=st.sampled_from(_DI),
    ifsc=st.integers(1, 254),
    bwi=st.integers(0, 9),
    cwi=st.integers(0, 15),
    crc=st.booleans(),
    egt=st.integers(0, 255),
    class_indicator=st.none() | st.integers(0, 0xFF),
    extended_length=st.booleans(),
    max_channels=st.integers(1, 8),
    inverse=st.booleans(),
)
def test_build_atr_says_what_it_was_asked(
    protocols: set[int],
    fi: int,
    di: int,
    ifsc: int,
    bwi: int,
    cwi: int,
    crc: bool,
    egt: int,
    class_indicator: int | None,
    extended_length: bool,
    max_channels: int,
    inverse: bool,
) -> None:
    t1 = {"ifsc": ifsc, "bwi": bwi, "cwi": cwi, "crc": crc} if 1 in protocols else {}
    atr = build_atr(
        protocols,
        fi=fi,
        di=di,
        extra_guard_time=egt,
        class_indicator=class_indicator,
        extended_length=extended_length,
        max_channels=max_channels,
        inverse=inverse,
        **t1,
    )
    raw = atr.to_bytes()
    assert len(raw) <= 33
    parsed = Atr.from_bytes(raw)
    assert parsed == atr
    assert parsed.protocols == protocols
    assert parsed.default_protocol == min(protocols)
    assert (parsed.fi, parsed.di) == (fi, di)
    assert parsed.extra_guard_time == egt
    assert parsed.class_indicator == class_indicator
    assert parsed.inverse == inverse
    assert parsed.extended_length == extended_length
    assert parsed.card_capabilities.max_channels == max_channels
    assert parsed.tck_present == (protocols != {0} or class_indicator is not None)
    if 1 in protocols:
        assert (parsed.ifsc, parsed.bwi, parsed.cwi) == (ifsc, bwi, cwi)
        assert parsed.t1_edc is (Edc.CRC if crc else Edc.LRC)
    # Announced in ascending order of T, T=15 last.
    tds = [g.td & 0x0F for g in parsed.interface if g.td is not None]
    assert tds == sorted(tds)


# -- historical bytes (ISO 7816-4 §8.1.1) ----------------------------------------------------------


def test_build_historical_with_capabilities() -> None:
    caps = CardCapabilities(extended_length=True, max_channels=8)
    hist = build_historical(capabilities=caps)
    assert hist == H("80 73 F6 21 DF")
    info = HistoricalBytes.from_bytes(hist)
    assert info.card_capabilities == caps
    assert info.status_indicator is None
    hist = build_historical([(0x3, b"\xe0")], capabilities=caps, status=H("009000"))
    assert hist == H("80 31E0 73F621DF 83009000")
    assert HistoricalBytes.from_bytes(hist).status_indicator == H("009000")


def test_third_table_bits() -> None:
    assert CardCapabilities.from_bytes(H("0000 40")).extended_length is True
    assert CardCapabilities.from_bytes(H("0000 BF")).extended_length is False
    c = CardCapabilities.from_bytes(H("00 00 1B"))
    assert (c.channel_assignment_by_card, c.channel_assignment_by_ifd, c.max_channels) == (
        True,
        True,
        4,
    )
    c = CardCapabilities.from_bytes(H("00 00 A7"))
    assert (c.chaining, c.extended_length_info, c.max_channels) == (True, True, 8)
    assert not (c.channel_assignment_by_card or c.channel_assignment_by_ifd)
    # One or two bytes: nothing announced in the missing tables.
    short = CardCapabilities.from_bytes(H("F6"))
    assert (short.selection_methods, short.data_coding, short.extended_length) == (0xF6, 0, False)
    assert short.max_channels == 1
    for bad in (b"", bytes(4)):
        with pytest.raises(AtrError):
            CardCapabilities.from_bytes(bad)
    with pytest.raises(ValueError):
        CardCapabilities(max_channels=0)


def test_extended_length_follows_the_capabilities() -> None:
    assert build_atr(extended_length=False).extended_length is False
    hist = build_historical([(7, b"\xf6")])
    assert Atr.from_levels([(None, None, None, None)], hist).extended_length is False
    hist = build_historical([(7, H("F62140"))])
    assert Atr.from_levels([(None, None, None, None)], hist).extended_length is True


def test_category_00_has_a_status_trailer() -> None:
    info = HistoricalBytes.from_bytes(H("00 31E0 009000"))
    assert info.category == 0x00
    assert info.objects == ((3, b"\xe0"),)
    assert info.status_indicator == H("009000")
    assert info.to_bytes() == H("00 31E0 009000")
    with pytest.raises(AtrError):
        HistoricalBytes.from_bytes(H("00 9000"))


def test_category_10_and_proprietary() -> None:
    assert HistoricalBytes.from_bytes(H("10 05")) == HistoricalBytes(0x10, (), b"\x05")
    assert HistoricalBytes.from_bytes(H("4A434F50")).rest == H("434F50")


def test_compact_tlv_errors() -> None:
    with pytest.raises(AtrError) as e:
        parse_compact_tlv(H("31E0 7301"))
    assert e.value.offset == 2
    with pytest.raises(AtrError) as e:
        parse_compact_tlv(H("7301"), offset=5)
    assert e.value.offset == 5
    with pytest.raises(ValueError):
        build_compact_tlv([(16, b"")])
    with pytest.raises(ValueError):
        build_compact_tlv([(1, bytes(16))])
    with pytest.raises(ValueError):
        build_historical([(5, bytes(15))])
    with pytest.raises(ValueError):
        build_historical(status=b"")


@SETTINGS
@given(
    st.integers(0, 0xFF),
    st.integers(0, 0xFF),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(1, 8),
)
def test_card_capabilities_round_trip(
    sel: int, coding: int, a: bool, b: bool, c: bool, d: bool, e: bool, channels: int
) -> None:
    caps = CardCapabilities(sel, coding, a, b, c, d, e, channels)
    raw = caps.to_bytes()
    assert len(raw) == 3 and raw[:2] == bytes((sel, coding))
    assert raw[2] & 0x40 == (0x40 if b else 0)
    assert CardCapabilities.from_bytes(raw) == caps


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 15), st.binary(max_size=4)), max_size=4).filter(
        lambda objs: sum(1 + len(v) for _, v in objs) <= 14
    )
)
def test_compact_tlv_historical_round_trip(objects: list[tuple[int, bytes]]) -> None:
    hist = build_historical(objects)
    info = HistoricalBytes.from_bytes(hist)
    assert info.category == 0x80
    assert list(info.objects) == objects
    assert info.to_bytes() == hist
    assert parse_compact_tlv(build_compact_tlv(objects)) == objects
