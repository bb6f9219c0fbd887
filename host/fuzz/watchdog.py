"""A per-command time and memory bound that works in-process, even on a command that never returns.

A card in the fuzzer's own process runs each command in the main thread. A
decoder that loops for ever (no progress through its input) would hang the
campaign; one that appends to a list as it loops would take the machine's
memory too. `guard` arms a repeating interval timer (POSIX `setitimer`,
`ITIMER_REAL`) for the command: each tick the signal handler, which Python
runs in the main thread between bytecodes of whatever is looping, checks the
time spent and the growth of the resident set, and raises `Interrupted` (a
`BaseException`, so no `except Exception` in the card turns it into 6F00) when
either bound is passed. Where signals cannot be used (another thread, no
SIGALRM) the command runs unguarded.
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

#: How often the bounds are checked while a command runs (seconds).
TICK = 0.05

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# `signal.getsignal` turns every answer into a `Handlers` enum when it can, and for a
# function that is a failed enum lookup per call (a tenth of a fuzzed command's
# time); the C function under it answers the handler as it is.
_getsignal: Callable[[int], Any] = getattr(
    importlib.import_module("_signal"), "getsignal", signal.getsignal
)


class Interrupted(BaseException):
    """A command stopped by the watchdog.

    Attributes:
        reason: "time" (no answer within the bound) or "memory" (the process grew
            by more than the bound while it ran).
        seconds: how long it had run.
        grown: by how many bytes the resident set had grown.
    """

    def __init__(self, reason: str, seconds: float, grown: int) -> None:
        super().__init__(
            f"interrupted after {seconds * 1000:.0f} ms: "
            + (
                "no answer within the time bound"
                if reason == "time"
                else f"the process grew by {grown / 2**20:.0f} MB"
            )
        )
        self.reason = reason
        self.seconds = seconds
        self.grown = grown


def rss() -> int:
    """The resident set size of this process, in bytes (0 where unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return peak_rss()


def peak_rss() -> int:
    """The largest resident set this process has had, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_HAS_TIMER = hasattr(signal, "setitimer")


def usable() -> bool:
    """Whether a guard can interrupt here (the main thread, SIGALRM available)."""
    return _HAS_TIMER and threading.current_thread() is threading.main_thread()


class _Armed:
    """The bounds of the command running now (one at a time: the main thread's)."""

    __slots__ = ("start", "seconds", "limit", "base")

    def __init__(self, seconds: float | None, limit: int | None) -> None:
        self.start = time.monotonic()
        self.seconds = seconds
        self.limit = limit
        self.base: int | None = None


_armed: _Armed | None = None
_previous: Any = None
#: the interval the timer runs with (None: stopped)
_interval: float | None = None
#: inside `ticking`: a guard leaves the timer running when its command ends
_ticking = False


def _tick(signum: int, frame: Any) -> None:
    a = _armed
    if a is None:
        # Between two commands of a campaign (`ticking`) the tick is ours: nothing runs.
        if _interval is None and callable(_previous):
            _previous(signum, frame)
        return
    elapsed = time.monotonic() - a.start
    now = rss() if a.limit is not None else 0
    if a.base is None:
        a.base = now
    grown = now - a.base
    if a.seconds is not None and elapsed >= a.seconds:
        raise Interrupted("time", elapsed, grown)
    if a.limit is not None and grown > a.limit:
        raise Interrupted("memory", elapsed, grown)


class guard:  # noqa: N801 - used as a function: `with guard(seconds, memory_mb):`
    """Run the body under a time bound and a memory-growth bound (None: no bound).

    The SIGALRM handler is installed once and stays (a handler found there before is
    called when no command is guarded); arming costs two `setitimer` calls (none
    inside `ticking`, while the interval stays the same). The
    resident set is first read at the first tick, so a quick command reads no /proc.
    A guard inside another guards nothing more (the outer one's bounds hold).

    A class rather than a `contextmanager` generator: it wraps every command the
    fuzzer sends, and the generator's machinery cost more than the arming.

    Raises:
        Interrupted: from inside the body, when a bound is passed.
    """

    __slots__ = ("seconds", "memory_mb", "_armed_here")

    def __init__(self, seconds: float | None, memory_mb: float | None) -> None:
        self.seconds = seconds
        self.memory_mb = memory_mb
        self._armed_here = False

    def __enter__(self) -> None:
        global _armed, _previous, _interval
        seconds, memory_mb = self.seconds, self.memory_mb
        if (seconds is None and memory_mb is None) or _armed is not None or not usable():
            return
        if _getsignal(signal.SIGALRM) is not _tick:
            _previous = signal.signal(signal.SIGALRM, _tick)
        _armed = _Armed(seconds, None if memory_mb is None else int(memory_mb * 2**20))
        self._armed_here = True
        interval = TICK if seconds is None else min(TICK, seconds)
        if interval != _interval:
            signal.setitimer(signal.ITIMER_REAL, interval, interval)
            _interval = interval

    def __exit__(self, *exc: object) -> None:
        global _armed, _interval
        if self._armed_here:
            self._armed_here = False
            if not _ticking:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _interval = None
            _armed = None


class ticking:  # noqa: N801 - used as a function: `with ticking():`
    """Keep the guards' timer running between commands, for a campaign's duration.

    A campaign guards tens of thousands of commands a second: arming and disarming
    the timer around each one were two `setitimer` calls per command. Inside this,
    the timer is armed by the first guard and left running; a command still gets
    its first tick within one interval of its start, as when it was armed for it,
    and a tick between two commands does nothing (a SIGALRM of someone else's
    arriving then is not passed on: a campaign owns the process's SIGALRM). The
    timer is stopped on the way out.
    """

    __slots__ = ("_was",)

    def __init__(self) -> None:
        self._was = False

    def __enter__(self) -> None:
        global _ticking
        self._was = _ticking
        _ticking = True

    def __exit__(self, *exc: object) -> None:
        global _ticking, _interval
        _ticking = self._was
        if not _ticking and _interval is not None and _armed is None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _interval = None
