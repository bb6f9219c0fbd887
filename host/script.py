"""APDU scripts: scriptor's format, plus expectations and variables.

The format is pcsc-tools' scriptor's (one APDU a line, `#` comments, `reset`,
`exit`, `\\` continuation), extended with expectations checked against each
response and variables captured from responses::

    # a comment; also after an APDU: 00A4040000  # select
    00 A4 04 00 09 F0 43 41 52 44 45 4D 55 01   APDU: plain hex, spaced hex or AA:BB
    80 01 00 00 08 \\
        01 02 03 04 05 06 07 08                 a trailing backslash continues the line
    reset                                       warm reset of the card
    exit                                        stop here (the run succeeds)
    8050000004 =9000                            expectation on the APDU's line ...
    =9000                                       ... or on the next line
    0020000100 =63Cx                            x, X or . is a wildcard nibble
    00A4040000 =6F..84..*9000                   a pattern over the whole response
    0084000008 =9000 => $challenge = [0:8]      capture response data for later lines
    0082000010 $challenge 1122334455667788      $name or ${name} is replaced by its bytes
    set $pin = 31323334                         define a variable

Expectations (`=PATTERN`):

- A pattern of exactly two bytes with no `*` is the status word: `=9000`,
  `=63Cx`, `=6Cxx`.
- Any other pattern covers the whole response, data then SW: `..`, `XX` or
  `xx` match any byte (one `x`/`.` matches one nibble), `*` any run of bytes,
  none included. `=*9000` accepts any data with 9000.
- Spaces inside a pattern are ignored.

Captures (`=> $name = [slice]`) take bytes of the response data (SW
excluded) with Python slice syntax: `[0:8]`, `[2:]`, `[-4:]`, `[3]` (one
byte); with no slice (`=> $name`), the whole data. A slice reaching past the
data is a mismatch. A line may carry one expectation and several captures.

An APDU has at least 4 bytes (CLA INS P1 P2): a shorter line is a syntax
error, and so is a line whose variables leave it shorter when it runs (through
PC/SC a 1-byte command hangs vpcd). A caller that means to send short commands
to an emulated card (a fuzzer replaying a finding) parses with `allow_short`.

A command with no expectation must answer 9000, 61xx or 9Fxx, unless the
run is lenient. A run stops at the first mismatch and names the line, what
was expected and what came.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from card.sw import describe, is_success
from host.hexutil import MIN_COMMAND_APDU, check_command_apdu
from host.readers.base import Reader, ReaderError
from host.redact import command_hex, hidden

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VAR = re.compile(r"\$(?:\{(" + _NAME + r")\}|(" + _NAME + r"))")
_SET = re.compile(r"set\s+\$(" + _NAME + r")\s*=\s*(.*)$", re.IGNORECASE)
_CAPTURE = re.compile(r"=>\s*\$(?P<name>" + _NAME + r")\s*(?:=\s*\[(?P<slice>[^\]]*)\])?\s*")
_EXPECT = re.compile(r"=(?!>)(?P<pattern>[^=]*)")
_HEX_OK = re.compile(r"[0-9A-Fa-f\s:]*")
_WILDCARD_NIBBLES = "xX."


# -- errors ---------------------------------------------------------------------------


class ScriptError(Exception):
    """Base of the errors a script run raises; `line` is 1-based, 0 if not tied to one."""

    def __init__(self, message: str, line: int = 0, source: str = "script") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.source = source

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        return where + self.message


class ScriptSyntaxError(ScriptError):
    """The script is not well-formed (a usage error: the CLI exits with 2)."""


class ScriptFailed(ScriptError):
    """The run could not go on: the reader failed (the CLI exits with 1)."""


class ScriptMismatch(ScriptError):
    """A response did not meet its expectation (the CLI exits with 3).

    Attributes:
        expected: the expectation, as the script wrote it (normalised).
        command: the command APDU sent.
        response: the response APDU received (data + SW).
    """

    def __init__(
        self,
        message: str,
        line: int,
        source: str,
        *,
        expected: str,
        command: bytes,
        response: bytes,
    ) -> None:
        super().__init__(message, line, source)
        self.expected = expected
        self.command = command
        self.response = response


# -- patterns ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A response pattern: per byte (value, mask), `None` for `*` (any run of bytes).

    Attributes:
        text: the pattern as written, upper-cased, spaces removed.
        tokens: the compiled pattern.
        sw_only: the pattern is the status word alone (two bytes, no `*`).
    """

    text: str
    tokens: tuple[tuple[int, int] | None, ...]
    sw_only: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        """Compile `9000`, `63Cx`, `6F..84..*9000`.

        Raises:
            ValueError: a character outside hex, x/X/. and `*`, or a run of nibbles
                that does not make whole bytes.
        """
        clean = re.sub(r"\s+", "", text)
        if not clean:
            raise ValueError("empty expectation after '='")
        tokens: list[tuple[int, int] | None] = []
        for run_no, run in enumerate(clean.split("*")):
            if run_no:
                tokens.append(None)
            if len(run) % 2:
                raise ValueError(f"'{run}' in '{clean}' is not a whole number of bytes")
            for i in range(0, len(run), 2):
                value = mask = 0
                for ch in run[i : i + 2]:
                    value, mask = value << 4, mask << 4
                    if ch in _WILDCARD_NIBBLES:
                        continue
                    try:
                        value |= int(ch, 16)
                    except ValueError:
                        raise ValueError(
                            f"'{ch}' in '{clean}': use hex digits, x/X/. for any nibble, * for "
                            "any bytes"
                        ) from None
                    mask |= 0xF
                tokens.append((value, mask))
        if None not in tokens and len(tokens) < 2:
            # Without `*` the pattern is the whole response, which ends in a 2-byte SW:
            # a shorter one can never match, so it is a mistake in the script.
            raise ValueError(
                f"'{clean}' is shorter than a status word: write both bytes ('{clean}xx') "
                "or add '*'"
            )
        sw_only = None not in tokens and len(tokens) == 2
        canonical = clean.upper().replace("X", "x")
        return cls(canonical, tuple(tokens), sw_only)

    def matches(self, response: bytes) -> bool:
        """Whether `response` (data + SW) fits: the SW alone when `sw_only`."""
        target = response[-2:] if self.sw_only else response
        # Wildcard matching by dynamic programming: ok[j] = pattern so far fits target[:j].
        ok = [True] + [False] * len(target)
        for tok in self.tokens:
            if tok is None:
                seen = False
                for j in range(len(ok)):
                    seen = seen or ok[j]
                    ok[j] = seen
            else:
                value, mask = tok
                ok = [False] + [
                    ok[j - 1] and target[j - 1] & mask == value for j in range(1, len(ok))
                ]
        return ok[-1]

    def __str__(self) -> str:
        return self.text


