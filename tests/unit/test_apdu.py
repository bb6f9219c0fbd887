"""Command/response APDUs: ISO 7816-3 §12.1 case detection and round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card.apdu import (
    ApduFormatError,
    CommandApdu,
    ResponseApdu,
    cla_chained,
    cla_channel,
    cla_secure_messaging,
    cla_with_channel,
)

byte = st.integers(0, 255)


@st.composite
def commands(draw: st.DrawFn) -> CommandApdu:
    extended = draw(st.booleans())
    max_nc = 65535 if extended else 255
    data = draw(st.binary(max_size=min(max_nc, 600)) | st.just(b""))
    le = draw(st.none() | st.integers(1, 65536 if extended else 256))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


@given(commands())
def test_command_round_trip(cmd: CommandApdu) -> None:
    raw = cmd.to_bytes()
    back = CommandApdu.from_bytes(raw)
    assert back == cmd
    assert back.to_bytes() == raw


@given(commands())
def test_case_matches_fields(cmd: CommandApdu) -> None:
    case = cmd.case
    if not cmd.data and cmd.le is None:
        assert case == "1"
    else:
        assert case[0] == ("2" if not cmd.data else "3" if cmd.le is None else "4")
        assert case[1] == ("E" if cmd.extended else "S")


@pytest.mark.parametrize(
    "hexstr, case, nc, ne",
    [
        ("00A40000", "1", 0, None),
        ("00B0000000", "2S", 0, 256),
        ("00B0000010", "2S", 0, 16),
        ("00A40400023F00", "3S", 2, None),
        ("00A4040002A00000", "4S", 2, 256),
        ("00B0000000FFFF", "2E", 0, 65535),
        ("00B0000000000000"[:14], "2E", 0, 65536),
        ("00DA000000000201020000", "4E", 2, 65536),
        ("00DA00000000020102", "3E", 2, None),
    ],
)
def test_known_cases(hexstr: str, case: str, nc: int, ne: int | None) -> None:
    cmd = CommandApdu.from_bytes(bytes.fromhex(hexstr))
    assert cmd.case == case
    assert len(cmd.data) == nc
    assert cmd.le == ne


@pytest.mark.parametrize(
    "hexstr",
    [
        "",
        "00",
        "00A404",
        "00A4040005A000",  # Lc=5 with 2 bytes
        "00A4040002A0000000FF",  # Lc=2 with 2 data bytes + 2 more
        "00B000000000",  # 6 bytes: 00 then one byte of an extended length
        "00B00000000000FF",  # extended Lc=0000 followed by more bytes
        "00DA0000000003010203FF",  # extended Lc=3, then 1 stray byte
        "00DA000000000301",  # extended Lc=3 with 1 data byte
    ],
)
def test_malformed_lengths_are_refused_with_6700(hexstr: str) -> None:
    with pytest.raises(ApduFormatError) as info:
        CommandApdu.from_bytes(bytes.fromhex(hexstr))
    assert info.value.sw == 0x6700


@given(st.binary(max_size=300))
def test_parser_never_guesses(raw: bytes) -> None:
    """Every byte string either parses to an APDU that re-encodes identically, or is refused."""
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduFormatError as e:
        assert e.sw == 0x6700
        return
    assert cmd.to_bytes() == raw


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        CommandApdu(0x100, 0, 0, 0)
    with pytest.raises(ValueError):
        CommandApdu(0, 0, 0, 0, le=0)
    with pytest.raises(ValueError):
        CommandApdu(0, 0, 0, 0, data=bytes(65536))
    # Data over 255 bytes or Ne over 256 forces extended encoding.
    assert CommandApdu(0, 0xDA, 0, 0, data=bytes(300)).extended
    assert CommandApdu(0, 0xB0, 0, 0, le=257).extended


@given(st.binary(min_size=2, max_size=300))
def test_response_round_trip(raw: bytes) -> None:
    r = ResponseApdu.from_bytes(raw)
    assert r.to_bytes() == raw
    assert r.sw == int.from_bytes(raw[-2:], "big")
    assert (r.sw1, r.sw2) == (raw[-2], raw[-1])


def test_response_too_short() -> None:
    with pytest.raises(ApduFormatError):
        ResponseApdu.from_bytes(b"\x90")


@pytest.mark.parametrize(
    "cla, channel, chained, sm",
    [
        (0x00, 0, False, 0),
        (0x03, 3, False, 0),
        (0x10, 0, True, 0),
        (0x0C, 0, False, 3),
        (0x40, 4, False, 0),
        (0x4F, 19, False, 0),
        (0x60, 4, False, 2),
        (0x81, 1, False, 0),
        (0xC5, 9, False, 0),
        (0x90, 0, False, 0),  # b8 set: proprietary, b5 is not chaining
    ],
)
def test_cla_decoding(cla: int, channel: int, chained: bool, sm: int) -> None:
    assert cla_channel(cla) == channel
    assert cla_chained(cla) == chained
    assert cla_secure_messaging(cla) == sm


@given(st.sampled_from([0x00, 0x10, 0x0C, 0x80, 0x84, 0x40, 0x60, 0xC0]), st.integers(0, 19))
def test_cla_with_channel(cla: int, channel: int) -> None:
    out = cla_with_channel(cla, channel)
    assert cla_channel(out) == channel
    assert out & 0x80 == cla & 0x80
    assert cla_chained(out) == cla_chained(cla)
    assert bool(cla_secure_messaging(out)) == bool(cla_secure_messaging(cla))


# -- exact refusals and every class byte (the mutation-testing targets) ---------


@pytest.mark.parametrize(
    ("hexstr", "reason"),
    [
        ("000000", "an APDU has at least 4 bytes, got 3"),
        ("00A4040002AA", "Lc=2 does not match 1 bytes after the header"),
        ("00A404000001", "truncated extended length field"),
        ("00A40400000000AA", "extended Lc of 0000 followed by more bytes"),
        ("00A4040000000201", "extended Lc=2 does not match 1 bytes after the length"),
    ],
)
def test_refusal_reasons(hexstr: str, reason: str) -> None:
    with pytest.raises(ApduFormatError) as e:
        CommandApdu.from_bytes(bytes.fromhex(hexstr))
    assert e.value.sw == 0x6700
    assert e.value.reason == reason
    assert str(e.value) == f"6700: {reason}"


def test_response_refusal_reason() -> None:
    with pytest.raises(ApduFormatError) as e:
        ResponseApdu.from_bytes(b"\x90")
    assert e.value.reason == "a response has at least 2 bytes (SW1 SW2), got 1"
    assert ResponseApdu(b"\x01", 0x6283).to_bytes() == b"\x01\x62\x83"


def test_cla_with_channel_for_every_class_byte() -> None:
    """Every CLA to every channel keeps b8, chaining and SM, and addresses the channel."""
    for cla in range(256):
        for channel in range(20):
            out = cla_with_channel(cla, channel)
            assert cla_channel(out) == channel, (cla, channel)
            assert out & 0x90 == cla & 0x90, (cla, channel)
            assert bool(cla_secure_messaging(out)) == bool(cla_secure_messaging(cla)), (
                cla,
                channel,
            )
            if channel <= 3 and not cla & 0x40:
                assert out == (cla & 0x9C) | channel  # first interindustry: only b2-b1 change


@pytest.mark.parametrize(
    ("cla", "channel", "out"),
    [
        (0x01, 2, 0x02),
        (0x03, 4, 0x40),
        (0x84, 1, 0x85),
        (0x88, 0, 0x88),
        (0x8C, 5, 0xE1),
        (0x61, 0, 0x08),
        (0x41, 3, 0x03),
        (0x45, 19, 0x4F),
        (0xF1, 7, 0xF3),
    ],
)
def test_cla_with_channel_values(cla: int, channel: int, out: int) -> None:
    assert cla_with_channel(cla, channel) == out


@pytest.mark.parametrize("channel", [-1, 20])
def test_cla_with_channel_out_of_range(channel: int) -> None:
    with pytest.raises(ValueError) as e:
        cla_with_channel(0x00, channel)
    assert str(e.value) == f"logical channel {channel} out of range 0..19"


def test_constructor_refusal_messages_and_data_conversion() -> None:
    for args, message in (
        ((0x100, 0, 0, 0), "cla 256 is not a byte"),
        ((0, 0, 0, -1), "p2 -1 is not a byte"),
    ):
        with pytest.raises(ValueError) as e:
            CommandApdu(*args)
        assert str(e.value) == message
    with pytest.raises(ValueError) as e:
        CommandApdu(0, 0, 0, 0, data=bytes(65536))
    assert str(e.value) == "command data of 65536 bytes exceeds 65535"
    with pytest.raises(ValueError) as e:
        CommandApdu(0, 0, 0, 0, le=65537)
    assert str(e.value) == "Ne 65537 out of range 1..65536"
    cmd = CommandApdu(0, 0xD6, 0, 0, bytearray(b"ab"))  # type: ignore[arg-type]
    assert type(cmd.data) is bytes and cmd.data == b"ab"
    assert not CommandApdu(0, 0xD6, 0, 0, bytes(255)).extended
    assert CommandApdu(0, 0xD6, 0, 0, bytes(256)).extended


def test_extended_le_uses_both_bytes() -> None:
    cmd = CommandApdu.from_bytes(bytes.fromhex("00A4040000000200110102"))
    assert (cmd.case, cmd.data, cmd.le) == ("4E", b"\x00\x11", 0x0102)
    assert CommandApdu.from_bytes(bytes.fromhex("00B000000000FF")).le == 0xFF
    assert CommandApdu.from_bytes(bytes.fromhex("00B00000000102")).le == 0x0102
