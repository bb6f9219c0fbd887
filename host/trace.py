"""APDU traces: `>>` / `<<` lines split into header, Lc, data, Le; the command name; the SW.

One traced exchange is an `Exchange`. It renders three ways:

- a text trace (`format_command` / `format_response`): the command split into
  header, Lc, data and Le (ISO/IEC 7816-3 §12.1), the command name and decoded
  fields from `apdu_specs` when that package can decode it, the status word
  with its meaning (ISO/IEC 7816-4 §5.1.3) and the time taken;
- a JSON object with stable keys (`record`): command, response, sw,
  sw_meaning, name, fields, ms — bytes as upper-case hex, `response` being the
  data field without the SW;
- whatever a `TraceSink` makes of it (host/tracefile.py writes trace files).

Traces go to stderr (results go to stdout). Colour only on a TTY, and never
when NO_COLOR is set (https://no-color.org). Traces carry every byte of every
exchange, PINs and keys included.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol

from card.apdu import ApduFormatError, CommandApdu
from card.sw import describe
from host.readers.base import Reader

log = logging.getLogger("cardemu.trace")

TraceFormat = Literal["text", "json", "none"]

_CYAN, _GREEN, _YELLOW, _RED, _BOLD, _DIM, _RESET = (
    "\x1b[36m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[31m",
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[0m",
)


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (any value, https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


# -- decoding through apdu_specs (optional) ---------------------------------------------


@dataclass(frozen=True)
class Annotation:
    """What `apdu_specs` says about one APDU: a name and decoded fields (JSON-ready)."""

    name: str | None = None
    fields: Mapping[str, Any] | None = None


_NONE = Annotation()


@functools.cache
def _decoders() -> tuple[Callable[..., Any] | None, Callable[..., Any] | None]:
    """apdu_specs' decode_command / decode_response, or None where missing.

    Cached (an immutable pair, looked up once): importing is the expensive part.
    """
    try:
        import apdu_specs
    except ImportError:
        return None, None
    cmd = getattr(apdu_specs, "decode_command", None)
    resp = getattr(apdu_specs, "decode_response", None)
    return (cmd if callable(cmd) else None), (resp if callable(resp) else None)


def json_safe(value: Any) -> Any:
    """A decoded value as JSON: bytes as upper-case hex, enums by name, tuples as lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if hasattr(value, "items") and callable(value.items):  # construct's Container
        return {str(k): json_safe(v) for k, v in value.items() if not str(k).startswith("_")}
    return str(value)


def _normalise(result: Any) -> Annotation:
    """Accept what a decoder returns: None, a mapping with name/fields, or an object."""
    if result is None:
        return _NONE
    if isinstance(result, str):
        return Annotation(result, None)
    if isinstance(result, Mapping):
        name = result.get("name")
        fields = result.get("fields")
        if fields is None:
            fields = {k: v for k, v in result.items() if k != "name"}
    else:
        name = getattr(result, "name", None)
        fields = getattr(result, "fields", None)
    safe = json_safe(fields) if fields else None
    return Annotation(
        str(name) if name is not None else None, safe if isinstance(safe, dict) else None
    )


def annotate_command(raw: bytes) -> Annotation:
    """Name and fields of a command APDU from `apdu_specs`; empty when it cannot say."""
    decode, _ = _decoders()
    if decode is None:
        return _NONE
    try:
        return _normalise(decode(raw))
    except Exception as e:  # noqa: BLE001 - a decoder's failure must never break a trace
        log.debug("apdu_specs could not decode command %s: %s", raw.hex(), e)
        return _NONE