# -- script structure -------------------------------------------------------------------


@dataclass(frozen=True)
class VarRef:
    """A `$name` inside an APDU line."""

    name: str


Template = tuple[bytes | VarRef, ...]


@dataclass(frozen=True)
class Capture:
    """`=> $name = [start:stop]` (`index` set for `[i]`; nothing set for the whole data)."""

    name: str
    start: int | None = None
    stop: int | None = None
    index: int | None = None
    text: str = ""

    def take(self, data: bytes) -> bytes:
        """The captured bytes of `data`.

        Raises:
            IndexError: the slice reaches past the data.
        """
        n = len(data)
        if self.index is not None:
            if not -n <= self.index < n:
                raise IndexError(f"[{self.index}] needs {_need(self.index)} data bytes, got {n}")
            return data[self.index : self.index + 1 or None]
        for bound in (self.start, self.stop):
            if bound is not None and not -n <= bound <= n:
                raise IndexError(f"{self.text} needs {abs(bound)} data bytes, got {n}")
        return data[self.start : self.stop]


def _need(i: int) -> int:
    return i + 1 if i >= 0 else -i


@dataclass(frozen=True)
class Command:
    """One APDU line with what is expected of its response.

    Attributes:
        min_length: the shortest APDU `build` lets out (4, or 0 under `allow_short`).
    """

    line: int
    template: Template
    expect: Pattern | None = None
    captures: tuple[Capture, ...] = ()
    min_length: int = field(default=MIN_COMMAND_APDU, compare=False)

    def build(self, variables: Mapping[str, bytes], source: str = "script") -> bytes:
        """The APDU with the variables' values in place.

        Raises:
            KeyError: a variable is not defined.
            ScriptSyntaxError: it comes out shorter than `min_length`.
        """
        apdu = b"".join(
            variables[part.name] if isinstance(part, VarRef) else part for part in self.template
        )
        if len(apdu) >= self.min_length:
            return apdu
        try:
            return check_command_apdu(apdu)
        except ValueError as e:
            raise ScriptSyntaxError(str(e), self.line, source) from None


