"""Reader wrappers: GET RESPONSE / 6Cxx, command chaining, traces (host.readers.wrappers, trace).

Against the in-process sample card (tests/unit/cards.py): the echo applet's
`80 02 P1P2` returns P1P2 bytes (0, 1, 2, ... mod 256) and `80 01` echoes its
data, after any command chaining the runtime assembled. Card behaviours the
sample card cannot show (6Cxx to a case 2 command, a card announcing data
forever) use a scripted reader.
"""

from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from applets.sample import ECHO_AID, EchoApplet
from card.apdu import CommandApdu, cla_channel
from card.atr import build_atr
from card.runtime import CardRuntime
from host import trace as trace_mod
from host.readers.base import Reader, ReaderError
from host.readers.inprocess import InProcessReader
from host.readers.wrappers import ChainingReader, GetResponseReader, get_response_cla
from host.trace import (
    Exchange,
    ExchangeList,
    TracingReader,
    exchange_record,
    format_command,
    format_response,
    split_command,
    use_colour,
)
from tests.unit.cards import sample_card, select

SELECT_ECHO = bytes.fromhex(select(ECHO_AID))
_SPEC_MODULES = ("apdu_specs", "apdu_specs.values")


@pytest.fixture(autouse=True)
def _plain_traces(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Traces without apdu_specs (a package of its own, tested on its own); the tests
    that check annotations install a stand-in."""
    for name in _SPEC_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    trace_mod._specs_api.cache_clear()
    yield
    trace_mod._specs_api.cache_clear()


def pattern(n: int) -> bytes:
    return bytes(i & 0xFF for i in range(n))


def generate(n: int, le: int | None = None, cla: int = 0x80) -> bytes:
    """The echo applet's GENERATE: n bytes of 00 01 02 ... (P1P2 = n)."""
    return CommandApdu(cla, 0x02, n >> 8, n & 0xFF, b"", le).to_bytes()


def wired(card: CardRuntime | None = None) -> tuple[Reader, ExchangeList]:
    """An in-process reader with the echo applet selected, recording the wire exchanges."""
    card = card or sample_card()
    wire = ExchangeList()
    raw = TracingReader(InProcessReader(card), fmt="none", sinks=[wire])
    raw.connect()
    assert raw.transmit(SELECT_ECHO) == b"\x90\x00"
    wire.clear()
    return raw, wire


class Scripted(Reader):
    """A card that answers from a function of the command; records what it was sent."""

    name = "scripted"

    def __init__(self, answer: Callable[[bytes], bytes], atr: bytes = b"") -> None:
        self.answer = answer
        self.sent: list[bytes] = []
        self.atr = atr

    def connect(self) -> bytes:
        return self.atr

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.answer(apdu)


# -- GET RESPONSE ---------------------------------------------------------------------


def test_61xx_is_fetched_with_get_response() -> None:
    raw, wire = wired()
    assert raw.transmit(generate(16)) == b"\x61\x10"  # unwrapped: the card holds the data back
    wire.clear()
    assert GetResponseReader(raw).transmit(generate(16)) == pattern(16) + b"\x90\x00"
    assert [e.command.hex().upper() for e in wire] == ["80020010", "00C0000010"]


def test_long_response_takes_several_get_responses() -> None:
    raw, wire = wired()
    resp = GetResponseReader(raw).transmit(generate(500))
    assert resp == pattern(500) + b"\x90\x00"
    # 6100 announces "256 or more": GET RESPONSE with Le 00, then the 244 left.
    assert [e.command.hex().upper() for e in wire] == ["800201F4", "00C0000000", "00C00000F4"]
    assert [e.sw for e in wire] == [0x6100, 0x61F4, 0x9000]


def test_partial_le_then_the_rest() -> None:
    raw, _ = wired()
    assert GetResponseReader(raw).transmit(generate(40, le=8)) == pattern(40) + b"\x90\x00"


def test_get_response_keeps_the_logical_channel() -> None:
    card = sample_card()
    raw, wire = wired(card)
    assert raw.transmit(bytes.fromhex("0070000001")) == b"\x01\x90\x00"
    assert raw.transmit(bytes.fromhex(select(ECHO_AID, cla=0x01))) == b"\x90\x00"
    wire.clear()
    resp = GetResponseReader(raw).transmit(generate(32, cla=0x81))
    assert resp == pattern(32) + b"\x90\x00"
    # On channel 0 the card has nothing pending: a CLA 00 GET RESPONSE would get 6985.
    assert wire[1].command[0] == 0x01


def test_get_response_on_a_further_interindustry_channel() -> None:
    card = sample_card()
    raw, wire = wired(card)
    assert raw.transmit(bytes.fromhex("00700005")) == b"\x90\x00"  # open channel 5
    assert raw.transmit(bytes.fromhex(select(ECHO_AID, cla=0x41))) == b"\x90\x00"
    wire.clear()
    assert GetResponseReader(raw).transmit(generate(20, cla=0xC1)) == pattern(20) + b"\x90\x00"
    assert wire[1].command[:2] == b"\x41\xc0"


@given(st.integers(0, 0xFF).filter(lambda c: c != 0xA0))
def test_get_response_cla_addresses_the_same_channel(cla: int) -> None:
    gr = get_response_cla(cla)
    assert cla_channel(gr) == cla_channel(cla)
    assert gr & 0x80 == 0 and gr & 0x10 == 0  # interindustry, not chained
    assert gr & 0x0C == 0 or gr & 0x40  # no secure messaging bits on channels 0-3


def test_gsm_class_9fxx() -> None:
    raw, wire = wired()
    gsm = generate(5, cla=0xA0)
    assert raw.transmit(gsm) == b"\x9f\x05"
    assert GetResponseReader(raw).transmit(gsm) == pattern(5) + b"\x90\x00"
    assert wire[-1].command.hex().upper() == "A0C0000005"
    # Turned off, 9Fxx comes back as it is.
    assert GetResponseReader(raw, gsm=False).transmit(gsm) == b"\x9f\x05"


def test_9fxx_for_another_class_is_left_alone() -> None:
    card = Scripted(lambda apdu: b"\x9f\x10")
    assert GetResponseReader(card).transmit(bytes.fromhex("80F2000000")) == b"\x9f\x10"
    assert len(card.sent) == 1


def test_6cxx_on_get_response_resends_with_the_exact_le() -> None:
    raw, wire = wired()
    assert raw.transmit(generate(16)) == b"\x61\x10"
    wire.clear()
    # GET RESPONSE asking for more than is pending: the runtime answers 6C10.
    resp = GetResponseReader(raw).transmit(bytes.fromhex("00C0000020"))
    assert resp == pattern(16) + b"\x90\x00"
    assert [e.command.hex().upper() for e in wire] == ["00C0000020", "00C0000010"]
    assert wire[0].sw == 0x6C10


def test_6cxx_on_a_case_2_command() -> None:
    def card(apdu: bytes) -> bytes:
        # A card that insists on Le = 08 exactly, as many real cards do for READ BINARY.
        return b"\x6c\x08" if apdu[4] != 8 else bytes(range(8)) + b"\x90\x00"

    c = Scripted(card)
    assert GetResponseReader(c).transmit(bytes.fromhex("00B0000000")) == bytes(range(8)) + (
        b"\x90\x00"
    )
    assert [a.hex().upper() for a in c.sent] == ["00B0000000", "00B0000008"]


def test_6cxx_then_61xx() -> None:
    def card(apdu: bytes) -> bytes:
        if apdu == bytes.fromhex("80CA9F7F00"):
            return b"\x6c\x2d"
        if apdu == bytes.fromhex("80CA9F7F2D"):
            return b"\x61\x03"
        assert apdu == bytes.fromhex("00C0000003")
        return b"abc\x90\x00"

    assert GetResponseReader(Scripted(card)).transmit(bytes.fromhex("80CA9F7F00")) == (
        b"abc\x90\x00"
    )


def test_a_card_announcing_data_it_never_sends_is_an_error() -> None:
    card = Scripted(lambda apdu: b"\x61\x10")
    with pytest.raises(ReaderError, match="no data"):
        GetResponseReader(card).transmit(bytes.fromhex("80CA000000"))


def test_a_card_announcing_data_forever_is_an_error() -> None:
    card = Scripted(lambda apdu: b"x" * 255 + b"\x61\xff")
    with pytest.raises(ReaderError, match="kept announcing"):
        GetResponseReader(card).transmit(bytes.fromhex("80CA000000"))
    assert len(card.sent) < 300


def test_short_response_is_a_reader_error() -> None:
    with pytest.raises(ReaderError, match="status word"):
        GetResponseReader(Scripted(lambda apdu: b"\x90")).transmit(b"\x00\xa4\x00\x00")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 1200), le=st.one_of(st.none(), st.integers(1, 256)))