def annotate_response(command: bytes | None, response: bytes) -> Annotation:
    """Decoded fields of a response APDU (data + SW) from `apdu_specs`, given its command."""
    _, decode = _decoders()
    if decode is None:
        return _NONE
    try:
        params = len(inspect.signature(decode).parameters)
    except (TypeError, ValueError):
        params = 1
    try:
        if params >= 2:
            return _normalise(decode(command, response))
        return _normalise(decode(response))
    except Exception as e:  # noqa: BLE001 - a decoder's failure must never break a trace
        log.debug("apdu_specs could not decode response %s: %s", response.hex(), e)
        return _NONE


# -- splitting and formatting ---------------------------------------------------------


def split_command(raw: bytes) -> dict[str, str]:
    """Header, Lc, data and Le of a command APDU as hex fields (Lc/Le as encoded).

    A malformed APDU comes back as {"raw": hex}.
    """
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduFormatError:
        return {"raw": raw.hex().upper()}
    out = {"header": cmd.header.hex().upper()}
    body = raw[4:]
    nc = len(cmd.data)
    if nc:
        lc_len = 3 if cmd.extended else 1
        out["lc"] = body[:lc_len].hex().upper()
        out["data"] = cmd.data.hex().upper()
        body = body[lc_len + nc :]
    if cmd.le is not None:
        out["le"] = body.hex().upper()
    return out


def _render_fields(fields: Mapping[str, Any] | None) -> str:
    if not fields:
        return ""
    parts = []
    for k, v in fields.items():
        text = json.dumps(v, separators=(",", ":")) if isinstance(v, dict | list) else str(v)
        parts.append(f"{k}={text}")
    return " ".join(parts)


def format_command(raw: bytes, colour: bool = False, annotation: Annotation | None = None) -> str:
    """`>> header Lc data Le  NAME field=value ...` (the name only when apdu_specs knows it)."""
    f = split_command(raw)
    if "raw" in f:
        text = f"{f['raw']} (malformed)"
    else:
        text = " ".join(f[k] for k in ("header", "lc", "data", "le") if k in f)
    note = annotation if annotation is not None else annotate_command(raw)
    line = f"{_CYAN}>> {text}{_RESET}" if colour else f">> {text}"
    if note.name:
        line += f"  {_BOLD}{note.name}{_RESET}" if colour else f"  {note.name}"
    rendered = _render_fields(note.fields)
    if rendered:
        line += f" {_DIM}{rendered}{_RESET}" if colour else f" {rendered}"
    return line


def _sw_colour(sw: int) -> str:
    sw1 = sw >> 8
    if sw == 0x9000 or sw1 in (0x61, 0x9F):
        return _GREEN
    if sw1 in (0x62, 0x63):
        return _YELLOW
    return _RED


def format_response(
    raw: bytes,
    elapsed: float | None = None,
    colour: bool = False,
    annotation: Annotation | None = None,
) -> str:
    """`<< data SW (meaning) [ms]`, then decoded response fields when apdu_specs gives any."""
    if len(raw) < 2:
        return f"<< {raw.hex().upper()} (malformed response)"
    sw = (raw[-2] << 8) | raw[-1]
    data = raw[:-2].hex().upper()
    timing = f" [{elapsed * 1000:.2f} ms]" if elapsed is not None else ""
    sw_text = f"{sw:04X}"
    if colour:
        sw_text = f"{_sw_colour(sw)}{sw_text}{_RESET}"
    body = f"{data} " if data else ""
    line = f"<< {body}{sw_text} ({describe(sw)}){timing}"
    rendered = _render_fields(annotation.fields if annotation else None)
    if rendered:
        line += f"  {_DIM}{rendered}{_RESET}" if colour else f"  {rendered}"
    return line


