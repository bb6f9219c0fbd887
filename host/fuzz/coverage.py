"""Line and arc coverage of the applets under test, as feedback for the fuzzer.

Python 3.11 has no `sys.monitoring`, so this is `sys.settrace`, switched on only
around each command the card processes and answering only for frames whose code
comes from the applets' files: other frames cost one call of the global trace
function and no line events. Arcs are (previous line, line) pairs within a
frame, a cheap stand-in for branch coverage.

Once coverage stops growing, only a sample of the calls is traced (`QUIET`,
`SAMPLE`): the choice depends only on the calls made, so a seed still
reproduces a campaign.

Executable lines are read from the compiled files: the lines of every function's
bytecode, less the `def` line (its RESUME), as coverage.py counts statements.
Module and class bodies are left out: they run at import, before any command.
"""

from __future__ import annotations

import dis
import inspect
import sys
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any, TypeVar

T = TypeVar("T")

#: After this many traced calls in a row found nothing new ...
QUIET = 512
#: ... only one call in this many is traced, until one finds something again.
SAMPLE = 4

_PROLOGUE = frozenset({"RESUME", "RETURN_GENERATOR", "NOP", "COPY_FREE_VARS", "MAKE_CELL"})


def _functions(code: CodeType) -> Iterable[CodeType]:
    for const in code.co_consts:
        if isinstance(const, CodeType):
            if const.co_flags & inspect.CO_NEWLOCALS:
                yield const
            yield from _functions(const)


def executable_lines(path: str) -> frozenset[int]:
    """The lines of `path` that a function can execute."""
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        module = compile(source, path, "exec")
    except (OSError, SyntaxError, UnicodeDecodeError):
        return frozenset()
    lines: set[int] = set()
    for code in _functions(module):
        for ins in dis.get_instructions(code):
            line = ins.positions.lineno if ins.positions else None
            if line is None or ins.opname in _PROLOGUE:
                continue
            lines.add(line)
    return frozenset(lines)


class Coverage:
    """Lines and arcs executed in a set of files.

    Args:
        files: the source files to trace (as in `code.co_filename`).
    """

    def __init__(self, files: Iterable[str]) -> None:
        self.files = frozenset(files)
        #: (file, line) executed
        self.lines: set[tuple[str, int]] = set()
        #: (file, previous line, line) executed; 0 is the frame's entry
        self.arcs: set[tuple[str, int, int]] = set()
        self._new = 0
        self._calls = 0
        self._quiet = 0
        self._totals: dict[str, frozenset[int]] = {}
        #: what was first seen since `mark`, for `forget` (None: not kept)
        self._journal: list[tuple[Any, ...]] | None = None

    # -- tracing -----------------------------------------------------------------------------

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        filename = code.co_filename
        # Comprehensions and generator expressions sit on their parent's line (already
        # counted there) and resume once per item: tracing them only costs.
        if filename not in self.files or code.co_name[0] == "<":
            return None
        lines = self.lines
        arcs = self.arcs
        last = 0

        def local(frame: Any, event: str, arg: Any) -> Any:
            nonlocal last
            if event == "line":
                ln = frame.f_lineno
                key = (filename, ln)
                if key not in lines:
                    lines.add(key)
                    self._new += 1
                    if self._journal is not None:
                        self._journal.append(key)
                arc = (filename, last, ln)
                if arc not in arcs:
                    arcs.add(arc)
                    self._new += 1
                    if self._journal is not None:
                        self._journal.append(arc)
                last = ln
            return local

        return local

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn(*args)`, traced (or, once coverage has stopped growing, one call in
        `SAMPLE` traced: tracing costs more than the applet's own work)."""
        self._calls += 1
        if self._quiet >= QUIET and self._calls % SAMPLE:
            return fn(*args)
        new = self._new
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            return fn(*args)
        finally:
            sys.settrace(previous)
            self._quiet = 0 if self._new > new else self._quiet + 1

    def mark(self) -> tuple[int, int, int]:
        """Start keeping what the next calls see, so that `forget` can take it back."""
        self._journal = []
        return (self._new, self._calls, self._quiet)

    def forget(self, mark: tuple[int, int, int]) -> None:
        """Undo everything since `mark`: the lines and arcs first seen, the calls counted
        (a command cut short and run again from the start is traced once)."""
        for key in self._journal or ():
            if len(key) == 2:
                self.lines.discard(key)
            else:
                self.arcs.discard(key)
        self._journal = None
        self._new, self._calls, self._quiet = mark

    def keep(self) -> None:
        """Keep what was seen since `mark`."""
        self._journal = None

    def take_new(self) -> int:
        """Lines and arcs first seen since the last call."""
        n = self._new
        self._new = 0
        return n

    # -- figures -------------------------------------------------------------------------------

    def total_lines(self, path: str) -> frozenset[int]:
        total = self._totals.get(path)
        if total is None:
            total = self._totals[path] = executable_lines(path)
        return total

    def summary(self, files: Iterable[str] | None = None) -> tuple[int, int, int]:
        """(lines covered, executable lines, arcs seen) over `files` (default: all traced)."""
        chosen = self.files if files is None else frozenset(files) & self.files
        covered = total = 0
        for path in chosen:
            lines = self.total_lines(path)
            total += len(lines)
            covered += sum(1 for f, ln in self.lines if f == path and ln in lines)
        arcs = sum(1 for f, _, _ in self.arcs if f in chosen)
        return covered, total, arcs

    def missing(self, path: str) -> list[int]:
        """Executable lines of `path` never run."""
        seen = {ln for f, ln in self.lines if f == path}
        return sorted(self.total_lines(path) - seen)
