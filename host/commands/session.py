"""The shared plumbing of the commands that talk to a card: which reader, and its stack.

A command that talks to a card takes `-r/--reader` (an index or name substring
from `cardemu readers`, or `cardemu:PRESET` / `cardemu:IMAGE`), or `--card
IMAGE`, or `--preset NAME`; with none of them it uses a fresh in-memory card
of its command group's default preset (`reader_options(default_preset)`: demo
for the APDU tools, gp for `cardemu gp`, usim, euicc...). The reader stack is
`GetResponseReader` (with `-g`) over `ChainingReader` over `TracingReader` over
`TrafficLogReader` (with `cardemu --traffic`) over the reader, so the trace and
the trace file show what went over the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from host.commands.common import InvalidInput, stack_options
from host.hexutil import parse_command_apdu, parse_hex
from host.presets import DEFAULT_PRESET, PRESETS
from host.readers.base import Reader, ReaderError
from host.readers.registry import (
    EMULATED_PREFIX,
    ReaderInfo,
    ReaderSelectionError,
    connected,
    resolve,
)
from host.readers.wrappers import ChainingReader, GetResponseReader
from host.trace import Annotator, TraceFormat, TracingReader, exchange_record, log_traffic
from host.tracefile import TraceHeader, TraceWriter

F = TypeVar("F", bound=Callable[..., Any])


def parse_hex_args(values: Sequence[str], what: str = "APDU") -> list[bytes]:
    """Hex arguments as bytes (plain, spaced or AA:BB), of any length (e.g. responses).

    Raises:
        InvalidInput: an argument is not hex.
    """
    out = []
    for v in values:
        try:
            out.append(parse_hex(v))
        except ValueError as e:
            raise InvalidInput(f"{what}: {e}") from None
    return out


def parse_apdu_args(values: Sequence[str]) -> list[bytes]:
    """Command APDU arguments as bytes: hex (plain, spaced or AA:BB), 4 bytes at least.

    Every command that sends APDUs from its arguments parses them here, so that
    nothing shorter than a command header reaches a card (`host.hexutil.parse_command_apdu`).

    Raises:
        InvalidInput: an argument is not hex or is shorter than 4 bytes (exit code 2).
    """
    out = []
    for v in values:
        try:
            out.append(parse_command_apdu(v))
        except ValueError as e:
            raise InvalidInput(f"APDU: {e}") from None
    return out


# -- reader options and the session stack ----------------------------------------------


def reader_options(default_preset: str = DEFAULT_PRESET) -> Callable[[F], F]:
    """-r/--reader, --card, --preset, --seed: which card a command talks to.

    Args:
        default_preset: the card used when none of -r, --card, --preset is given
            (the one default of a command group; `--help` shows it).
    """
    if default_preset not in PRESETS:
        raise ValueError(f"no preset {default_preset!r}")
    options = [
        click.option(
            "-r",
            "--reader",
            "reader_spec",
            metavar="READER",
            help="Index or name substring from `cardemu readers`, or cardemu:PRESET, "
            "cardemu:IMAGE.",
        ),
        click.option(
            "--card", "image", metavar="IMAGE", help="Card image file (same as -r cardemu:IMAGE)."
        ),
        click.option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            default=default_preset,
            show_default=True,
            help="Built-in card, fresh in memory, when no -r or --card is given.",
        ),
        click.option("--seed", type=int, help="Seed an emulated card's RNG (reproducible runs)."),
    ]
    return stack_options(options)


def session_options(f: F) -> F:
    """--trace-file, --trace-json, -g, --chaining: how the exchanges are carried and kept."""
    options = [
        click.option(
            "--trace-file",
            type=click.Path(dir_okay=False, writable=True),
            help="Save every exchange as a trace file (JSON lines) for `cardemu replay` "
            "(in clear: PINs and keys included).",
        ),
        click.option(
            "--trace-json",
            is_flag=True,
            help="Trace on stderr as JSON lines, one object per exchange (keys: command, "
            "response, sw, sw_meaning, name, fields, ms).",
        ),
        click.option(
            "-g",
            "--get-response",
            is_flag=True,
            help="Fetch held-back data: GET RESPONSE on 61xx (and 9Fxx for CLA A0), "
            "resend with the exact Le on 6Cxx.",
        ),
        click.option(
            "--transport",
            type=click.Choice(["direct", "t0", "t1"]),
            default="direct",
            show_default=True,
            help="For an emulated card: carry APDUs through its ISO 7816-3 T=0 or T=1 byte "
            "engine and a terminal driver instead of calling it directly.",
        ),
        click.option(
            "--chaining",
            type=click.Choice(["auto", "always", "off"]),
            default="auto",
            show_default=True,
            help="Command chaining for data over 255 bytes: when the card lacks extended "
            "length (auto), always, or never.",
        ),
    ]
    return stack_options(options)(f)


def _on_command_line(name: str) -> bool:
    """Whether the current command's parameter `name` was given, not left at its default."""
    ctx = click.get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def pick_reader(
    reader_spec: str | None, image: str | None, preset: str | None, default: str | None = None
) -> ReaderInfo:
    """The reader the options of `reader_options` name (see `host.readers.registry.resolve`).

    Args:
        reader_spec, image, preset: the values of -r, --card and --preset (`preset`
            holds the group's default preset when --preset was not given).
        default: a preset that wins over the group's default but not over an explicit
            --preset (`cardemu replay`: the preset the trace was recorded on).

    Raises:
        InvalidInput: more than one of -r, --card, --preset, or a -r that names no
            reader or several (exit 2).
            No such card image (exit 2).
        click.ClickException: the card image cannot be opened (exit 1).
    """
    chosen = preset if preset and _on_command_line("preset") else None
    given = [
        name for name, v in (("-r", reader_spec), ("--card", image), ("--preset", chosen)) if v
    ]
    if len(given) > 1:
        raise InvalidInput(f"{' and '.join(given)} both name a card: give one")
    # A missing input file is a usage error (exit 2) in every command.
    if image is not None and not Path(image).exists():
        raise InvalidInput(f"no card image '{image}'")
    if reader_spec is not None and reader_spec.startswith(EMULATED_PREFIX):
        target = reader_spec[len(EMULATED_PREFIX) :]
        if target not in PRESETS and not Path(target).exists():
            raise InvalidInput(
                f"no card image '{target}' and no such preset "
                f"(presets: {', '.join(sorted(PRESETS))})"
            )
    try:
        return resolve(reader_spec, image=image, preset=chosen or default or preset)
    except ReaderSelectionError as e:
        raise InvalidInput(str(e)) from None
    except ReaderError as e:
        raise click.ClickException(str(e)) from None


