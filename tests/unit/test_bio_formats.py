"""External minutiae formats: ISO/IEC 19794-2:2005, ANSI/INCITS 378-2004, NIST .xyt."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from applets.biometric.iso19794 import Minutia
from host.bio import formats
from host.bio.formats import FormatError

minutia = st.builds(
    Minutia,
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 2),
    st.integers(0, 63),
)
# Sets that already sit inside the card's range and under its size limit come back as sent.
sets = st.lists(minutia, min_size=1, max_size=60)


@settings(max_examples=80, deadline=None)
@given(sets)
def test_iso_round_trip(ms: list[Minutia]) -> None:
    assert formats.parse_iso19794_2(formats.encode_iso19794_2(ms)) == tuple(ms)


@settings(max_examples=80, deadline=None)
@given(sets)
def test_ansi_round_trip_up_to_its_2_degree_angles(ms: list[Minutia]) -> None:
    back = formats.parse_ansi378(formats.encode_ansi378(ms))
    assert [(m.x, m.y, m.kind) for m in back] == [(m.x, m.y, m.kind) for m in ms]
    for a, b in zip(back, ms, strict=True):
        assert min((a.angle - b.angle) % 64, (b.angle - a.angle) % 64) <= 1


@settings(max_examples=80, deadline=None)
@given(sets)
def test_xyt_round_trip_at_254_dpi(ms: list[Minutia]) -> None:
    # 254 dpi is 10 pixels a millimetre: one pixel per card unit, so positions are exact.
    text = formats.encode_xyt(ms, dpi=254.0, height_px=255)
    back = formats.parse_xyt(text, dpi=254.0, height_px=255)
    assert [(m.x, m.y, m.angle) for m in back] == [(m.x, m.y, m.angle) for m in ms]
    assert all(m.kind == 0 for m in back)  # xyt carries no type


def test_parse_file_tells_formats_apart() -> None:
    ms = [Minutia(10, 20, 1, 5), Minutia(100, 120, 2, 40)]
    assert formats.parse_file("a.ist", formats.encode_iso19794_2(ms)) == tuple(ms)
    assert formats.parse_file("a.bin", formats.encode_ansi378(ms))[0].x == 10
    assert formats.parse_file("a.xyt", formats.encode_xyt(ms, 254.0, 255).encode(), 60)


def test_large_sets_are_pruned_and_shifted_into_the_card() -> None:
    pts = [(30.0 + i * 0.1, 40.0, 0.0, 1) for i in range(100)]  # beyond 25.5 mm, 100 of them
    out = formats.to_card(pts, max_minutiae=60)
    assert len(out) == 60 and all(0 <= m.x <= 255 and 0 <= m.y <= 255 for m in out)
    with pytest.raises(FormatError, match="span"):
        formats.to_card([(0.0, 0.0, 0.0, 1), (30.0, 0.0, 0.0, 1)])


GOOD = formats.encode_iso19794_2([Minutia(10, 20, 1, 5)])


@pytest.mark.parametrize(
    "data,why",
    [
        (b"", "not a finger"),
        (b"XMR\x00" + GOOD[4:], "not a finger"),
        (GOOD[:-1], "record length"),
        (GOOD + b"\x00", "record length"),
        (GOOD[:8] + (1000).to_bytes(4, "big") + GOOD[12:], "record length"),
        (GOOD[:22] + b"\x00" + GOOD[23:], "finger views"),
        (GOOD[:18] + b"\x00\x00" + GOOD[20:], "zero resolution"),
        (GOOD[:27] + b"\x05" + GOOD[28:], "run past"),  # 5 minutiae claimed, 1 present
        (GOOD[:28] + bytes((0xC0 | GOOD[28],)) + GOOD[29:], "reserved"),
        (GOOD[:-2] + b"\x00\x09", "extended data"),
    ],
)
def test_iso_refusals(data: bytes, why: str) -> None:
    with pytest.raises(FormatError, match=why):
        formats.parse_iso19794_2(data)


def test_ansi_refuses_angles_beyond_179() -> None:
    good = bytearray(formats.encode_ansi378([Minutia(10, 20, 1, 5)]))
    good[26 + 4 + 4] = 180
    with pytest.raises(FormatError, match="angle"):
        formats.parse_ansi378(bytes(good))


def test_oversized_inputs_are_refused_before_work() -> None:
    with pytest.raises(FormatError, match="larger"):
        formats.parse_iso19794_2(b"\x00" * (formats.MAX_RECORD + 1))
    with pytest.raises(FormatError, match="lines"):
        formats.parse_xyt("1 1 1\n" * (formats.XYT_MAX_LINES + 1))


@pytest.mark.parametrize("text", ["1 2", "1 2 3 4 5", "a b c", "1 2 360", "-1 2 3"])
def test_xyt_refusals(text: str) -> None:
    with pytest.raises(FormatError):
        formats.parse_xyt(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_format_error(data: bytes) -> None:
    for parse in (formats.parse_iso19794_2, formats.parse_ansi378):
        try:
            parse(data)
        except FormatError:
            pass
    try:
        formats.parse_file("x.xyt", data)
    except FormatError:
        pass