@dataclass(frozen=True)
class Reset:
    line: int


@dataclass(frozen=True)
class Exit:
    line: int


@dataclass(frozen=True)
class SetVar:
    line: int
    name: str
    template: Template


Step = Command | Reset | Exit | SetVar


@dataclass(frozen=True)
class Script:
    """A parsed script: its steps and where it came from (for messages)."""

    steps: tuple[Step, ...]
    source: str = "script"

    @property
    def commands(self) -> int:
        return sum(isinstance(s, Command) for s in self.steps)


# -- parsing --------------------------------------------------------------------------


def _command(
    line: int,
    template: Template,
    source: str,
    allow_short: bool,
    expect: Pattern | None = None,
    captures: tuple[Capture, ...] = (),
) -> Command:
    """An APDU line, refused when its literal bytes are all it has and make under 4 bytes."""
    if allow_short:
        return Command(line, template, expect, captures, min_length=0)
    literal = [part for part in template if isinstance(part, bytes)]
    if len(literal) == len(template):
        try:
            check_command_apdu(b"".join(literal))
        except ValueError as e:
            raise ScriptSyntaxError(str(e), line, source) from None
    return Command(line, template, expect, captures)


def _logical_lines(text: str, source: str) -> list[tuple[int, str]]:
    """Join `\\`-continued lines, drop comments; (first physical line number, text)."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for no, raw in enumerate(text.splitlines(), 1):
        body = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = no
        if body.endswith("\\"):
            pending.append(body[:-1])
            continue
        pending.append(body)
        joined = " ".join(p.strip() for p in pending).strip()
        pending = []
        if joined:
            out.append((start, joined))
    if pending:
        raise ScriptSyntaxError("'\\' continues the line past the end of the script", start, source)
    return out


def _template(text: str, known: set[str], line: int, source: str) -> Template:
    parts: list[bytes | VarRef] = []
    pos = 0
    for m in _VAR.finditer(text):
        parts.append(_literal(text[pos : m.start()], line, source))
        name = m.group(1) or m.group(2)
        if name not in known:
            raise ScriptSyntaxError(f"${name} is not defined before this line", line, source)
        parts.append(VarRef(name))
        pos = m.end()
    parts.append(_literal(text[pos:], line, source))
    return tuple(p for p in parts if p != b"")


def _literal(text: str, line: int, source: str) -> bytes:
    if not _HEX_OK.fullmatch(text):
        bad = next(ch for ch in text if not _HEX_OK.fullmatch(ch))
        raise ScriptSyntaxError(f"'{bad}' is not hex in '{text.strip()}'", line, source)
    clean = re.sub(r"[\s:]", "", text)
    if len(clean) % 2:
        raise ScriptSyntaxError(f"odd number of hex digits in '{text.strip()}'", line, source)
    return bytes.fromhex(clean)


def _parse_slice(text: str, name: str) -> Capture:
    spec = text.strip()
    shown = f"[{spec}]"
    try:
        if ":" not in spec:
            return Capture(name, index=int(spec), text=shown)
        a, b = (s.strip() for s in spec.split(":", 1))
        return Capture(name, int(a) if a else None, int(b) if b else None, text=shown)
    except ValueError:
        raise ValueError(
            f"slice {shown} for ${name}: use [start:stop], [start:], [:stop] or [i]"
        ) from None


def _clauses(text: str, line: int, source: str) -> tuple[Pattern | None, list[Capture]]:
    """Parse `=PATTERN` and `=> $name = [slice]` clauses."""
    pattern: Pattern | None = None
    captures: list[Capture] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _CAPTURE.match(text, pos)
        if m:
            try:
                if m.group("slice") is None:
                    captures.append(Capture(m.group("name"), text="(all data)"))
                else:
                    captures.append(_parse_slice(m.group("slice"), m.group("name")))
            except ValueError as e:
                raise ScriptSyntaxError(str(e), line, source) from None
            pos = m.end()
            continue
        m = _EXPECT.match(text, pos)
        if not m:
            raise ScriptSyntaxError(f"cannot read '{text[pos:]}'", line, source)
        if pattern is not None:
            raise ScriptSyntaxError("one expectation per command", line, source)
        try:
            pattern = Pattern.parse(m.group("pattern"))
        except ValueError as e:
            raise ScriptSyntaxError(str(e), line, source) from None
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return pattern, captures


def parse_script(
    text: str,
    *,
    source: str = "script",
    variables: Mapping[str, bytes] | None = None,
    allow_short: bool = False,
) -> Script:
    """Parse a script (see the module docstring for the format).

    Args:
        text: the script.
        source: its name in error messages (a file name, or "<stdin>").
        variables: names defined before the script starts (e.g. from the command line).
        allow_short: accept APDUs under 4 bytes (only for emulated cards: a fuzzer's
            findings); by default they are syntax errors.

    Raises:
        ScriptSyntaxError: with the line number of the first problem.
    """
    known = set(variables or ())
    steps: list[Step] = []
    for line, body in _logical_lines(text, source):
        word = body.lower()
        if word == "reset":
            steps.append(Reset(line))
            continue
        if word == "exit":
            steps.append(Exit(line))
            continue
        m = _SET.match(body)
        if m:
            steps.append(SetVar(line, m.group(1), _template(m.group(2), known, line, source)))
            known.add(m.group(1))
            continue
        head, sep, tail = body.partition("=")
        if not sep:
            template = _template(head, known, line, source)
            if not template:
                raise ScriptSyntaxError("empty APDU", line, source)
            steps.append(_command(line, template, source, allow_short))
            continue
        pattern, captures = _clauses(sep + tail, line, source)
        if head.strip():
            template = _template(head, known, line, source)
            steps.append(_command(line, template, source, allow_short, pattern, tuple(captures)))
        else:
            # An expectation line belongs to the APDU just before it.
            prev = steps[-1] if steps else None
            if not isinstance(prev, Command):
                raise ScriptSyntaxError("an expectation must follow an APDU", line, source)
            if pattern is not None and prev.expect is not None:
                raise ScriptSyntaxError(
                    f"the APDU on line {prev.line} already expects {prev.expect}", line, source
                )
            steps[-1] = replace(
                prev,
                expect=pattern if pattern is not None else prev.expect,
                captures=prev.captures + tuple(captures),
            )
        known.update(c.name for c in captures)
    return Script(tuple(steps), source)


# -- running --------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """One command a run sent: its line, the APDU as sent, the response, the time taken."""

    line: int
    command: bytes
    response: bytes
    seconds: float | None = None


@dataclass
class RunResult:
    """What a run did: the exchanges, the variables at the end, whether `exit` ended it."""

    exchanges: list[StepResult] = field(default_factory=list)
    variables: dict[str, bytes] = field(default_factory=dict)
    expectations_met: int = 0
    exited: bool = False


def _short(data: bytes, limit: int = 40) -> str:
    """Hex for a message: long APDUs cut in the middle, their length given."""
    if len(data) <= limit:
        return data.hex().upper()
    half = limit // 2
    return f"{data[:half].hex().upper()}...{data[-half:].hex().upper()} ({len(data)} bytes)"


def _cmd(command: bytes) -> str:
    """A command for a message: PINs and keys masked below TRAFFIC (host.redact)."""
    return command_hex(command) if hidden(command) else _short(command)


def _show(response: bytes) -> str:
    data, sw = response[:-2], response[-2:]
    return f"{_short(data)} {sw.hex().upper()}".strip()


def run_script(
    script: Script,
    reader: Reader,
    *,
    variables: Mapping[str, bytes] | None = None,
    lenient: bool = False,
    on_exchange: Callable[[StepResult], None] | None = None,
    on_reset: Callable[[int, bytes], None] | None = None,
    result: RunResult | None = None,
) -> RunResult:
    """Run a parsed script on a connected reader, stopping at the first mismatch.

    Args:
        script: from `parse_script`.
        reader: where the APDUs go.
        variables: initial variables (the names `parse_script` was told about).
        lenient: commands with no expectation may answer any status word.
        on_exchange: called after every command (e.g. to print the response).
        on_reset: called with (line, ATR) after every `reset`.
        result: filled in as the run goes (so a caller sees the exchanges and variables
            up to a failure); a new one by default.

    Raises:
        ScriptMismatch: a response did not meet its expectation.
        ScriptFailed: the reader failed; the message names the line.
        ScriptSyntaxError: an APDU built from variables is shorter than 4 bytes.
    """
    if result is None:
        result = RunResult()
    result.variables.update(variables or {})
    src = script.source
    for step in script.steps:
        if isinstance(step, Exit):
            result.exited = True
            break
        if isinstance(step, Reset):
            try:
                atr = reader.reset()
            except ReaderError as e:
                raise ScriptFailed(f"reset: {e}", step.line, src) from None
            if on_reset:
                on_reset(step.line, atr)
            continue
        if isinstance(step, SetVar):
            result.variables[step.name] = b"".join(
                result.variables[p.name] if isinstance(p, VarRef) else p for p in step.template
            )
            continue
        apdu = step.build(result.variables, src)
        t0 = time.perf_counter()
        try:
            response = reader.transmit(apdu)
        except ReaderError as e:
            raise ScriptFailed(f"{_short(apdu)}: {e}", step.line, src) from None
        done = StepResult(step.line, apdu, response, time.perf_counter() - t0)
        result.exchanges.append(done)
        if on_exchange:
            on_exchange(done)
        _check(step, done, lenient, src)
        if step.expect is not None:
            result.expectations_met += 1
        data = response[:-2]
        for cap in step.captures:
            try:
                result.variables[cap.name] = cap.take(data)
            except IndexError as e:
                raise ScriptMismatch(
                    f"capture ${cap.name} {cap.text}: {e}",
                    step.line,
                    src,
                    expected=f"${cap.name} = {cap.text}",
                    command=apdu,
                    response=response,
                ) from None
    return result


def _check(step: Command, done: StepResult, lenient: bool, source: str) -> None:
    response = done.response
    if len(response) < 2:
        raise ScriptFailed(
            f"response {response.hex().upper()} has no status word", step.line, source
        )
    sw = (response[-2] << 8) | response[-1]
    if step.expect is None:
        if lenient or is_success(sw):
            return
        raise ScriptMismatch(
            f"expected 9000 (or 61xx), got {sw:04X} ({describe(sw)}) to {_cmd(done.command)}",
            step.line,
            source,
            expected="9000",
            command=done.command,
            response=response,
        )
    if step.expect.matches(response):
        return
    if step.expect.sw_only:
        got = f"{sw:04X} ({describe(sw)})"
    else:
        got = f"{_show(response)} ({describe(sw)})"
    raise ScriptMismatch(
        f"expected {step.expect}, got {got} to {_cmd(done.command)}",
        step.line,
        source,
        expected=str(step.expect),
        command=done.command,
        response=response,
    )