def test_get_response_returns_everything(n: int, le: int | None) -> None:
    raw, _ = wired()
    assert GetResponseReader(raw).transmit(generate(n, le)) == pattern(n) + b"\x90\x00"


# -- command chaining -----------------------------------------------------------------


def echo(data: bytes, cla: int = 0x00, le: int | None = 65536) -> bytes:
    """ECHO with an interindustry CLA: the runtime assembles chains only for those."""
    return CommandApdu(cla, 0x01, 0x00, 0x00, data, le).to_bytes()


def short_only_card() -> CardRuntime:
    """A card whose ATR does not announce extended Lc/Le."""
    atr = build_atr((0, 1), extended_length=False).to_bytes()
    rt = CardRuntime(atr=atr, rng_seed=1)
    rt.install(EchoApplet, ECHO_AID, default=True)
    return rt


def test_chaining_always_splits_into_255_byte_parts() -> None:
    raw, wire = wired()
    data = bytes(range(256)) * 2 + bytes(88)  # 600 bytes
    resp = GetResponseReader(ChainingReader(raw, always=True)).transmit(echo(data))
    assert resp == data + b"\x90\x00"
    parts = [e.command for e in wire if e.command[1] == 0x01]
    assert [p[0] for p in parts] == [0x10, 0x10, 0x00]  # CLA b5 on all but the last
    assert [p[4] for p in parts] == [255, 255, 90]  # short Lc
    assert b"".join(CommandApdu.from_bytes(p).data for p in parts) == data
    assert CommandApdu.from_bytes(parts[-1]).le == 256  # the last part carries Le
    assert all(CommandApdu.from_bytes(p).le is None for p in parts[:-1])


