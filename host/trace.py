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
when NO_COLOR is set (https://no-color.org). Below the TRAFFIC level the data
field of PIN and key commands (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
COUNTER, PUT KEY...: `SECRET_INS`) is masked; at TRAFFIC (`cardemu --traffic`)
every byte of every exchange is shown, PINs and keys included.
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal, Protocol

from card.apdu import ApduFormatError, CommandApdu
from card.sw import describe
from host.log import TRAFFIC, traffic_enabled
from host.readers.base import Reader
from host.readers.wrappers import ReaderWrapper
from host.redact import command_hex, data_span, hidden, masked_text

log = logging.getLogger("cardemu.trace")
traffic_log = logging.getLogger("cardemu.traffic")
"""Where every APDU exchange is logged at the TRAFFIC level (`cardemu --traffic`)."""

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
    """What `apdu_specs` says about one APDU.

    Attributes:
        name: the command's name (None when apdu_specs does not know the command).
        summary: one line for the trace (the name and its parameters, or the decoded
            response data).
        fields: JSON-ready decoded fields.
    """

    name: str | None = None
    summary: str | None = None
    fields: Mapping[str, Any] | None = None


_NONE = Annotation()


@dataclass(frozen=True)
class _SpecsApi:
    session: Callable[[], Any] | None
    decode_command: Callable[..., Any] | None
    decode_response: Callable[..., Any] | None
    to_json: Callable[[Any], Any] | None


@functools.cache
def _specs_api() -> _SpecsApi | None:
    """apdu_specs' decoding entry points, or None when it cannot decode.

    Looked up once (an immutable result) in `apdu_specs`: a `DecodeSession` (which
    follows SELECTs and GET RESPONSE) or module-level `decode_command` /
    `decode_response` (and `to_json` from `apdu_specs.values`).
    """
    found: dict[str, Any] = {}
    for module_name in ("apdu_specs", "apdu_specs.values"):
        try:
            module = importlib.import_module(module_name)
        except Exception as e:  # noqa: BLE001 - a package being written must not break traces
            log.debug("apdu_specs unavailable (%s): %s", module_name, e)
            continue
        for attr in ("DecodeSession", "decode_command", "decode_response", "to_json"):
            value = getattr(module, attr, None)
            if callable(value):
                found.setdefault(attr, value)
    if "DecodeSession" not in found and "decode_command" not in found:
        return None
    return _SpecsApi(
        found.get("DecodeSession"),
        found.get("decode_command"),
        found.get("decode_response"),
        found.get("to_json"),
    )


def json_safe(value: Any) -> Any:
    """A decoded value as JSON: bytes as upper-case hex, enums by name, tuples as lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


def _json(api: _SpecsApi | None, value: Any) -> Any:
    if api is not None and api.to_json is not None:
        try:
            return api.to_json(value)
        except Exception:  # noqa: BLE001 - fall back to our own conversion
            pass
    return json_safe(value)


_PICKED = ("params", "data")


def _note(api: _SpecsApi | None, result: Any, kind: str, sw: int | None = None) -> Annotation:
    """An Annotation from what a decoder returned (a Decoded, a mapping, or None)."""
    if result is None:
        return _NONE
    if isinstance(result, Mapping):
        name = result.get("name")
        given = json_safe(result.get("fields")) if result.get("fields") else None
        summary = result.get("summary")
        return Annotation(
            str(name) if name is not None else None,
            str(summary) if summary else None,
            given if isinstance(given, dict) else None,
        )
    # apdu_specs' Decoded: with no spec, the command is unknown to it and it has
    # nothing to say that the trace does not show already.
    if hasattr(result, "spec") and result.spec is None:
        return _NONE
    name = getattr(result, "name", None)
    summary = str(getattr(result, "summary", "") or "")
    if kind == "response" and sw is not None:
        # The trace shows the SW and its meaning already.
        prefix = f"{sw:04X} ({describe(sw)})"
        summary = summary[len(prefix) :].lstrip(": ") if summary.startswith(prefix) else summary
    raw_fields = getattr(result, "fields", None) or {}
    fields: dict[str, Any] = {}
    if summary:
        fields["summary"] = summary
    for key in _PICKED:
        value = raw_fields.get(key) if isinstance(raw_fields, Mapping) else None
        if value is not None and value != b"" and value != {}:
            fields[key] = _json(api, value)
    issues = list(getattr(result, "issues", None) or ())
    if issues:
        fields["issues"] = issues
    return Annotation(
        str(name) if name is not None and kind == "command" else None,
        summary or None,
        fields or None,
    )


class Annotator:
    """Decodes a stream of exchanges with apdu_specs, when it is importable.

    With apdu_specs' `DecodeSession`, what each logical channel selected and
    the GET RESPONSE parts of one response are followed from one exchange to
    the next; call `reset` when the card is reset. Decoding never raises: a
    decoder's failure leaves the APDU unannotated.
    """

    def __init__(self) -> None:
        self._api = _specs_api()
        self._session: Any = None
        self._last: Any = None
        if self._api is not None and self._api.session is not None:
            try:
                self._session = self._api.session()
            except Exception as e:  # noqa: BLE001
                log.debug("apdu_specs DecodeSession failed: %s", e)

    def reset(self) -> None:
        self._last = None
        if self._session is not None:
            try:
                self._session.reset()
            except Exception as e:  # noqa: BLE001
                log.debug("apdu_specs DecodeSession.reset failed: %s", e)

    def command(self, raw: bytes) -> Annotation:
        """Annotate a command APDU (and remember it for the response that follows)."""
        self._last = None
        api = self._api
        if api is None:
            return _NONE
        try:
            if self._session is not None:
                decoded = self._session.command(raw)
            elif api.decode_command is not None:
                decoded = api.decode_command(raw)
            else:
                return _NONE
        except Exception as e:  # noqa: BLE001 - a decoder's failure must never break a trace
            log.debug("apdu_specs could not decode command %s: %s", raw.hex(), e)
            return _NONE
        self._last = decoded
        return _note(api, decoded, "command")

    def response(self, raw: bytes) -> Annotation:
        """Annotate a response APDU (data + SW) to the last command given to `command`."""
        api = self._api
        if api is None:
            return _NONE
        sw = (raw[-2] << 8) | raw[-1] if len(raw) >= 2 else None
        try:
            if self._session is not None:
                decoded = self._session.response(raw)
            elif api.decode_response is not None and self._last is not None:
                decoded = api.decode_response(getattr(self._last, "spec", None), raw, self._last)
            else:
                return _NONE
        except Exception as e:  # noqa: BLE001 - a decoder's failure must never break a trace
            log.debug("apdu_specs could not decode response %s: %s", raw.hex(), e)
            return _NONE
        return _note(api, decoded, "response", sw)


def annotate_command(raw: bytes) -> Annotation:
    """Name and fields of one command APDU from `apdu_specs`; empty when it cannot say."""
    return Annotator().command(raw)


def annotate_response(command: bytes | None, response: bytes) -> Annotation:
    """Decoded fields of one response APDU (data + SW) to `command`, from `apdu_specs`."""
    a = Annotator()
    if command is not None:
        a.command(command)
    return a.response(response)


# -- secrets (host.redact) ---------------------------------------------------------------

#: The decoded fields of a masked command that are kept (they come from the header).
_PUBLIC_FIELDS = ("summary", "params")


def _mask_fields(fields: Mapping[str, Any], nc: int) -> dict[str, Any]:
    out = {k: v for k, v in fields.items() if k in _PUBLIC_FIELDS}
    out["data"] = masked_text(nc)
    return out


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


def _note_text(note: Annotation) -> str:
    """The decoded part of a trace line: the summary, else the name and fields."""
    issues = (note.fields or {}).get("issues")
    if note.summary:
        text = note.summary
    else:
        text = " ".join(p for p in (note.name or "", _render_fields(note.fields)) if p)
    if issues and note.summary:
        text += f" (! {'; '.join(str(i) for i in issues)})"
    return text


def format_command(
    raw: bytes,
    colour: bool = False,
    annotation: Annotation | None = None,
    *,
    reveal: bool | None = None,
) -> str:
    """`>> header Lc data Le  SUMMARY` (the summary only when apdu_specs knows the command).

    Args:
        reveal: show the data of PIN and key commands (`SECRET_INS`); by default only
            when the TRAFFIC level is on, else `** n bytes masked **` stands in for it.
    """
    f = split_command(raw)
    hide = hidden(raw, reveal)
    if "raw" in f:
        shown = f"{raw[:5].hex().upper()} {masked_text(len(raw) - 5)}" if hide else f["raw"]
        text = f"{shown} (malformed)"
    else:
        if hide and "data" in f:
            f["data"] = masked_text(len(f["data"]) // 2)
        text = " ".join(f[k] for k in ("header", "lc", "data", "le") if k in f)
    note = annotation if annotation is not None else annotate_command(raw)
    line = f"{_CYAN}>> {text}{_RESET}" if colour else f">> {text}"
    decoded = _note_text(note)
    if decoded:
        line += f"  {_BOLD}{decoded}{_RESET}" if colour else f"  {decoded}"
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
    """`<< data SW (meaning) [ms]`, then the decoded response when apdu_specs gives any."""
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
    decoded = _note_text(annotation) if annotation is not None else ""
    if decoded:
        line += f"  {_DIM}{decoded}{_RESET}" if colour else f"  {decoded}"
    return line


# -- one exchange -----------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One command APDU and the response it got.

    Attributes:
        command: the command APDU as sent.
        response: the response APDU (data + SW1 SW2) as received.
        seconds: the time the exchange took, or None when not measured.
        notes: what apdu_specs said of the command and the response, when the
            exchange was decoded as it happened (in its session's context).
    """

    command: bytes
    response: bytes
    seconds: float | None = None
    notes: tuple[Annotation, Annotation] | None = field(default=None, compare=False)

    @property
    def sw(self) -> int | None:
        r = self.response
        return (r[-2] << 8) | r[-1] if len(r) >= 2 else None

    @property
    def data(self) -> bytes:
        return self.response[:-2]

    def record(self, decode: bool = True, reveal: bool | None = None) -> dict[str, Any]:
        """The exchange as a JSON-ready object with stable keys.

        Keys: command, response (data without SW), sw, sw_meaning, name, fields, ms.
        Secrets are masked unless `reveal` (see `exchange_record`).
        """
        return exchange_record(
            self.command,
            self.response,
            self.seconds,
            decode=decode,
            notes=self.notes,
            reveal=reveal,
        )


def exchange_record(
    cmd: bytes,
    resp: bytes,
    elapsed: float | None,
    *,
    decode: bool = True,
    notes: tuple[Annotation, Annotation] | None = None,
    reveal: bool | None = None,
) -> dict[str, Any]:
    """One exchange as a JSON-ready object with stable keys (see `Exchange.record`).

    `fields` holds the command's decoded fields and, under "response", the
    response's; `name` and `fields` are null / {} when apdu_specs cannot say.
    The data field of a PIN or key command (`SECRET_INS`) is `*` in `command` and
    `** n bytes masked **` in `fields` unless `reveal` (by default: only at the
    TRAFFIC level).
    """
    sw = (resp[-2] << 8) | resp[-1] if len(resp) >= 2 else None
    name: str | None = None
    fields: dict[str, Any] = {}
    if decode:
        if notes is None:
            annotator = Annotator()
            notes = annotator.command(cmd), annotator.response(resp)
        c, r = notes
        name = c.name
        fields = dict(c.fields or {})
        if r.fields:
            fields["response"] = dict(r.fields)
    command = command_hex(cmd, reveal)
    if hidden(cmd, reveal):
        response = fields.pop("response", None)
        start, end = data_span(cmd)
        fields = _mask_fields(fields, end - start) if fields else {}
        if response is not None:
            fields["response"] = response
    return {
        "command": command,
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


class TracingReader(ReaderWrapper):
    """A reader wrapper that traces every exchange.

    Args:
        inner: the reader to wrap.
        stream: where the human (or JSON) trace goes; stderr by default.
        fmt: "text" (`>>`/`<<` lines), "json" (one object per exchange and line)
            or "none" (sinks only).
        colour: force colour on or off; by default only on a TTY without NO_COLOR.
        sinks: further receivers of every exchange and reset (e.g. a trace file).
        decode: annotate with apdu_specs (one decoding session for the reader's life,
            so SELECTs and GET RESPONSE parts are followed).
    """

    def __init__(
        self,
        inner: Reader,
        stream: IO[str] | None = None,
        *,
        fmt: TraceFormat = "text",
        colour: bool | None = None,
        sinks: Iterable[TraceSink] = (),
        decode: bool = True,
    ) -> None:
        super().__init__(inner)
        self.annotator = Annotator() if decode else None
        self.stream = stream if stream is not None else sys.stderr
        self.fmt = fmt
        self.colour = use_colour(self.stream) if colour is None else colour
        self.sinks = list(sinks)

    def reset(self) -> bytes:
        atr = self.inner.reset()
        if self.annotator is not None:
            self.annotator.reset()
        if self.fmt == "text":
            print(f"-- reset, ATR {atr.hex().upper()}", file=self.stream, flush=True)
        elif self.fmt == "json":
            print(
                json.dumps({"reset": "warm", "atr": atr.hex().upper()}),
                file=self.stream,
                flush=True,
            )
        for sink in self.sinks:
            sink.reset(atr)
        return atr

    def transmit(self, apdu: bytes) -> bytes:
        annotator = self.annotator
        c = annotator.command(apdu) if annotator is not None else _NONE
        if self.fmt == "text":
            print(format_command(apdu, self.colour, c), file=self.stream, flush=True)
        t0 = time.perf_counter()
        resp = self.inner.transmit(apdu)
        elapsed = time.perf_counter() - t0
        r = annotator.response(resp) if annotator is not None else _NONE
        ex = Exchange(apdu, resp, elapsed, (c, r) if annotator is not None else None)
        if self.fmt == "text":
            print(format_response(resp, elapsed, self.colour, r), file=self.stream, flush=True)
        elif self.fmt == "json":
            print(json.dumps(ex.record(decode=annotator is not None)), file=self.stream, flush=True)
        for sink in self.sinks:
            sink.exchange(ex)
        return resp


# -- the TRAFFIC log --------------------------------------------------------------------


class TrafficLogReader(ReaderWrapper):
    """A reader wrapper logging every exchange and reset at the TRAFFIC level.

    One record per exchange: the reader, the command in hex, the response data
    in hex, the SW and the time taken. The records carry PINs, keys and
    personal data as they cross the wire: see host/log.py.
    """

    def __init__(self, inner: Reader, logger: logging.Logger = traffic_log) -> None:
        super().__init__(inner)
        self.log = logger

    def connect(self) -> bytes:
        atr = self.inner.connect()
        self.log.log(TRAFFIC, "%s: ATR %s", self.name, atr.hex().upper())
        return atr

    def reset(self) -> bytes:
        atr = self.inner.reset()
        self.log.log(TRAFFIC, "%s: reset, ATR %s", self.name, atr.hex().upper())
        return atr

    def transmit(self, apdu: bytes) -> bytes:
        t0 = time.perf_counter()
        try:
            resp = self.inner.transmit(apdu)
        except Exception as e:
            self.log.log(TRAFFIC, "%s: >> %s !! %s", self.name, apdu.hex().upper(), e)
            raise
        ms = (time.perf_counter() - t0) * 1000
        if len(resp) < 2:
            shown = f"{resp.hex().upper()} (no SW)"
        else:
            shown = f"{resp[:-2].hex().upper()} {resp[-2:].hex().upper()}".lstrip()
        self.log.log(TRAFFIC, "%s: >> %s << %s [%.2f ms]", self.name, apdu.hex().upper(), shown, ms)
        return resp


def log_traffic(
    reader: Reader, *, atr: bytes | None = None, logger: logging.Logger = traffic_log
) -> Reader:
    """`reader` wrapped in a `TrafficLogReader` when `logger` emits TRAFFIC, else itself.

    The level is checked once, here, so that a session without `--traffic`
    pays nothing per APDU.

    Args:
        reader: the reader (connected or not).
        atr: the ATR it was connected with, logged now (the wrapper sees later resets).
        logger: where the records go.
    """
    if not traffic_enabled(logger):
        return reader
    if atr is not None:
        logger.log(TRAFFIC, "%s: connected, ATR %s", reader.name, atr.hex().upper())
    return TrafficLogReader(reader, logger)
