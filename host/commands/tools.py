"""APDU toolkit commands: readers, run, replay, decode.

The reader options and the session stack they share with every command that
talks to a card are in `host.commands.session`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from card.apdu import ApduFormatError, CommandApdu, cla_chained, cla_channel
from card.sw import describe
from host.commands.common import CommandError, InvalidInput, UnexpectedStatus, json_option
from host.commands.session import (
    annotated_record,
    command_session,
    open_session,
    parse_hex_args,
    pick_reader,
    reader_options,
    response_line,
    session_options,
)
from host.hexutil import parse_hex, to_hex
from host.presets import PRESETS
from host.readers.base import ReaderError
from host.readers.registry import (
    EMULATED_PREFIX,
    list_readers,
)
from host.script import (
    RunResult,
    ScriptFailed,
    ScriptMismatch,
    ScriptSyntaxError,
    StepResult,
    parse_script,
    run_script,
)
from host.trace import (
    Annotator,
    annotate_command,
    annotate_response,
    exchange_record,
    format_command,
    format_response,
    split_command,
    use_colour,
)
from host.tracefile import (
    ResetEvent,
    TraceFormatError,
    read_trace,
    replay,
)

# -- cardemu readers ------------------------------------------------------------------


@click.command("readers", short_help="List the readers (emulated and PC/SC).")
@json_option
def readers(as_json: bool) -> None:
    """List the readers: emulated cards, card images here, PC/SC readers.

    Select one with `-r INDEX` or `-r SUBSTRING` (case-insensitive) on the other
    commands. `cardemu:PRESET` and `cardemu:PATH` name cards that are not listed.

    \b
    Examples:
      cardemu readers
      cardemu send -r 2 00A4040000
      cardemu send -r "virtual pcd 00 00" 00A4040000
      cardemu readers --json
    """
    listing = list_readers()
    for note in listing.notes:
        click.echo(note, err=True)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"index": i, "name": r.name, "kind": r.kind}
                    for i, r in enumerate(listing.readers)
                ],
                indent=2,
            )
        )
        return
    for i, r in enumerate(listing.readers):
        click.echo(f"{i}: {r.name}")


# -- cardemu run ----------------------------------------------------------------------


def _read_script(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except (OSError, UnicodeDecodeError) as e:
        # A missing or non-text script is a usage error (exit 2), like a malformed one.
        raise InvalidInput(f"cannot read script {path}: {e}") from None


def _parse_vars(values: Sequence[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for v in values:
        name, sep, hexval = v.partition("=")
        name = name.strip().lstrip("$")
        if not sep or not name.isidentifier():
            raise InvalidInput(f"--var {v!r}: use NAME=HEX")
        try:
            out[name] = parse_hex(hexval)
        except ValueError as e:
            raise InvalidInput(f"--var {name}: {e}") from None
    return out


@click.command("run", short_help="Run an APDU script with expectations.")
@reader_options()
@session_options
@json_option
@click.option("-q", "--quiet", is_flag=True, help="No trace and no summary on stderr.")
@click.option(
    "--lenient", is_flag=True, help="APDUs with no expectation may answer any status word."
)
@click.option(
    "--var", "var_defs", multiple=True, metavar="NAME=HEX", help="Define $NAME (repeatable)."
)
@click.argument("script", metavar="SCRIPT|-")
def run(
    as_json: bool,
    quiet: bool,
    lenient: bool,
    var_defs: tuple[str, ...],
    script: str,
    **kw: Any,
) -> None:
    """Run an APDU script (scriptor's format, with expectations); `-` reads stdin.

    Prints each response on stdout (data SW) and the trace on stderr. Stops at
    the first mismatch, naming the line, what was expected and what came.

    \b
    Format, one item a line:
      00 A4 04 00 09 F043415244454D5501   an APDU: hex, spaced hex or AA:BB
      # comment                           also after an APDU
      80 01 00 00 08 \\                    a trailing backslash continues the line
      reset | exit                        warm reset | stop here (success)
      8050000004 =9000                    expectation on the APDU's line...
      =9000                               ...or on the next line
      0020000100 =63Cx                    x, X or . is any nibble
      00A4040000 =6F..84..*9000           whole response: .. or XX any byte, * any bytes
      0084000008 => $ch = [0:8]           capture response data: [a:b], [a:], [i], or all
      0082000010 $ch 1122334455667788     use it: $name or ${name}
      set $pin = 31323334                 define a variable
    A two-byte pattern is the status word; a longer one (or with *) is data + SW.
    An APDU with no expectation must answer 9000, 61xx or 9Fxx (unless --lenient).

    \b
    Exit codes: 0 all met; 1 reader or I/O failure; 2 bad script or options;
    3 a response did not meet its expectation.

    \b
    Examples:
      cardemu run session.apdu
      echo "00A4040C09F043415244454D5501 =9000" | cardemu run -
      cardemu run -r 1 --trace-file session.jsonl --var pin=31323334 pin.apdu
    """
    variables = _parse_vars(var_defs)
    text, source = _read_script(script)
    try:
        parsed = parse_script(text, source=source, variables=variables)
    except ScriptSyntaxError as e:
        raise InvalidInput(str(e)) from None
    records: list[dict[str, Any]] = []
    annotator = Annotator()

    def show(step: StepResult) -> None:
        rec = annotated_record(annotator, step.command, step.response, step.seconds)
        records.append({"line": step.line, **rec})
        if not as_json:
            click.echo(response_line(rec))

    outcome: dict[str, Any] = {"result": "ok", "error": None}
    failure: CommandError | None = None
    result = RunResult()
    with command_session(kw, quiet=quiet, as_json=as_json) as s:
        try:
            run_script(
                parsed,
                s.reader,
                variables=variables,
                lenient=lenient,
                on_exchange=show,
                on_reset=lambda line, atr: annotator.reset(),
                result=result,
            )
        except ScriptMismatch as e:
            outcome = {"result": "mismatch", "error": str(e)}
            failure = UnexpectedStatus(str(e), reported=as_json)
        except ScriptSyntaxError as e:
            outcome = {"result": "syntax", "error": str(e)}
            failure = InvalidInput(str(e), reported=as_json)
        except ScriptFailed as e:
            outcome = {"result": "failed", "error": str(e)}
            failure = CommandError(str(e), reported=as_json)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reader": s.info.name,
                    "atr": to_hex(s.atr),
                    "exchanges": records,
                    "variables": {
                        k: to_hex(v) for k, v in (result.variables if result else {}).items()
                    },
                    **outcome,
                },
                indent=2,
            )
        )
    if failure is not None:
        raise failure
    if not quiet and not as_json:
        ended = " (exit)" if result.exited else ""
        click.echo(
            f"{source}: {len(result.exchanges)} APDUs, "
            f"{result.expectations_met} expectations met{ended}",
            err=True,
        )


# -- cardemu replay -------------------------------------------------------------------


@click.command("replay", short_help="Replay a trace file and compare responses.")
@reader_options()
@json_option
@click.option(
    "--keep-going",
    is_flag=True,
    help="Compare every exchange, not just up to the first difference.",
)
@click.option("-v", "--verbose", is_flag=True, help="Trace the replayed exchanges on stderr.")
@click.argument("trace_path", metavar="TRACE", type=click.Path(dir_okay=False))
def replay_cmd(
    reader_spec: str | None,
    image: str | None,
    preset: str | None,
    seed: int | None,
    as_json: bool,
    keep_going: bool,
    verbose: bool,
    trace_path: str,
) -> None:
    """Replay a trace file's commands and compare each response (a golden test).

    The card is the one named by -r/--card/--preset; by default the preset the
    trace was recorded on (cardemu:PRESET), else a fresh demo card. The RNG seed
    recorded in the trace is used unless --seed is given. Exit code 3 when a
    response differs.

    \b
    Examples:
      cardemu run --seed 1 --trace-file golden.jsonl session.apdu
      cardemu replay golden.jsonl
      cardemu replay --card my.card --keep-going golden.jsonl
    """
    try:
        trace = read_trace(trace_path)
    except OSError as e:
        raise InvalidInput(f"cannot read {trace_path}: {e.strerror or e}") from None
    except TraceFormatError as e:
        raise InvalidInput(str(e)) from None
    recorded_on = trace.header.reader
    default = None
    if recorded_on.startswith(EMULATED_PREFIX) and recorded_on[len(EMULATED_PREFIX) :] in PRESETS:
        default = recorded_on[len(EMULATED_PREFIX) :]
    info = pick_reader(reader_spec, image, preset, default)
    use_seed = seed if seed is not None else trace.header.seed
    with open_session(
        info, seed=use_seed, trace="text" if verbose else "none", chaining="off"
    ) as s:
        try:
            result = replay(trace, s.reader, atr=s.atr, keep_going=keep_going)
        except ReaderError as e:
            raise click.ClickException(str(e)) from None
    diffs = result.differences
    if as_json:
        click.echo(
            json.dumps(
                {
                    "reader": info.name,
                    "replayed": result.replayed,
                    "recorded": len(trace.exchanges),
                    "equal": result.equal,
                    "differences": [
                        {
                            "index": d.index,
                            "line": d.line,
                            "command": to_hex(d.command),
                            "expected": to_hex(d.expected),
                            "got": to_hex(d.got),
                        }
                        for d in diffs
                    ],
                },
                indent=2,
            )
        )
    else:
        for d in diffs:
            click.echo(f"differs: {d}")
        if result.equal:
            click.echo(
                f"{trace_path}: {result.replayed} exchanges replayed on {info.name}, all equal"
            )
    if diffs:
        # The differences are on stdout already: the error line only sums them up.
        n = len(diffs)
        stopped = ", replay stopped there" if result.replayed < len(trace.exchanges) else ""
        what = f"exchange {diffs[0].index} differs" if n == 1 else f"{n} exchanges differ"
        raise UnexpectedStatus(
            f"{trace_path}: {what} on {info.name} "
            f"({result.replayed} of {len(trace.exchanges)} replayed{stopped})",
            reported=as_json,
        )


# -- cardemu decode -------------------------------------------------------------------


def _looks_like_command(raw: bytes) -> bool:
    if len(raw) < 4:
        return False
    try:
        CommandApdu.from_bytes(raw)
    except ApduFormatError:
        return False
    return True


def describe_command(raw: bytes) -> dict[str, Any]:
    """A command APDU taken apart: header fields, case, class bits, apdu_specs' view."""
    out: dict[str, Any] = {"kind": "command", "apdu": to_hex(raw)}
    parts = split_command(raw)
    out.update(parts)
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduFormatError as e:
        out["error"] = e.reason
    else:
        out["case"] = cmd.case
        out["cla"] = {
            "value": f"{cmd.cla:02X}",
            "interindustry": cmd.cla & 0x80 == 0,
            "channel": cla_channel(cmd.cla),
            "chained": cla_chained(cmd.cla),
        }
        out["nc"] = len(cmd.data)
        out["ne"] = cmd.le
    note = annotate_command(raw)
    out["name"] = note.name
    out["summary"] = note.summary
    out["fields"] = dict(note.fields or {})
    return out


def describe_response(raw: bytes, command: bytes | None = None) -> dict[str, Any]:
    """A response APDU taken apart: data, SW and its meaning, apdu_specs' view."""
    if len(raw) < 2:
        return {"kind": "response", "apdu": to_hex(raw), "error": "shorter than a status word"}
    sw = (raw[-2] << 8) | raw[-1]
    note = annotate_response(command, raw)
    return {
        "kind": "response",
        "apdu": to_hex(raw),
        "data": to_hex(raw[:-2]),
        "sw": f"{sw:04X}",
        "sw_meaning": describe(sw),
        "fields": dict(note.fields or {}),
    }


def _text_command(d: dict[str, Any], raw: bytes, colour: bool) -> list[str]:
    lines = [format_command(raw, colour)]
    if "case" in d:
        cla = d["cla"]
        kind = "interindustry" if cla["interindustry"] else "proprietary"
        extra = ", chained (not the last)" if cla["chained"] else ""
        ne = f", Ne {d['ne']}" if d["ne"] is not None else ""
        lines.append(
            f"   case {d['case']}, CLA {cla['value']} {kind} channel {cla['channel']}{extra}, "
            f"Nc {d['nc']}{ne}"
        )
    elif "error" in d:
        lines.append(f"   malformed: {d['error']}")
    return lines


@click.command("decode", short_help="Decode APDUs or a trace file.")
@json_option
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False),
    help="Decode every exchange of a trace file.",
)
@click.option("-c", "--command", "force", flag_value="command", help="The hex is a command APDU.")
@click.option(
    "-R", "--response", "force", flag_value="response", help="The hex is a response APDU."
)
@click.argument("apdus", nargs=-1)
def decode(
    as_json: bool, trace_path: str | None, force: str | None, apdus: tuple[str, ...]
) -> None:
    """Decode command or response APDUs, or a trace file, with apdu_specs.

    Each argument is one APDU (quote spaced hex), taken as a command when it
    parses as one (ISO 7816-3 cases), else as a response; -c / -R force either.

    \b
    Examples:
      cardemu decode 00A4040009F043415244454D5501
      cardemu decode -R "6F10840E315041592E5359532E4444463031 9000"
      cardemu decode --trace session.jsonl --json
    """
    if not apdus and not trace_path:
        raise InvalidInput("give APDUs in hex, or --trace FILE")
    colour = use_colour(sys.stdout)
    out: list[dict[str, Any]] = []
    if trace_path:
        try:
            trace = read_trace(trace_path)
        except OSError as e:
            raise InvalidInput(f"cannot read {trace_path}: {e.strerror or e}") from None
        except TraceFormatError as e:
            raise InvalidInput(str(e)) from None
        annotator = Annotator()
        for ev in trace.events:
            if isinstance(ev, ResetEvent):
                annotator.reset()
                if not as_json:
                    click.echo(f"-- reset, ATR {to_hex(ev.atr)}")
                continue
            ex = ev.exchange
            notes = annotator.command(ex.command), annotator.response(ex.response)
            out.append(exchange_record(ex.command, ex.response, ex.seconds, notes=notes))
            if not as_json:
                click.echo(format_command(ex.command, colour, notes[0]))
                click.echo(format_response(ex.response, ex.seconds, colour, notes[1]))
    for raw in parse_hex_args(apdus):
        is_command = force == "command" or (force is None and _looks_like_command(raw))
        if is_command:
            d = describe_command(raw)
            if not as_json:
                for line in _text_command(d, raw, colour):
                    click.echo(line)
        else:
            d = describe_response(raw)
            if not as_json:
                click.echo(format_response(raw, None, colour, annotate_response(None, raw)))
        out.append(d)
    if as_json:
        click.echo(json.dumps(out, indent=2))