def test_auto_sends_extended_length_when_the_card_announces_it() -> None:
    raw, wire = wired()
    data = bytes(300)
    chain = ChainingReader(raw)
    assert chain.transmit(echo(data)) == data + b"\x90\x00"
    assert len(wire) == 1 and wire[0].command == echo(data)
    assert chain.extended is True  # learnt from the ATR's card capabilities


def test_auto_chains_when_the_card_takes_short_apdus_only() -> None:
    raw, wire = wired(short_only_card())
    chain = ChainingReader(raw)
    data = bytes(range(256)) + bytes(range(44))
    assert GetResponseReader(chain).transmit(echo(data)) == data + b"\x90\x00"
    assert chain.extended is False
    assert [e.command[0] for e in wire if e.command[1] == 0x01] == [0x10, 0x00]


def test_chaining_reads_the_atr_on_connect() -> None:
    chain = ChainingReader(InProcessReader(short_only_card()))
    assert chain.extended is None
    chain.connect()
    assert chain.extended is False


def test_short_commands_pass_through_unchanged() -> None:
    raw, wire = wired(short_only_card())
    cmd = echo(bytes(255), le=256)
    assert ChainingReader(raw, always=True).transmit(cmd)[:-2] == bytes(255)
    assert [e.command for e in wire] == [cmd]


def test_smaller_parts() -> None:
    raw, wire = wired()
    data = bytes(range(250))
    resp = GetResponseReader(ChainingReader(raw, always=True, chunk=100)).transmit(echo(data))
    assert resp == data + b"\x90\x00"
    assert [e.command[4] for e in wire if e.command[1] == 0x01] == [100, 100, 50]


def test_a_refused_part_ends_the_chain() -> None:
    card = Scripted(lambda apdu: b"\x68\x84")  # chaining not supported
    resp = ChainingReader(card, always=True).transmit(echo(bytes(600)))
    assert resp == b"\x68\x84"
    assert len(card.sent) == 1 and card.sent[0][0] == 0x10


def test_chaining_keeps_the_channel_bits() -> None:
    card = Scripted(lambda apdu: b"\x90\x00")
    ChainingReader(card, always=True).transmit(echo(bytes(300), cla=0x03))
    assert [a[0] for a in card.sent] == [0x13, 0x03]


def test_chunk_out_of_range() -> None:
    with pytest.raises(ValueError):
        ChainingReader(Scripted(lambda a: b"\x90\x00"), chunk=256)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=0, max_size=1500), always=st.booleans())
def test_chained_echo_round_trip(data: bytes, always: bool) -> None:
    raw, _ = wired(short_only_card())
    stack = GetResponseReader(ChainingReader(raw, always=always))
    cmd = echo(data, le=None if not data else 65536)
    if not data:
        cmd = bytes.fromhex("00010000")
    assert stack.transmit(cmd) == data + b"\x90\x00"


