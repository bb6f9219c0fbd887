"""T=0: the card engine byte by byte, and T0Reader against it (ISO/IEC 7816-3 §10, §12.2)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from card.apdu import ApduFormatError, CommandApdu
from card.transport import pps_reply
from card.transport.t0 import T0Card, default_outgoing
from host.readers.base import ReaderError
from host.readers.t0 import T0Reader
from tests.unit.cards import sample_card

ATR = bytes.fromhex("3B00")

# INS the default oracle knows as case 2 (outgoing), and INS it takes as incoming.
OUT_INS = (0xB0, 0xB2, 0xCA, 0x84)
IN_INS = (0x20, 0x22, 0x2A, 0x88, 0xA4, 0xD6, 0xE2)
SWS = (0x9000, 0x6283, 0x6310, 0x6A82)


class IsoCard:
    """A fake runtime that follows ISO/IEC 7816-4 as `CardRuntime` does.

    The response data depend on the whole command (header and data): P1 b3-b1
    and P2 give their length (0..2047) and P1 b8-b7 the status word. With Le,
    at most Ne bytes come back and 61xx tells of the rest; without Le, all of
    it waits behind 61xx for GET RESPONSE. `strict_le` answers 6C La to a
    case 2S command whose Le is not the length, as a strict READ BINARY does.
    """

    def __init__(self, strict_le: bool = False, atr: bytes = ATR) -> None:
        self.strict_le = strict_le
        self.atr = atr
        self.pending = b""
        self.pending_sw = 0x9000
        self.received: list[bytes] = []

    def power_on(self) -> bytes:
        self.pending = b""
        return self.atr

    def process(self, apdu: bytes) -> bytes:
        self.received.append(apdu)
        try:
            c = CommandApdu.from_bytes(apdu)
        except ApduFormatError:
            return b"\x67\x00"
        if c.ins == 0xC0:
            return self._get_response(c)
        self.pending = b""
        sw = SWS[c.p1 >> 6]
        if sw == 0x6A82:
            return sw.to_bytes(2, "big")
        data = response_data(c)
        if not data:
            return sw.to_bytes(2, "big")
        ne = c.le
        if self.strict_le and c.case == "2S" and ne != len(data) and len(data) <= 256:
            return bytes((0x6C, len(data) & 0xFF))
        if ne is None or len(data) > ne:
            keep = data if ne is None else data[ne:]
            self.pending, self.pending_sw = keep, sw
            return (data[:ne] if ne else b"") + more(len(keep))
        return data + sw.to_bytes(2, "big")

    def _get_response(self, c: CommandApdu) -> bytes:
        if not self.pending:
            return b"\x69\x85"
        n = len(self.pending)
        ne = c.le or 256
        if ne > n and ne not in (256, 65536):
            return bytes((0x6C, n & 0xFF))
        out, self.pending = self.pending[:ne], self.pending[ne:]
        if self.pending:
            return out + more(len(self.pending))
        return out + self.pending_sw.to_bytes(2, "big")


def response_data(c: CommandApdu) -> bytes:
    length = (c.p1 & 0x07) << 8 | c.p2
    digest = hashlib.sha256(c.header + c.data).digest()
    return (digest * (length // 32 + 1))[:length]


def more(n: int) -> bytes:
    return bytes((0x61, n if n < 256 else 0))


def reference(apdus: list[bytes], strict_le: bool = False) -> list[bytes]:
    """What the card answers when called directly, with the T=0 rule for 6Cxx (§12.2.3).

    A case 2S command answered 6C La is sent again with Le = La: the transport
    does that, so the caller never sees 6Cxx for case 2S.
    """
    card = IsoCard(strict_le)
    card.power_on()
    out = []
    for apdu in apdus:
        r = card.process(apdu)
        c = CommandApdu.from_bytes(apdu)
        if r[-2] == 0x6C and c.case == "2S":
            r = card.process(c.header + r[-1:])
        out.append(r)
    return out


def p1p2(draw: st.DrawFn) -> tuple[int, int]:
    """P1 P2 asking `IsoCard` for a status word and a response length, short ones often."""
    sw_index = draw(st.sampled_from((0, 0, 1, 2, 3)))
    length = draw(st.integers(0, 300) | st.integers(0, 0x7FF))
    return sw_index << 6 | draw(st.integers(0, 7)) << 3 | length >> 8, length & 0xFF


@st.composite
def short_apdus(draw: st.DrawFn) -> bytes:
    case = draw(st.sampled_from("1234"))
    ins = draw(st.sampled_from(OUT_INS if case == "2" else IN_INS))
    cla = draw(st.sampled_from((0x00, 0x01, 0x80, 0x84)))
    p1, p2 = p1p2(draw)
    data = draw(st.binary(min_size=1, max_size=255)) if case in "34" else b""
    le = draw(st.integers(1, 256)) if case in "24" else None
    return CommandApdu(cla, ins, p1, p2, data, le).to_bytes()


@st.composite
def extended_apdus(draw: st.DrawFn) -> bytes:
    case = draw(st.sampled_from("234"))
    ins = draw(st.sampled_from(OUT_INS if case == "2" else IN_INS))
    p1, p2 = p1p2(draw)
    data = draw(st.binary(min_size=1, max_size=800)) if case in "34" else b""
    le = draw(st.integers(1, 3000) | st.just(65536)) if case in "24" else None
    return CommandApdu(0x00, ins, p1, p2, data, le, extended=True).to_bytes()


engines = st.fixed_dictionaries(
    {
        "ack_mode": st.sampled_from(("all", "single", "mixed")),
        "null_bytes": st.integers(0, 2),
    }
)


def reader(card: IsoCard, engine: dict, chunk: int = 1) -> T0Reader:
    r = T0Reader(T0Card(card, **engine), chunk=chunk)
    r.connect()
    return r


# -- APDUs through the engine and the driver equal direct processing -------------------


@settings(max_examples=300)
@given(short_apdus(), engines, st.integers(1, 7), st.booleans())
def test_short_apdu_through_t0_equals_direct(
    apdu: bytes, engine: dict, chunk: int, strict: bool
) -> None:
    r = reader(IsoCard(strict), engine, chunk)
    resp = r.transmit(apdu)
    assert resp == reference([apdu], strict)[0]
    event(f"TPDUs: {r.tpdus}, SW1 {resp[-2]:02X}")


@settings(max_examples=100)
@given(extended_apdus(), engines, st.integers(1, 64))
def test_extended_apdu_by_envelope_equals_direct(apdu: bytes, engine: dict, chunk: int) -> None:
    card = IsoCard()
    r = reader(card, engine, chunk)
    assert r.transmit(apdu) == reference([apdu])[0]
    # The card got the extended APDU itself, once, out of the ENVELOPE parts.
    assert card.received[0] == apdu
    assert all(a[1] == 0xC0 for a in card.received[1:])


get_responses = st.integers(0, 255).map(lambda le: bytes((0x00, 0xC0, 0x00, 0x00, le)))


@settings(max_examples=150)
@given(st.lists(short_apdus() | get_responses, min_size=1, max_size=5), engines, st.booleans())
def test_sessions_with_get_response_equal_direct(
    apdus: list[bytes], engine: dict, strict: bool
) -> None:
    r = reader(IsoCard(strict), engine, chunk=3)
    assert [r.transmit(a) for a in apdus] == reference(apdus, strict)


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=300), st.lists(st.integers(1, 20), max_size=30))
def test_any_split_of_the_terminal_bytes_gives_the_same_card_bytes(
    data: bytes, cuts: list[int]
) -> None:
    """The engine is a state machine on bytes: how the bytes are cut does not matter."""
    lc = min(len(data), 255)
    stream = bytes((0x00, 0x22, 0x00, 0x10, lc)) + data[:lc] + bytes.fromhex("00B0000004")
    whole = T0Card(IsoCard())
    whole.power_on()
    expected = whole.feed(stream)
    pieces = T0Card(IsoCard())
    pieces.power_on()
    got, pos = bytearray(), 0
    for cut in cuts:
        got += pieces.feed(stream[pos : pos + cut])
        pos += cut
    got += pieces.feed(stream[pos:])
    assert bytes(got) == expected
    assert expected.startswith(b"\x22") and expected.endswith(b"\x90\x00")


# -- the bytes on the line, by hand ---------------------------------------------------


class Scripted:
    """A runtime that answers from a table and records what it was given."""

    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.received: list[bytes] = []

    def power_on(self) -> bytes:
        return ATR

    def process(self, apdu: bytes) -> bytes:
        self.received.append(apdu)
        return self.answers.get(apdu, b"\x6d\x00")


def fresh(runtime: object, **kw: object) -> T0Card:
    card = T0Card(runtime, **kw)  # type: ignore[arg-type]
    card.power_on()
    return card


SELECT = bytes.fromhex("00A4040007A0000000041010")
FCI = bytes.fromhex("6F0E8407A0000000041010A503880101")


def test_case4_select_is_case3_on_the_line_then_get_response() -> None:
    get_response = bytes.fromhex("00C0000010")
    rt = Scripted({SELECT: more(len(FCI)), get_response: FCI + b"\x90\x00"})
    card = fresh(rt)
    # Header byte by byte: nothing until P3, then ACK = INS.
    assert [card.feed(bytes((b,))) for b in SELECT[:4]] == [b""] * 4
    assert card.feed(SELECT[4:5]) == b"\xa4"
    assert card.feed(SELECT[5:]) == b"\x61\x10"
    # The runtime got the case 3 form: the TPDU has no room for Le (§12.2.5).
    assert rt.received == [SELECT]
    assert card.feed(get_response) == b"\xc0" + FCI + b"\x90\x00"


def test_case2_wrong_le_answers_6c_and_serves_the_repeat_without_running_twice() -> None:
    challenge = bytes.fromhex("0102030405060708")
    rt = Scripted({bytes.fromhex("0084000010"): challenge + b"\x90\x00"})
    card = fresh(rt)
    assert card.feed(bytes.fromhex("0084000010")) == b"\x6c\x08"
    assert card.feed(bytes.fromhex("0084000008")) == b"\x84" + challenge + b"\x90\x00"
    assert len(rt.received) == 1  # a second GET CHALLENGE would give another challenge


def test_case2_exact_le_and_le_256() -> None:
    block = bytes(range(256))
    rt = Scripted({bytes.fromhex("00B0000000"): block + b"\x90\x00"})
    card = fresh(rt)
    assert card.feed(bytes.fromhex("00B0000000")) == b"\xb0" + block + b"\x90\x00"


def test_single_byte_acks_and_null_bytes() -> None:
    rt = Scripted({bytes.fromhex("0022000003AABBCC"): b"\x90\x00"})
    card = fresh(rt, ack_mode="single", null_bytes=2)
    assert card.feed(bytes.fromhex("0022000003")) == b"\x60\x60\xdd"  # NULL NULL INS^FF
    assert card.feed(b"\xaa") == b"\x60\x60\xdd"
    assert card.feed(b"\xbb") == b"\x60\x60\xdd"
    assert card.feed(b"\xcc") == b"\x60\x60\x90\x00"


def test_mixed_acks_outgoing() -> None:
    rt = Scripted({bytes.fromhex("00B0000003"): b"\x01\x02\x03\x90\x00"})
    card = fresh(rt, ack_mode="mixed")
    # One byte after INS^FF, then INS for the remaining two (§10.3.3).
    assert card.feed(bytes.fromhex("00B0000003")) == bytes.fromhex("4F01B002039000")


def test_case1_has_no_ack() -> None:
    rt = Scripted({bytes.fromhex("00440000"): b"\x90\x00"})
    assert fresh(rt).feed(bytes.fromhex("0044000000")) == b"\x90\x00"
    assert rt.received == [bytes.fromhex("00440000")]


def test_invalid_ins_and_cla_ff() -> None:
    rt = Scripted({})
    card = fresh(rt)
    assert card.feed(bytes.fromhex("0060000000")) == b"\x6d\x00"
    assert card.feed(bytes.fromhex("0090000000")) == b"\x6d\x00"
    assert card.feed(bytes.fromhex("FFA4000000")) == b"\x6e\x00"  # not first: not a PPS
    assert rt.received == []


def test_pps_right_after_the_atr() -> None:
    card = fresh(Scripted({}))
    request = bytes.fromhex("FF1011FE")  # PPS0: PPS1 present, T=0; PCK makes the XOR zero
    assert card.feed(request) == request
    card = fresh(Scripted({}))
    assert card.feed(bytes.fromhex("FF1111FF")) == b""  # asks for T=1: a T=0 card stays silent
    assert pps_reply(bytes.fromhex("FF1011FF"), 0) == b""  # wrong PCK


def test_get_response_from_the_card_buffer_with_wrong_le() -> None:
    rt = Scripted({bytes.fromhex("0088000002AABB"): b"\x11\x22\x33\x90\x00"})
    card = fresh(rt)
    assert card.feed(bytes.fromhex("0088000002AABB")) == b"\x88\x61\x03"
    assert card.feed(bytes.fromhex("00C0000005")) == b"\x6c\x03"
    assert card.feed(bytes.fromhex("00C0000002")) == b"\xc0\x11\x22\x61\x01"
    assert card.feed(bytes.fromhex("00C0000001")) == b"\xc0\x33\x90\x00"
    assert len(rt.received) == 1  # GET RESPONSE was served by the transport


def test_envelope_assembles_an_extended_command() -> None:
    apdu = CommandApdu(0x00, 0xD6, 0, 0, bytes(range(256)) * 2).to_bytes()  # case 3E, 519 bytes
    rt = Scripted({apdu: b"\x90\x00"})
    card = fresh(rt)
    assert card.feed(bytes((0, 0xC2, 0, 0, 255)) + apdu[:255]) == b"\xc2\x90\x00"
    assert card.feed(bytes((0, 0xC2, 0, 0, 255)) + apdu[255:510]) == b"\xc2\x90\x00"
    assert card.feed(bytes((0, 0xC2, 0, 0, 9)) + apdu[510:]) == b"\xc2\x90\x00"
    assert rt.received == []  # case 3E could still grow: wait for the empty ENVELOPE
    assert card.feed(bytes.fromhex("00C2000000")) == b"\x90\x00"
    assert rt.received == [apdu]


def test_envelope_ends_itself_on_a_complete_case_4e() -> None:
    apdu = CommandApdu(0x00, 0x2A, 0x9E, 0x9A, b"\x5a" * 300, 65536).to_bytes()
    rt = Scripted({apdu: b"\x01" * 300 + b"\x90\x00"})
    card = fresh(rt)
    assert card.feed(bytes((0, 0xC2, 0, 0, 255)) + apdu[:255]) == b"\xc2\x90\x00"
    assert card.feed(bytes((0, 0xC2, 0, 0, len(apdu) - 255)) + apdu[255:]) == b"\xc2\x61\x00"
    assert rt.received == [apdu]


def test_default_outgoing_oracle() -> None:
    assert default_outgoing(bytes.fromhex("00B0000010"))  # READ BINARY
    assert default_outgoing(bytes.fromhex("00C0000010"))  # GET RESPONSE
    assert not default_outgoing(bytes.fromhex("00A4040007"))  # SELECT
    assert default_outgoing(bytes.fromhex("80F2000016"))  # ETSI STATUS
    assert not default_outgoing(bytes.fromhex("80F2400002"))  # GP GET STATUS
    assert default_outgoing(bytes.fromhex("0070000001"))  # MANAGE CHANNEL open
    assert not default_outgoing(bytes.fromhex("0070800100"))  # MANAGE CHANNEL close


# -- the driver -----------------------------------------------------------------------------


def test_driver_counts_nulls_and_tpdus() -> None:
    r = reader(IsoCard(), {"null_bytes": 1, "ack_mode": "all"})
    apdu = CommandApdu(0x00, 0x22, 0x00, 0x20, b"\x01\x02", 0x20).to_bytes()  # case 4
    assert r.transmit(apdu) == reference([apdu])[0]
    assert r.tpdus == 2  # the command, then GET RESPONSE
    assert r.nulls == 4  # one before each ACK and each SW


def test_driver_fails_cleanly_when_card_and_terminal_disagree_on_direction() -> None:
    # INS 02 is case 2 for the caller, but the default oracle takes it as incoming:
    # the card ACKs and waits for data that never comes.
    r = reader(IsoCard(), {})
    with pytest.raises(ReaderError, match="silent"):
        r.transmit(bytes.fromhex("8002000010"))
    # The reader deactivated; the next command powers up again and works.
    ok = bytes.fromhex("00B0000010")
    assert r.transmit(ok) == reference([ok])[0]


def test_driver_refuses_malformed_apdus() -> None:
    with pytest.raises(ReaderError, match="well-formed"):
        reader(IsoCard(), {}).transmit(bytes.fromhex("00A4040005A0"))


def test_sample_card_runtime_through_t0() -> None:
    """The real CardRuntime behind the engine, with an oracle that knows the echo applet."""

    def outgoing(header: bytes) -> bool:
        return default_outgoing(header) or header[:2] == b"\x80\x02"  # GENERATE: case 2

    direct = sample_card()
    t0 = T0Reader(T0Card(sample_card(), outgoing=outgoing, ack_mode="mixed"))
    assert t0.connect() == direct.atr
    echo_aid = bytes.fromhex("F043415244454D5502")
    apdus = [
        CommandApdu(0x00, 0xA4, 0x04, 0x00, echo_aid, 256).to_bytes(),
        CommandApdu(0x80, 0x01, 0x00, 0x00, bytes(range(200)), 256).to_bytes(),
        CommandApdu(0x80, 0x01, 0x00, 0x00, bytes(range(200)), 100).to_bytes(),
        bytes.fromhex("00C0000000"),
        CommandApdu(0x80, 0x02, 0x00, 0x40, le=0x40).to_bytes(),
        CommandApdu(0x80, 0x01, 0x00, 0x00, bytes(1000), 65536).to_bytes(),  # by ENVELOPE
        CommandApdu(0x80, 0x02, 0x04, 0x00, le=65536).to_bytes(),
    ]
    for apdu in apdus:
        assert t0.transmit(apdu) == direct.process(apdu), apdu.hex()
