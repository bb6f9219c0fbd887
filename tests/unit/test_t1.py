"""T=1: blocks and EDC, the card engine block by block, T1Reader against it (ISO/IEC 7816-3 §11)."""

from __future__ import annotations

from collections.abc import Collection

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from card.apdu import CommandApdu
from card.atr import Atr
from card.runtime import DEFAULT_ATR
from card.transport.t1 import (
    ABORT,
    EDC_ERROR,
    IFS,
    OTHER_ERROR,
    RESYNCH,
    WTX,
    Block,
    BlockError,
    T1ByteStream,
    T1Card,
    compute_edc,
    crc16,
    i_block,
    lrc,
    parse_block,
    r_block,
    s_block,
    t1_parameters,
)
from host.readers.base import ReaderError
from host.readers.t1 import BitFlipper, T1Reader
from tests.unit.cards import sample_card
from tests.unit.test_t0 import IsoCard, Scripted, extended_apdus, short_apdus


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def direct(apdu: bytes) -> bytes:
    card = IsoCard(atr=DEFAULT_ATR)
    card.power_on()
    return card.process(apdu)


def engine(runtime: object, **kw: object) -> T1Card:
    card = T1Card(runtime, **kw)  # type: ignore[arg-type]
    card.power_on()
    return card


class Recorder:
    """A clean line that remembers every block: (bytes, towards the card)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[bytes, bool]] = []

    def __call__(self, raw: bytes, to_card: bool) -> bytes:
        self.blocks.append((raw, to_card))
        return raw

    def sent(self) -> list[bytes]:
        return [b for b, to_card in self.blocks if to_card]


# -- blocks and EDC (§11.3, §11.4.4) --------------------------------------------------------


def test_known_blocks_with_lrc() -> None:
    select = i_block(0, h("00 A4 04 00 00"))
    assert select.encode("lrc") == h("00 00 05 00 A4 04 00 00 A5")
    assert s_block(IFS, inf=b"\xfe").encode() == h("00 C1 01 FE 3E")
    assert s_block(IFS, response=True, inf=b"\xfe").encode() == h("00 E1 01 FE 1E")
    assert s_block(RESYNCH).encode() == h("00 C0 00 C0")
    assert s_block(ABORT, response=True).encode() == h("00 E2 00 E2")
    assert s_block(WTX, inf=b"\x01").encode() == h("00 C3 01 01 C3")
    assert r_block(1).encode() == h("00 90 00 90")
    assert r_block(0, EDC_ERROR).encode() == h("00 81 00 81")
    assert r_block(1, OTHER_ERROR).encode() == h("00 92 00 92")
    assert i_block(1, b"\x90\x00", more=True).encode() == h("00 60 02 90 00 F2")
    parsed = parse_block(h("00 00 05 00 A4 04 00 00 A5"))
    assert (parsed.kind, parsed.ns, parsed.more, parsed.inf) == ("I", 0, False, h("00A4040000"))
    s = parse_block(h("00 C1 01 FE 3E"))
    assert (s.kind, s.s_type, s.response, s.inf) == ("S", IFS, False, b"\xfe")


def test_crc_known_values() -> None:
    # The check value of this CRC (CRC-16/MCRF4XX in the reveng catalogue).
    assert crc16(b"123456789") == 0x6F91
    assert compute_edc(b"123456789", "crc") == h("6F 91")  # high byte first, as OpenCT/CCID
    # ISO/IEC 14443-3 Annex B computes CRC_B with the same register (ISO/IEC 13239, preset
    # FFFF) and complements it: its examples 00 00 00 -> CC C6 and 0F AA FF -> FC D1 (sent
    # low byte first) must be our values complemented.
    assert crc16(h("000000")) ^ 0xFFFF == 0xC6CC
    assert crc16(h("0FAAFF")) ^ 0xFFFF == 0xD1FC


@given(st.binary(max_size=300))
def test_lrc_makes_the_xor_zero(data: bytes) -> None:
    assert lrc(data + bytes((lrc(data),))) == 0


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    nad = draw(st.integers(0, 7)) << 4 | draw(st.integers(0, 7))
    kind = draw(st.sampled_from("IRS"))
    if kind == "I":
        inf = draw(st.binary(max_size=254))
        return i_block(draw(st.integers(0, 1)), inf, draw(st.booleans()), nad)
    if kind == "R":
        return r_block(draw(st.integers(0, 1)), draw(st.integers(0, 2)), nad)
    s_type = draw(st.sampled_from((RESYNCH, IFS, ABORT, WTX)))
    inf = b""
    if s_type == IFS:
        inf = bytes((draw(st.integers(1, 254)),))
    elif s_type == WTX:
        inf = bytes((draw(st.integers(0, 255)),))
    return s_block(s_type, draw(st.booleans()), inf, nad)


@settings(max_examples=300)
@given(blocks(), st.sampled_from(("lrc", "crc")), st.data())
def test_every_single_bit_error_is_detected(block: Block, edc: str, data: st.DataObject) -> None:
    raw = block.encode(edc)  # type: ignore[arg-type]
    assert parse_block(raw, edc) == block  # type: ignore[arg-type]
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    bad = bytearray(raw)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(BlockError) as e:
        parse_block(bytes(bad), edc)  # type: ignore[arg-type]
    # A flipped LEN is caught by the length; anything else by the EDC.
    assert e.value.code == (OTHER_ERROR if bit // 8 == 2 else EDC_ERROR)


@pytest.mark.parametrize(
    "raw",
    [
        "00 00 06 00 A4 04 00 00 A5",  # LEN says 6, 5 bytes follow
        "00 00 FF 00",  # LEN FF is reserved
        "00 01 00 01",  # I-block with RFU PCB bits
        "00 83 00 83",  # R-block error code 3 is RFU
        "00 A0 00 A0",  # R-block with b6 set
        "00 80 01 00 81",  # R-block with INF
        "00 C1 01 00 C0",  # IFS 00
        "00 C1 01 FF 3F",  # IFS FF
        "00 C1 00 C1",  # S(IFS) without INF
        "00 C4 00 C4",  # S-block type 4
        "80 00 00 80",  # NAD b8 set
        "00",  # no block at all
    ],
)
def test_invalid_blocks_are_other_errors(raw: str) -> None:
    with pytest.raises(BlockError) as e:
        parse_block(h(raw))
    assert e.value.code == OTHER_ERROR


# -- the card engine, block by block (§11.6) ------------------------------------------------

FCI = h("6F0E8407A0000000041010A503880101")
SELECT = h("00A4040000")


def test_i_blocks_answered_with_alternating_ns() -> None:
    rt = Scripted({SELECT: FCI + b"\x90\x00"})
    card = engine(rt)
    reply = card.handle_block(h("00 00 05 00 A4 04 00 00 A5"))
    assert reply == i_block(0, FCI + b"\x90\x00").encode()
    assert reply[:3] == h("00 00 12")
    reply = card.handle_block(i_block(1, SELECT).encode())
    assert reply[:3] == h("00 40 12")  # N(S) = 1
    assert rt.received == [SELECT, SELECT]


def test_command_chaining_is_acknowledged_by_r_blocks() -> None:
    apdu = CommandApdu(0x00, 0xD6, 0, 0, bytes(range(65))).to_bytes()  # 70 bytes
    rt = Scripted({apdu: b"\x90\x00"})
    card = engine(rt)
    assert card.handle_block(i_block(0, apdu[:32], more=True).encode()) == h("00 90 00 90")
    assert card.handle_block(i_block(1, apdu[32:64], more=True).encode()) == h("00 80 00 80")
    assert rt.received == []
    assert card.handle_block(i_block(0, apdu[64:]).encode()) == i_block(0, b"\x90\x00").encode()
    assert rt.received == [apdu]


def test_response_chaining_follows_ifsd() -> None:
    resp = bytes(range(38)) + b"\x90\x00"
    rt = Scripted({SELECT: resp})
    card = engine(rt)
    assert card.handle_block(h("00 C1 01 10 D0")) == h("00 E1 01 10 F0")
    assert card.ifsd == 16
    first = parse_block(card.handle_block(i_block(0, SELECT).encode()))
    assert (first.ns, first.more, first.inf) == (0, True, resp[:16])
    second = parse_block(card.handle_block(r_block(1).encode()))
    assert (second.ns, second.more, second.inf) == (1, True, resp[16:32])
    third = parse_block(card.handle_block(r_block(0).encode()))
    assert (third.ns, third.more, third.inf) == (0, False, resp[32:])


def test_r_blocks_bring_back_what_the_terminal_missed() -> None:
    rt = Scripted({SELECT: FCI + b"\x90\x00"})
    card = engine(rt)
    answer = card.handle_block(i_block(0, SELECT).encode())
    # R(N(R) = 0): "I did not get your I-block 0" -> the same block again.
    assert card.handle_block(r_block(0, EDC_ERROR).encode()) == answer
    assert card.handle_block(r_block(0).encode()) == answer
    assert card.stats.retransmissions == 2
    # R(N(R) = 1) acknowledges it: the card says which I-block it expects (N(S) = 1).
    assert card.handle_block(r_block(1).encode()) == h("00 90 00 90")
    assert rt.received == [SELECT]  # nothing ran twice


def test_invalid_blocks_get_r_blocks_with_error_code_and_state_survives() -> None:
    rt = Scripted({SELECT: b"\x90\x00"})
    card = engine(rt)
    assert card.handle_block(h("00 00 05 00 A4 04 00 00 A4")) == h("00 81 00 81")  # EDC
    assert card.handle_block(h("00 00 06 00 A4 04 00 00 A5")) == h("00 82 00 82")  # LEN
    assert card.handle_block(i_block(0, bytes(33)).encode()) == h("00 82 00 82")  # > IFSC
    assert card.handle_block(h("00 01 00 01")) == h("00 82 00 82")  # PCB
    assert (card.stats.edc_errors, card.stats.other_errors) == (1, 3)
    assert card.handle_block(i_block(0, SELECT).encode()) == i_block(0, b"\x90\x00").encode()
    # After that exchange the card expects N(S) = 1: its error R-blocks say so.
    assert card.handle_block(h("00 40 00 41")) == h("00 91 00 91")


def test_wtx_request_before_the_answer() -> None:
    rt = Scripted({SELECT: b"\x90\x00"})
    card = engine(rt, wtx_every=1)
    assert card.handle_block(i_block(0, SELECT).encode()) == h("00 C3 01 01 C3")
    # A response with another INF is not the answer: other error (N(R) = 1, the I-block 0
    # was taken).
    assert card.handle_block(h("00 E3 01 02 E0")) == h("00 92 00 92")
    # The terminal missed our request (sends an R-block): it comes again.
    assert card.handle_block(r_block(0, EDC_ERROR).encode()) == h("00 C3 01 01 C3")
    assert card.handle_block(h("00 E3 01 01 E3")) == i_block(0, b"\x90\x00").encode()
    assert card.stats.wtx_requests == 1


def test_card_announces_a_new_ifsc() -> None:
    rt = Scripted({SELECT: b"\x90\x00"})
    card = engine(rt)
    card.request_ifsc(20)
    assert card.handle_block(i_block(0, SELECT).encode()) == h("00 C1 01 14 D4")
    assert card.ifsc == 32  # not before the terminal has answered
    assert card.handle_block(h("00 E1 01 14 F4")) == i_block(0, b"\x90\x00").encode()
    assert card.ifsc == 20
    assert card.handle_block(i_block(1, bytes(21)).encode()) == h("00 92 00 92")
    assert parse_block(card.handle_block(i_block(1, bytes(20)).encode())).kind == "I"


def test_resynch_restarts_the_sequence_numbers() -> None:
    rt = Scripted({SELECT: b"\x90\x00"})
    card = engine(rt)
    card.handle_block(i_block(0, SELECT).encode())
    assert card.handle_block(s_block(RESYNCH).encode()) == h("00 E0 00 E0")
    assert card.handle_block(i_block(0, SELECT).encode()) == i_block(0, b"\x90\x00").encode()
    assert card.stats.resynchs == 1


def test_abort_drops_the_chain_being_received() -> None:
    full = CommandApdu(0x00, 0xD6, 0, 0, bytes(40)).to_bytes()
    rt = Scripted({SELECT: b"\x90\x00"})
    card = engine(rt)
    assert card.handle_block(i_block(0, full[:32], more=True).encode()) == h("00 90 00 90")
    assert card.handle_block(h("00 C2 00 C2")) == h("00 E2 00 E2")
    assert card.handle_block(i_block(1, SELECT).encode()) == i_block(0, b"\x90\x00").encode()
    assert rt.received == [SELECT]


def test_nad_addresses_are_swapped_in_the_answer() -> None:
    card = engine(Scripted({SELECT: b"\x90\x00"}))
    reply = card.handle_block(i_block(0, SELECT, nad=0x12).encode())
    assert reply[0] == 0x21


def test_atr_announces_the_engine_parameters() -> None:
    assert t1_parameters(DEFAULT_ATR) == (254, "lrc")
    plain = engine(IsoCard(atr=DEFAULT_ATR))
    assert plain.atr == DEFAULT_ATR
    custom = engine(IsoCard(atr=DEFAULT_ATR), ifsc=16, edc="crc")
    assert t1_parameters(custom.atr) == (16, "crc")
    assert Atr.from_bytes(custom.atr).historical == Atr.from_bytes(DEFAULT_ATR).historical
    assert (custom.ifsc, custom.edc) == (16, "crc")
    # An ATR announcing T=0 only gets the TDs for T=1 added.
    t0_only = engine(IsoCard(), ifsc=20)
    assert t1_parameters(t0_only.atr) == (20, "lrc")
    assert 1 in Atr.from_bytes(t0_only.atr).protocols


def test_byte_stream_frames_blocks_and_times_out_partial_ones() -> None:
    rt = Scripted({SELECT: FCI + b"\x90\x00"})
    stream = T1ByteStream(T1Card(rt))
    stream.power_on()
    raw = h("00 00 05 00 A4 04 00 00 A5")
    assert [stream.feed(raw[i : i + 1]) for i in range(len(raw) - 1)] == [b""] * (len(raw) - 1)
    assert stream.feed(raw[-1:]) == i_block(0, FCI + b"\x90\x00").encode()
    assert stream.feed(h("00 40 05 00")) == b""  # the rest never comes
    assert stream.timeout() == h("00 92 00 92")  # other error; N(S) 1 is expected next
    assert stream.timeout() == b""


def test_byte_stream_answers_pps_for_t1() -> None:
    stream = T1ByteStream(T1Card(Scripted({})))
    stream.power_on()
    assert stream.feed(h("FF 11 11 FF")) == h("FF 11 11 FF")
    stream.power_on()
    assert stream.feed(h("FF 10 11 FE")) == b""  # T=0 asked of a T=1 engine


# -- the reader against the engine ------------------------------------------------------------

ifs_values = st.sampled_from((1, 5, 16, 32, 254)) | st.integers(1, 254)
any_apdu = short_apdus() | extended_apdus() | st.binary(max_size=300)


@settings(max_examples=200)
@given(
    any_apdu,
    ifs_values,
    ifs_values,
    st.sampled_from(("lrc", "crc")),
    st.integers(0, 3),
    st.booleans(),
    st.integers(1, 9),
)
def test_any_apdu_through_t1_equals_direct(
    apdu: bytes, ifsc: int, ifsd: int, edc: str, wtx_every: int, stream: bool, chunk: int
) -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR), ifsc=ifsc, edc=edc, wtx_every=wtx_every)  # type: ignore[arg-type]
    reader = T1Reader(card, ifsd=ifsd, stream=stream, chunk=chunk)
    resp = reader.transmit(apdu)
    assert resp == direct(apdu)
    event(f"command chained: {len(apdu) > ifsc}; response chained: {len(resp) > ifsd}")
    assert (reader.ifsc, reader.edc, card.ifsd) == (ifsc, edc, ifsd)
    assert reader.errors == 0


@settings(max_examples=150)
@given(
    any_apdu,
    st.sampled_from((8, 16, 32)),
    st.sampled_from(("lrc", "crc")),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2),
)
def test_corrupted_and_lost_blocks_still_give_the_right_response(
    apdu: bytes, ifs: int, edc: str, seed: int, wtx_every: int
) -> None:
    line = BitFlipper(0.2, seed=seed, drop=0.25)
    card = T1Card(IsoCard(atr=DEFAULT_ATR), ifsc=ifs, edc=edc, wtx_every=wtx_every)  # type: ignore[arg-type]
    reader = T1Reader(card, ifsd=ifs, fault=line, retries=10)
    assert reader.transmit(apdu) == direct(apdu)
    event(f"line damaged: {bool(line.flipped or line.dropped)}; resynch: {reader.resynch_count}")
    if line.flipped or line.dropped:
        # The damage was seen and repaired, not slipped through.
        repaired = reader.errors + card.stats.edc_errors + card.stats.other_errors
        assert repaired > 0


class BreakBlocks:
    """A line that damages chosen blocks: by index among the blocks to the card / from it."""

    def __init__(
        self, to_card: Collection[int] = (), from_card: Collection[int] = (), drop: bool = False
    ) -> None:
        self.targets = {True: set(to_card), False: set(from_card)}
        self.counts = {True: 0, False: 0}
        self.drop = drop
        self.sent: list[bytes] = []  # what the reader put on the line, before damage

    def __call__(self, raw: bytes, to_card: bool) -> bytes:
        if to_card:
            self.sent.append(raw)
        n = self.counts[to_card]
        self.counts[to_card] += 1
        if n not in self.targets[to_card]:
            return raw
        if self.drop:
            return b""
        return raw[:-1] + bytes((raw[-1] ^ 0x01,))


LONG = CommandApdu(0x00, 0x22, 0x01, 0x40, bytes(range(200)), 256).to_bytes()


def test_one_bad_block_each_way_is_repaired() -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR), ifsc=32)
    # Block 0 to the card is S(IFS); 2 is a middle part of the command chain.
    line = BreakBlocks(to_card={2}, from_card={3})
    reader = T1Reader(card, ifsd=32, fault=line)
    assert reader.transmit(LONG) == direct(LONG)
    assert card.stats.edc_errors == 1  # our damaged block
    assert reader.errors == 2  # the card's R(error) for it, and its damaged block
    # The chain part went out twice; the card's damaged block got an R(EDC error).
    sent = [parse_block(b) for b in line.sent]
    assert sent[2] == sent[3] and sent[2].kind == "I"
    assert [b for b in sent if b.kind == "R" and b.error == EDC_ERROR]
    assert reader.resynch_count == 0


def test_a_lost_command_block_is_sent_again() -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR))
    line = BreakBlocks(to_card={1}, drop=True)  # the I-block never reaches the card
    reader = T1Reader(card, fault=line)
    assert reader.transmit(SELECT) == direct(SELECT)
    # Time-out -> R(0, other error) -> the card: "I expect N(S) 0" -> the I-block again.
    kinds = [str(parse_block(b)) for b in line.sent[1:4]]
    assert kinds == ["I(0) " + SELECT.hex(), "R(0, error 2)", "I(0) " + SELECT.hex()]
    assert (reader.resynch_count, card.stats.apdus) == (0, 1)


def test_a_repeated_i_block_is_answered_from_memory() -> None:
    rt = Scripted({SELECT: FCI + b"\x90\x00"})
    card = engine(rt)
    answer = card.handle_block(i_block(0, SELECT).encode())
    assert card.handle_block(h("00 00 05 00")) == h("00 92 00 92")  # a damaged block between
    assert card.handle_block(i_block(0, SELECT).encode()) == answer
    assert rt.received == [SELECT]


def test_a_lost_answer_is_sent_again() -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR))
    apdu = h("00 22 00 10 02 AA BB 00")
    reader = T1Reader(card, fault=BreakBlocks(from_card={1}, drop=True))
    assert reader.transmit(apdu) == direct(apdu)
    assert card.stats.retransmissions == 1
    assert card.stats.apdus == 1  # the card did not run the command twice


def test_persistent_noise_leads_to_resynch_and_a_fresh_start() -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR), ifsc=32)
    reader = T1Reader(card, fault=BreakBlocks(to_card={2, 3, 4, 5, 6}), retries=3)
    assert reader.transmit(LONG) == direct(LONG)
    assert reader.resynch_count == 1
    assert card.stats.resynchs == 1


def test_a_dead_line_ends_in_reader_error() -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR))
    reader = T1Reader(card, fault=BreakBlocks(to_card=set(range(1, 10_000))))
    with pytest.raises(ReaderError):
        reader.transmit(SELECT)
    assert reader.blocks_sent < 100


def test_ifsd_is_negotiated_at_connect() -> None:
    line = Recorder()
    card = T1Card(IsoCard(atr=DEFAULT_ATR))
    reader = T1Reader(card, ifsd=20, fault=line)
    reader.connect()
    assert line.sent()[0] == h("00 C1 01 14 D4")
    assert card.ifsd == 20
    resp = reader.transmit(LONG)
    assert resp == direct(LONG)
    answers = [parse_block(b) for b, to_card in line.blocks if not to_card]
    assert max(len(b.inf) for b in answers) == 20


def test_card_ifs_request_changes_the_reader_block_size() -> None:
    line = Recorder()
    card = T1Card(IsoCard(atr=DEFAULT_ATR), ifsc=32)
    reader = T1Reader(card, fault=line)
    reader.connect()
    card.request_ifsc(8)  # sent instead of the acknowledgement of our first block
    assert reader.transmit(LONG) == direct(LONG)
    assert reader.ifsc == 8
    sent = [parse_block(b) for b in line.sent()]
    after = sent[[b.kind == "S" and b.s_type == IFS and b.response for b in sent].index(True) :]
    i_blocks = [b for b in after if b.kind == "I"]
    assert all(len(b.inf) <= 8 for b in i_blocks)
    assert sum(len(b.inf) for b in i_blocks) == len(LONG) - 32


def test_wtx_requests_are_answered_with_the_same_inf() -> None:
    line = Recorder()
    card = T1Card(IsoCard(atr=DEFAULT_ATR), wtx_every=1, wtx_requests=3, wtx_multiplier=5)
    reader = T1Reader(card, fault=line)
    assert reader.transmit(SELECT) == direct(SELECT)
    assert reader.wtx_count == 3
    assert line.sent().count(h("00 E3 01 05 E7")) == 3


def test_reader_with_a_nad() -> None:
    card = T1Card(IsoCard(atr=DEFAULT_ATR))
    reader = T1Reader(card, nad=0x12)
    assert reader.transmit(SELECT) == direct(SELECT)


@pytest.mark.parametrize("stream", [False, True])
def test_sample_card_runtime_through_t1(stream: bool) -> None:
    direct_card = sample_card()
    t1 = T1Reader(sample_card(), stream=stream, chunk=5, ifsd=64)
    assert t1.connect() == direct_card.atr
    echo_aid = h("F043415244454D5502")
    apdus = [
        CommandApdu(0x00, 0xA4, 0x04, 0x00, echo_aid, 256).to_bytes(),
        CommandApdu(0x80, 0x01, 0x00, 0x00, bytes(range(256)) * 4, 65536).to_bytes(),
        CommandApdu(0x80, 0x02, 0x0B, 0xB8, le=65536).to_bytes(),  # 3000 bytes back
        CommandApdu(0x80, 0x01, 0x00, 0x00, bytes(300), 100).to_bytes(),
        h("00C0000000"),
        h("80 FF 00 00"),
    ]
    for apdu in apdus:
        assert t1.transmit(apdu) == direct_card.process(apdu), apdu.hex()