# -- traces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hexapdu, parts",
    [
        ("00A40000", {"header": "00A40000"}),
        ("00B0000010", {"header": "00B00000", "le": "10"}),
        ("00A4000C023F00", {"header": "00A4000C", "lc": "02", "data": "3F00"}),
        ("00A4040002A00000", {"header": "00A40400", "lc": "02", "data": "A000", "le": "00"}),
        ("00B00000000100", {"header": "00B00000", "le": "000100"}),
        (
            "8001000000000201020000",
            {"header": "80010000", "lc": "000002", "data": "0102", "le": "0000"},
        ),
        ("00A4", {"raw": "00A4"}),
    ],
)
def test_split_command(hexapdu: str, parts: dict[str, str]) -> None:
    assert split_command(bytes.fromhex(hexapdu)) == parts


def test_trace_lines_without_colour() -> None:
    assert format_command(bytes.fromhex("00A4040002A00000")) == ">> 00A40400 02 A000 00"
    assert format_command(b"\x00\xa4") == ">> 00A4 (malformed)"
    line = format_response(bytes.fromhex("01029000"), 0.00125)
    assert line == "<< 0102 9000 (Normal processing: no further qualification) [1.25 ms]"
    assert format_response(b"\x6a\x82").startswith("<< 6A82 (File or application not found)")
    assert "\x1b" not in format_command(bytes.fromhex("00A4040002A00000"))


def test_colour_marks_the_status_word() -> None:
    assert "\x1b[31m6A82" in format_response(b"\x6a\x82", colour=True)
    assert "\x1b[32m9000" in format_response(b"\x90\x00", colour=True)
    assert "\x1b[33m63C2" in format_response(b"\x63\xc2", colour=True)
    assert format_command(b"\x00\xa4\x00\x00", colour=True).startswith("\x1b[36m>> ")


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_tty_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(FakeTty()) is True
    assert use_colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "")  # any value, even empty, turns colour off
    assert use_colour(FakeTty()) is False
    out = FakeTty()
    reader = TracingReader(InProcessReader(sample_card()), out)
    reader.transmit(bytes.fromhex("8050000004"))
    assert "\x1b" not in out.getvalue()


def test_tracing_reader_text_and_json() -> None:
    out = io.StringIO()
    sink = ExchangeList()
    reader = TracingReader(InProcessReader(sample_card()), out, sinks=[sink])
    resp = reader.transmit(bytes.fromhex("8050000004"))
    assert resp == bytes.fromhex("000000009000")
    lines = out.getvalue().splitlines()
    assert lines[0] == ">> 80500000 04"
    assert lines[1].startswith("<< 00000000 9000 (Normal processing")
    assert lines[1].endswith(" ms]")
    assert sink[0].command == bytes.fromhex("8050000004") and sink[0].response == resp
    reader.reset()
    assert out.getvalue().splitlines()[-1].startswith("-- reset, ATR 3B")

    out = io.StringIO()
    reader = TracingReader(InProcessReader(sample_card()), out, fmt="json")
    reader.transmit(bytes.fromhex("0020000100"))
    rec = json.loads(out.getvalue())
    assert set(rec) == {"command", "response", "sw", "sw_meaning", "name", "fields", "ms"}
    assert rec["command"] == "0020000100" and rec["response"] == "" and rec["sw"] == "63C3"
    assert rec["sw_meaning"] == "Verification failed, 3 tries left"
    assert isinstance(rec["ms"], float)


def test_exchange_record_keys_and_values() -> None:
    rec = Exchange(bytes.fromhex("00B0000002"), bytes.fromhex("AB CD 90 00"), 0.0015).record()
    assert rec["command"] == "00B0000002"
    assert rec["response"] == "ABCD" and rec["sw"] == "9000" and rec["ms"] == 1.5
    assert exchange_record(b"\x00\xa4\x00\x00", b"\x90", None)["sw"] is None