# -- one exchange -----------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One command APDU and the response it got.

    Attributes:
        command: the command APDU as sent.
        response: the response APDU (data + SW1 SW2) as received.
        seconds: the time the exchange took, or None when not measured.
    """

    command: bytes
    response: bytes

    seconds: float | None = None

    @property
    def sw(self) -> int | None:
        r = self.response
        return (r[-2] << 8) | r[-1] if len(r) >= 2 else None

    @property
    def data(self) -> bytes:
        return self.response[:-2]

    def record(self, decode: bool = True) -> dict[str, Any]:
        """The exchange as a JSON-ready object with stable keys.

        Keys: command, response (data without SW), sw, sw_meaning, name, fields, ms.
        """
        return exchange_record(self.command, self.response, self.seconds, decode=decode)


def exchange_record(
    cmd: bytes, resp: bytes, elapsed: float | None, *, decode: bool = True
) -> dict[str, Any]:
    """One exchange as a JSON-ready object with stable keys (see `Exchange.record`)."""
    sw = (resp[-2] << 8) | resp[-1] if len(resp) >= 2 else None
    name: str | None = None
    fields: dict[str, Any] = {}
    if decode:
        c = annotate_command(cmd)
        r = annotate_response(cmd, resp)
        name = c.name
        fields = dict(c.fields or {})
        if r.fields:
            fields["response"] = dict(r.fields)
    return {
        "command": cmd.hex().upper(),
        "response": resp[:-2].hex().upper() if sw is not None else resp.hex().upper(),
        "sw": f"{sw:04X}" if sw is not None else None,
        "sw_meaning": describe(sw) if sw is not None else None,
        "name": name,
        "fields": fields,
        "ms": round(elapsed * 1000, 3) if elapsed is not None else None,
    }


class TraceSink(Protocol):
    """Something that keeps exchanges (a trace file, a list in a test)."""

    def exchange(self, ex: Exchange) -> None: ...

    def reset(self, atr: bytes) -> None: ...


class ExchangeList(list[Exchange]):
    """The simplest sink: a list of the exchanges (resets are not kept)."""

    def exchange(self, ex: Exchange) -> None:
        self.append(ex)

    def reset(self, atr: bytes) -> None:
        pass


class TracingReader(Reader):
    """A reader wrapper that traces every exchange.

    Args:
        inner: the reader to wrap.
        stream: where the human (or JSON) trace goes; stderr by default.
        fmt: "text" (`>>`/`<<` lines), "json" (one object per exchange and line)
            or "none" (sinks only).
        colour: force colour on or off; by default only on a TTY without NO_COLOR.
        sinks: further receivers of every exchange and reset (e.g. a trace file).
    """

    def __init__(
        self,
        inner: Reader,
        stream: IO[str] | None = None,
        *,
        fmt: TraceFormat = "text",
        colour: bool | None = None,
        sinks: Iterable[TraceSink] = (),
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.stream = stream if stream is not None else sys.stderr
        self.fmt = fmt
        self.colour = use_colour(self.stream) if colour is None else colour
        self.sinks = list(sinks)

    @property
    def atr(self) -> bytes:
        return getattr(self.inner, "atr", b"")

    def connect(self) -> bytes:
        return self.inner.connect()

    def reset(self) -> bytes:
        atr = self.inner.reset()
        if self.fmt == "text":
            print(f"-- reset, ATR {atr.hex().upper()}", file=self.stream)
        elif self.fmt == "json":
            print(json.dumps({"reset": "warm", "atr": atr.hex().upper()}), file=self.stream)
        for sink in self.sinks:
            sink.reset(atr)
        return atr

    def disconnect(self) -> None:
        self.inner.disconnect()

    def transmit(self, apdu: bytes) -> bytes:
        if self.fmt == "text":
            print(format_command(apdu, self.colour), file=self.stream, flush=True)
        t0 = time.perf_counter()
        resp = self.inner.transmit(apdu)
        ex = Exchange(apdu, resp, time.perf_counter() - t0)
        if self.fmt == "text":
            note = annotate_response(apdu, resp)
            print(format_response(resp, ex.seconds, self.colour, note), file=self.stream)
        elif self.fmt == "json":
            print(json.dumps(ex.record()), file=self.stream)
        for sink in self.sinks:
            sink.exchange(ex)
        return resp