def trace_format(quiet: bool, as_json: bool, trace_json: bool) -> TraceFormat:
    """The stderr trace: none with -q (or --json, unless --trace-json asks), else text/JSON."""
    if quiet:
        return "none"
    if trace_json:
        return "json"
    return "none" if as_json else "text"


@dataclass
class Session:
    """An open, connected reader stack."""

    info: ReaderInfo
    reader: Reader
    atr: bytes


def annotated_record(
    annotator: Annotator, command: bytes, response: bytes, seconds: float | None
) -> dict[str, Any]:
    """`exchange_record` with the annotator's notes (it follows SELECTs and resets)."""
    notes = annotator.command(command), annotator.response(response)
    return exchange_record(command, response, seconds, notes=notes)


def response_line(record: dict[str, Any]) -> str:
    """The stdout line of one response: its data and SW in hex."""
    return f"{record['response']} {record['sw'] or ''}".strip()


@contextmanager
def open_session(
    info: ReaderInfo,
    *,
    seed: int | None = None,
    trace: TraceFormat = "text",
    trace_file: str | None = None,
    get_response: bool = False,
    chaining: str = "auto",
    transport: str = "direct",
) -> Iterator[Session]:
    """Connect to a reader and stack the wrappers; close everything at the end.

    Raises:
        click.ClickException: the reader could not be opened or connected (exit 1).
    """
    try:
        with connected(info, seed=seed, transport=transport) as (raw, atr):
            writer = None
            if trace_file:
                try:
                    writer = TraceWriter.create(trace_file, TraceHeader(info.name, atr, seed))
                except OSError as e:
                    raise click.ClickException(f"cannot write {trace_file}: {e}") from None
            try:
                reader: Reader = log_traffic(raw, atr=atr)
                if trace != "none" or writer is not None:
                    reader = TracingReader(reader, fmt=trace, sinks=[writer] if writer else [])
                if chaining != "off":
                    reader = ChainingReader(reader, always=chaining == "always")
                if get_response:
                    reader = GetResponseReader(reader)
                yield Session(info, reader, atr)
            finally:
                if writer is not None:
                    writer.close()
    except ReaderError as e:
        raise click.ClickException(str(e)) from None


@contextmanager
def command_session(kw: dict[str, Any], *, quiet: bool, as_json: bool) -> Iterator[Session]:
    """The session the options of `reader_options` and `session_options` name.

    Args:
        kw: the command's keyword arguments; those options' values are taken out.
        quiet, as_json: the command's -q and --json (they choose the trace, see
            `trace_format`).

    Raises:
        InvalidInput, click.ClickException: as `pick_reader` and `open_session`.
    """
    info = pick_reader(kw.pop("reader_spec"), kw.pop("image"), kw.pop("preset"))
    with open_session(
        info,
        seed=kw.pop("seed"),
        trace=trace_format(quiet, as_json, kw.pop("trace_json")),
        trace_file=kw.pop("trace_file"),
        get_response=kw.pop("get_response"),
        chaining=kw.pop("chaining"),
        transport=kw.pop("transport"),
    ) as session:
        yield session
