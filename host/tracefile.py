"""Trace files: a session's exchanges as JSON lines, and their replay against a card.

Format (UTF-8, one JSON object a line):

- line 1, the header: `{"cardemu_trace": 1, "reader": NAME, "atr": HEX, "seed": N|null}`;
- one line per exchange, with the stable keys of `host.trace.Exchange.record`:
  `command`, `response` (data without SW), `sw`, `sw_meaning`, `name`,
  `fields`, `ms` (bytes as upper-case hex; `ms` may be null);
- `{"reset": "warm", "atr": HEX}` where the card was reset.

The exchanges are what went over the wire (GET RESPONSE and chained parts
included), so replaying the commands one by one reproduces the session.
`replay` sends every recorded command to a card and compares each response,
byte for byte, with the recorded one: a golden test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from host.readers.base import Reader
from host.trace import Exchange

TRACE_VERSION = 1


class TraceFormatError(ValueError):
    """A trace file that cannot be read; `line` is 1-based."""

    def __init__(self, message: str, line: int, source: str = "trace") -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.line = line


@dataclass(frozen=True)
class TraceHeader:
    """Where a trace was recorded: the reader, the card's ATR, the RNG seed if one was set."""

    reader: str
    atr: bytes
    seed: int | None = None

    def record(self) -> dict[str, Any]:
        return {
            "cardemu_trace": TRACE_VERSION,
            "reader": self.reader,
            "atr": self.atr.hex().upper(),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class ResetEvent:
    """The card was reset and answered `atr` (`line`: where in the trace, 0 if unknown)."""

    atr: bytes
    line: int = 0


@dataclass(frozen=True)
class TracedExchange:
    """An exchange read back from a trace, with the line it was on."""

    line: int
    exchange: Exchange


Event = TracedExchange | ResetEvent


@dataclass(frozen=True)
class Trace:
    header: TraceHeader
    events: tuple[Event, ...]

    @property
    def exchanges(self) -> list[Exchange]:
        return [e.exchange for e in self.events if isinstance(e, TracedExchange)]


class TraceWriter:
    """A `TraceSink` writing a trace file as the exchanges happen.

    Args:
        stream: an open text stream (the writer does not close it unless it opened it).
        header: written at once, as the first line.
        timing: write `ms` (set False for reproducible golden files: `ms` is null).
        decode: annotate with `apdu_specs` (name, fields).
    """

    def __init__(
        self,
        stream: IO[str],
        header: TraceHeader,
        *,
        timing: bool = True,
        decode: bool = True,
        _owned: bool = False,
    ) -> None:
        self.stream = stream
        self.timing = timing
        self.decode = decode
        self._owned = _owned
        self._write(header.record())

    @classmethod
    def create(
        cls, path: str | Path, header: TraceHeader, *, timing: bool = True, decode: bool = True
    ) -> TraceWriter:
        """Open `path` for writing (truncating it) and write the header."""
        stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        return cls(stream, header, timing=timing, decode=decode, _owned=True)

    def _write(self, obj: dict[str, Any]) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()

    def exchange(self, ex: Exchange) -> None:
        if not self.timing:
            ex = replace(ex, seconds=None)
        # In clear, PINs and keys included: a trace file is made to be replayed
        # (`cardemu replay`), which needs every byte; the user asked for it by name.
        self._write(ex.record(decode=self.decode, reveal=True))

    def reset(self, atr: bytes) -> None:
        self._write({"reset": "warm", "atr": atr.hex().upper()})

    def close(self) -> None:
        if self._owned:
            self.stream.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hex(obj: dict[str, Any], key: str, line: int, source: str) -> bytes:
    value = obj.get(key)
    if value is None and key == "response":
        return b""
    if not isinstance(value, str):
        raise TraceFormatError(f"'{key}' must be a hex string", line, source)
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise TraceFormatError(f"'{key}' is not hex: {value!r}", line, source) from None


def parse_trace(lines: Iterable[str], source: str = "trace") -> Trace:
    """Read a trace from its lines.

    Raises:
        TraceFormatError: not JSON, no header, a missing key, a version we do not read.
    """
    header: TraceHeader | None = None
    events: list[Event] = []
    for no, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise TraceFormatError(f"not JSON: {e.msg}", no, source) from None
        if not isinstance(obj, dict):
            raise TraceFormatError("each line must be a JSON object", no, source)
        if header is None:
            version = obj.get("cardemu_trace")
            if version is None:
                raise TraceFormatError("the first line must be the trace header", no, source)
            if version != TRACE_VERSION:
                raise TraceFormatError(f"trace version {version} is not supported", no, source)
            seed = obj.get("seed")
            header = TraceHeader(
                str(obj.get("reader", "")),
                _hex(obj, "atr", no, source) if obj.get("atr") else b"",
                seed if isinstance(seed, int) else None,
            )
            continue
        if "reset" in obj:
            events.append(ResetEvent(_hex(obj, "atr", no, source), no))
            continue
        if "command" not in obj:
            raise TraceFormatError("neither an exchange nor a reset", no, source)
        command = _hex(obj, "command", no, source)
        response = _hex(obj, "response", no, source)
        sw = obj.get("sw")
        if sw is not None:
            response += _hex(obj, "sw", no, source)
        ms = obj.get("ms")
        seconds = ms / 1000 if isinstance(ms, int | float) else None
        events.append(TracedExchange(no, Exchange(command, response, seconds)))
    if header is None:
        raise TraceFormatError("empty trace: no header", 1, source)
    return Trace(header, tuple(events))


def read_trace(path: str | Path) -> Trace:
    """Read a trace file.

    Raises:
        OSError: the file cannot be read.
        TraceFormatError: see `parse_trace`.
    """
    with open(path, encoding="utf-8") as f:
        return parse_trace(f, str(path))


@dataclass(frozen=True)
class Difference:
    """A replayed response that differs from the recorded one.

    Attributes:
        index: 1-based number of the exchange in the trace (0 for the ATR at connect).
        line: the trace line.
        command: the command sent.
        expected: the recorded response (data + SW), or the recorded ATR.
        got: what the card answered.
        reset: the difference is in the ATR after a reset.
    """

    index: int
    line: int
    command: bytes
    expected: bytes
    got: bytes
    reset: bool = False

    def __str__(self) -> str:
        if self.index == 0:
            what = "ATR"
        elif self.reset:
            what = f"ATR after the reset on line {self.line}"
        else:
            what = f"exchange {self.index} (line {self.line})"
        cmd = f" to {self.command.hex().upper()}" if self.command else ""
        return f"{what}: expected {self.expected.hex().upper()}, got {self.got.hex().upper()}{cmd}"


@dataclass
class ReplayResult:
    replayed: int
    differences: list[Difference]

    @property
    def equal(self) -> bool:
        return not self.differences


def replay(
    trace: Trace,
    reader: Reader,
    *,
    atr: bytes | None = None,
    keep_going: bool = False,
    on_exchange: Callable[[int, Exchange, bytes], None] | None = None,
) -> ReplayResult:
    """Send a trace's commands to a connected reader and compare every response.

    Args:
        trace: from `read_trace`.
        reader: a connected reader (its card in the state the trace started from).
        atr: the ATR the reader gave at connect, compared with the header's when both
            are known.
        keep_going: compare every exchange instead of stopping at the first difference.
        on_exchange: called with (index, recorded exchange, response got).
    """
    diffs: list[Difference] = []
    if atr is not None and trace.header.atr and atr != trace.header.atr:
        diffs.append(Difference(0, 1, b"", trace.header.atr, atr))
        if not keep_going:
            return ReplayResult(0, diffs)
    done = 0
    for index, ev in _numbered(trace.events):
        if isinstance(ev, ResetEvent):
            got_atr = reader.reset()
            if got_atr != ev.atr:
                diffs.append(Difference(index, ev.line, b"", ev.atr, got_atr, reset=True))
                if not keep_going:
                    break
            continue
        recorded = ev.exchange
        got = reader.transmit(recorded.command)
        done += 1
        if on_exchange:
            on_exchange(index, recorded, got)
        if got != recorded.response:
            diffs.append(Difference(index, ev.line, recorded.command, recorded.response, got))
            if not keep_going:
                break
    return ReplayResult(done, diffs)


def _numbered(events: Iterable[Event]) -> Iterator[tuple[int, Event]]:
    """Exchanges numbered 1, 2, ...; a reset carries the number of the next exchange."""
    n = 0
    for ev in events:
        if isinstance(ev, TracedExchange):
            n += 1
            yield n, ev
        else:
            yield n + 1, ev