@pytest.fixture
def fake_specs(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A stand-in apdu_specs with decode_command / decode_response."""
    mod = types.ModuleType("apdu_specs")

    def decode_command(raw: bytes) -> dict[str, object] | None:
        if raw[1] == 0xA4:
            return {"name": "SELECT", "fields": {"p1": "by DF name", "aid": raw[5 : 5 + raw[4]]}}
        if raw[1] == 0xFF:
            raise ValueError("decoder bug")
        return None

    def decode_response(spec: object, response: bytes, command: object) -> object:
        assert command is not None  # the decoded command comes along
        return {"fields": {"fci": response[:-2]}}

    mod.decode_command = decode_command  # type: ignore[attr-defined]
    mod.decode_response = decode_response  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "apdu_specs", mod)
    trace_mod._specs_api.cache_clear()
    yield mod
    trace_mod._specs_api.cache_clear()


def test_annotations_from_apdu_specs(fake_specs: types.ModuleType) -> None:
    cmd = bytes.fromhex("00A4040002A00000")
    line = format_command(cmd)
    assert line == ">> 00A40400 02 A000 00  SELECT p1=by DF name aid=A000"
    rec = exchange_record(cmd, bytes.fromhex("6F009000"), 0.001)
    assert rec["name"] == "SELECT"
    assert rec["fields"] == {"p1": "by DF name", "aid": "A000", "response": {"fci": "6F00"}}
    # A decoder that fails, or knows nothing, leaves the trace unannotated.
    assert format_command(bytes.fromhex("00FF0000")) == ">> 00FF0000"
    assert exchange_record(bytes.fromhex("00B0000001"), b"\x90\x00", None)["name"] is None


def test_no_apdu_specs_means_no_annotation() -> None:
    # The autouse fixture makes `import apdu_specs` fail.
    assert trace_mod._specs_api() is None
    assert format_command(bytes.fromhex("00A4040002A00000")) == ">> 00A40400 02 A000 00"
    rec = exchange_record(bytes.fromhex("00A4040002A00000"), b"\x90\x00", None)
    assert rec["name"] is None and rec["fields"] == {}


class FakeSession:
    """The shape of apdu_specs' DecodeSession: follows what was selected, across exchanges."""

    def __init__(self) -> None:
        self.selected: str | None = None
        self.resets = 0
        self._last = b""

    def reset(self) -> None:
        self.resets += 1
        self.selected = None

    def command(self, raw: bytes) -> types.SimpleNamespace:
        self._last = raw
        spec = object()
        if raw[1] == 0xA4:
            name, summary = "SELECT", f"SELECT by DF name {raw[5:7].hex().upper()}"
            fields = {"params": {"p1": "by DF name"}, "data": raw[5:7], "cla": 0}
        elif raw[1] == 0xB0:
            name, summary, fields = "READ BINARY", f"READ BINARY of {self.selected}", {}
        else:
            name, summary, fields, spec = "INS ??", "unknown command", {}, None
        return types.SimpleNamespace(
            name=name, summary=summary, fields=fields, spec=spec, issues=[]
        )

    def response(self, raw: bytes) -> types.SimpleNamespace:
        sw = int.from_bytes(raw[-2:], "big")
        if self._last[1] == 0xA4 and sw == 0x9000:
            self.selected = self._last[5:7].hex().upper()
        return types.SimpleNamespace(
            name="SELECT",
            summary=f"{sw:04X} ({trace_mod.describe(sw)}): FCI, 2 bytes",
            fields={"sw": sw, "data": raw[:-2]},
            spec=object() if self._last[1] != 0x01 else None,
            issues=["6F00 is odd here"] if raw[:-2] == b"\x6f\x00" else [],
        )


@pytest.fixture
def session_specs(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    mod = types.ModuleType("apdu_specs")
    mod.DecodeSession = FakeSession  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "apdu_specs", mod)
    trace_mod._specs_api.cache_clear()
    yield mod
    trace_mod._specs_api.cache_clear()


def test_a_decoding_session_follows_the_exchanges(session_specs: types.ModuleType) -> None:
    card = Scripted(lambda apdu: b"\x6f\x00\x90\x00" if apdu[1] == 0xA4 else b"\x90\x00")
    out = io.StringIO()
    sink = ExchangeList()
    reader = TracingReader(card, out, sinks=[sink])
    reader.transmit(bytes.fromhex("00A4040002A00000"))
    reader.transmit(bytes.fromhex("00B0000001"))
    reader.transmit(bytes.fromhex("80010000"))  # unknown to the decoder: no annotation
    reader.reset()
    reader.transmit(bytes.fromhex("00B0000001"))
    lines = out.getvalue().splitlines()
    assert lines[0] == ">> 00A40400 02 A000 00  SELECT by DF name A000"
    # The SW's meaning is not repeated; issues are flagged.
    assert lines[1].startswith("<< 6F00 9000 (Normal processing: no further qualification) [")
    assert lines[1].endswith(" ms]  FCI, 2 bytes (! 6F00 is odd here)")
    assert lines[2] == ">> 00B00000 01  READ BINARY of A000"  # the session knew the selection
    assert lines[4] == ">> 80010000"
    assert lines[5].startswith("<< 9000 (Normal processing") and lines[5].endswith(" ms]")
    assert lines[6].startswith("-- reset")
    assert lines[7] == ">> 00B00000 01  READ BINARY of None"  # the reset reached the session
    # Sinks get the annotations made in the session's context.
    rec = sink[1].record()
    assert rec["name"] == "READ BINARY"
    assert rec["fields"]["summary"] == "READ BINARY of A000"
    first = sink[0].record()
    assert first["fields"] == {
        "summary": "SELECT by DF name A000",
        "params": {"p1": "by DF name"},
        "data": "A000",
        "response": {"summary": "FCI, 2 bytes", "data": "6F00", "issues": ["6F00 is odd here"]},
    }


def test_applet_session_encodes_short_extended_and_chained_commands() -> None:
    """AppletSession.send: short, extended past 255 bytes, chained when asked; ApduError on SW."""
    from host.errors import ApduError
    from host.session import AppletSession, encode_command

    assert encode_command(0x00, 0xA4, 0x04, 0x0C, b"\xa0\x00") == bytes.fromhex("00A4040C02A000")
    assert encode_command(0x00, 0xCA, 0x00, 0x00, le=0) == bytes.fromhex("00CA000000")
    long = bytes(300)
    assert encode_command(0x00, 0xDA, 0, 0, long, le=0) == bytes.fromhex("00DA0000") + (
        b"\x00\x01\x2c" + long + b"\x00\x00"
    )

    class Recorder:
        name = "recorder"

        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def transmit(self, apdu: bytes) -> bytes:
            self.sent.append(apdu)
            return b"\x6a\x82" if apdu[1] == 0xB0 else b"\x01\x90\x00"

    class Chained(AppletSession):
        chained = True

    rec = Recorder()
    assert Chained(rec, b"").send(0x00, 0xDB, 0x3F, 0xFF, long) == b"\x01"
    assert [a[:2] for a in rec.sent] == [b"\x10\xdb", b"\x00\xdb"]
    assert rec.sent[0][4] == 255 and rec.sent[1][4] == 45
    with pytest.raises(ApduError) as e:
        AppletSession(rec, b"").send(0x00, 0xB0, 0, 0, le=0)
    assert e.value.sw == 0x6A82


def test_apdu_session_handles_61xx_and_6cxx_once_and_keeps_a_warning_data() -> None:
    """ApduSession.send: GET RESPONSE and the 6Cxx resend happen below it; a warning SW
    (6282) is an ApduError carrying the data; a status word alone is too short."""
    from host.errors import ApduError
    from host.readers.base import ReaderError
    from host.session import ApduSession

    def card(apdu: bytes) -> bytes:
        if apdu[1] == 0xC0:  # GET RESPONSE
            return b"\x02\x03\x90\x00"
        if apdu[1] == 0xCA:  # GET DATA: Le must be exact
            return b"\x01\x90\x00" if apdu[4:] == b"\x01" else b"\x6c\x01"
        if apdu[1] == 0xB0:  # READ BINARY past the end of the file
            return b"\xaa\x62\x82"
        if apdu[1] == 0xB2:
            return b"\x90"
        return b"\x61\x02"

    reader = Scripted(card)
    session = ApduSession(reader)
    assert session.send(0x00, 0x88, 0x00, 0x81, b"\x00") == b"\x02\x03"
    assert reader.sent[-1] == bytes.fromhex("00C0000002")
    assert session.send(0x00, 0xCA, 0x00, 0x66, le=0) == b"\x01"
    assert reader.sent[-1] == bytes.fromhex("00CA006601")
    with pytest.raises(ApduError) as e:
        session.send(0x00, 0xB0, 0x00, 0x00, le=0, what="READ BINARY 6F07")
    assert (e.value.sw, e.value.data, e.value.command) == (0x6282, b"\xaa", "READ BINARY 6F07")
    with pytest.raises(ReaderError):
        session.send(0x00, 0xB2, 0x01, 0x04, le=0)
    # A reader that fetches below its own wrapping is not wrapped again.
    assert ApduSession(reader, fetch=False).reader is reader
