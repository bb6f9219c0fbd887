"""An episode: one card from power-on, the events sent to it and what it answered.

Everything the fuzzer does to a card is one of three events: send a command
APDU, warm-reset the card, or send a command APDU with a tear (the power is
lost after `after` persistent writes have completed, then comes back). A card
built from its target with the same RNG seed and given the same events must
answer the same bytes: that is how the fuzzer clones a card (it rebuilds it and
replays the events), how it minimises a finding, and how `cardemu run` replays
one.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from card.runtime import CardRuntime, CardTorn
from host.fuzz.coverage import Coverage
from host.fuzz.targets import CardTarget
from host.fuzz.watchdog import Interrupted, guard
from host.readers.base import Reader, ReaderError
from host.readers.wrappers import ReaderWrapper

_STOP = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt  # a second Ctrl-C: stop now, wherever it lands
    _STOP.set()


@contextmanager
def stop_on_sigint() -> Iterator[None]:
    """Make Ctrl-C stop a campaign cleanly, at the next command sent.

    The first Ctrl-C only sets a latch that the next command checks: a
    KeyboardInterrupt raised at a random bytecode can be swallowed (a gc callback
    prints "Exception ignored in gc_callback" and goes on) or land in the
    watchdog's cleanup and leave its SIGALRM timer armed, which then kills the
    process. A second Ctrl-C raises at once. Nothing changes off the main thread
    or when SIGINT is ignored (a background job).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield
        return
    old = signal.signal(signal.SIGINT, _on_sigint)
    _STOP.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        _STOP.clear()


def _check_stop() -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt


@dataclass(frozen=True)
class Send:
    """Send one command APDU."""

    apdu: bytes


@dataclass(frozen=True)
class Reset:
    """Warm-reset the card."""


@dataclass(frozen=True)
class Tear:
    """Send `apdu` and cut the power when its (after+1)-th persistent write starts."""

    apdu: bytes
    after: int


Event = Send | Reset | Tear


@dataclass(frozen=True)
class Step:
    """An event and its outcome.

    Attributes:
        event: what was done.
        response: the response APDU; None when the card gave none (a tear, or an
            exception that escaped the runtime).
        seconds: the time the card took.
        escaped: the traceback of an exception that escaped the runtime (or the
            reader's error), else None.
        interrupted: "time" or "memory" when the watchdog stopped the command
            (`host.fuzz.watchdog`; `escaped` then holds where it was looping).
    """

    event: Event
    response: bytes | None
    seconds: float = 0.0
    escaped: str | None = None
    interrupted: str | None = None

    @property
    def sw(self) -> int | None:
        r = self.response
        return (r[-2] << 8) | r[-1] if r is not None and len(r) >= 2 else None


class RateLimitedReader(ReaderWrapper):
    """A reader wrapper sending at most `rate` APDUs per second (real cards, real readers)."""

    def __init__(self, inner: Reader, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        super().__init__(inner)
        self.interval = 1.0 / rate
        self._next = 0.0

    def transmit(self, apdu: bytes) -> bytes:
        now = time.monotonic()
        if now < self._next:
            time.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval
        return self.inner.transmit(apdu)


class Episode:
    """One card from power-on and what was done to it.

    Args:
        target: the card (rebuilt from its target, or reset in its reader).
        seed: the card's RNG seed.
        coverage: runs every command under this coverage tracer (in-process cards).
        patch: called on the new card before power-on (e.g. to change a secret).
        afresh: personalise the card from scratch, as `cardemu run --preset` does
            (by default the target may copy a personalised card: faster, the same).
    """

    def __init__(
        self,
        target: CardTarget,
        seed: int,
        *,
        coverage: Coverage | None = None,
        patch: Callable[[CardRuntime], None] | None = None,
        afresh: bool = False,
    ) -> None:
        self.target = target
        self.seed = seed
        self.steps: list[Step] = []
        self.coverage = coverage
        self.card: CardRuntime | None
        if target.in_process:
            card = target.build_afresh(seed) if afresh else target.build(seed)
            if patch is not None:
                patch(card)
            self.atr = card.power_on()
            self.card = card
        else:
            assert target.reader is not None
            self.card = None
            self.atr = target.reader.reset()

    # -- doing things --------------------------------------------------------------------

    def _process(self, apdu: bytes) -> bytes:
        card = self.card
        if card is None:
            assert self.target.reader is not None
            return self.target.reader.transmit(apdu)
        cov = self.coverage
        target = self.target
        with guard(None if target.hang_ms is None else target.hang_ms / 1000, target.memory_mb):
            if cov is not None:
                return cov.run(card.process, apdu)
            return card.process(apdu)

    def send(self, apdu: bytes) -> Step:
        """Send one command; an exception escaping the runtime is recorded, not raised."""
        _check_stop()
        t0 = time.perf_counter()
        try:
            resp = self._process(apdu)
        except KeyboardInterrupt:
            raise
        except Interrupted as e:
            step = Step(
                Send(apdu), None, time.perf_counter() - t0, traceback.format_exc(), e.reason
            )
            self.steps.append(step)
            self._recover()
            return step
        except BaseException as e:  # noqa: BLE001 - whatever escapes the card is a finding
            dt = time.perf_counter() - t0
            if isinstance(e, ReaderError):
                text = f"ReaderError: {e}"
            else:
                text = traceback.format_exc()
            step = Step(Send(apdu), None, dt, text)
            self.steps.append(step)
            self._recover()
            return step
        step = Step(Send(apdu), resp, time.perf_counter() - t0)
        self.steps.append(step)
        return step

    def _recover(self) -> None:
        # After an exception escaped, power-cycle: the same on every replay.
        if self.card is not None:
            self.card.nvm.tear_after(None)
            self.card.power_on()
        else:
            assert self.target.reader is not None
            try:
                self.target.reader.reset()
            except ReaderError:
                pass

    def reset(self) -> Step:
        t0 = time.perf_counter()
        if self.card is not None:
            self.card.reset()
        else:
            assert self.target.reader is not None
            self.target.reader.reset()
        step = Step(Reset(), None, time.perf_counter() - t0)
        self.steps.append(step)
        return step

    def tear(self, apdu: bytes, after: int) -> Step:
        """Send with a tear after `after` writes; a command making no more writes than
        that completes and is recorded as a plain `Send`."""
        card = self.card
        if card is None:
            raise ValueError("tears need an in-process card")
        _check_stop()
        nvm = card.nvm
        nvm.tear_after(after)
        t0 = time.perf_counter()
        try:
            resp = self._process(apdu)
        except CardTorn:
            dt = time.perf_counter() - t0
            card.power_on()
            step = Step(Tear(apdu, after), None, dt)
            self.steps.append(step)
            return step
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - whatever escapes the card is a finding
            nvm.tear_after(None)
            why = e.reason if isinstance(e, Interrupted) else None
            step = Step(Send(apdu), None, time.perf_counter() - t0, traceback.format_exc(), why)
            self.steps.append(step)
            self._recover()
            return step
        nvm.tear_after(None)
        if nvm.torn:
            # An applet swallowed the power loss: the card still lost power.
            card.power_on()
            step = Step(Tear(apdu, after), None, time.perf_counter() - t0)
        else:
            step = Step(Send(apdu), resp, time.perf_counter() - t0)
        self.steps.append(step)
        return step

    def send_unless_writing(self, apdu: bytes) -> Step | None:
        """Send one command, as `send` does, unless it writes to persistent memory.

        The card is armed to lose power at the command's first write: a command that
        writes nothing completes untouched and is recorded as `send` records it; one
        that writes is cut before its first write reaches the memory and None is
        answered, nothing recorded, and the card is left unusable: `rebuild` it.

        Raises:
            ValueError: the card is not in-process.
        """
        card = self.card
        if card is None:
            raise ValueError("an in-process card only")
        _check_stop()
        nvm = card.nvm
        cov = self.coverage
        # What the cut command was traced doing is forgotten: it runs again in full.
        mark = cov.mark() if cov is not None else None
        nvm.tear_after(0)
        t0 = time.perf_counter()
        try:
            resp = self._process(apdu)
        except KeyboardInterrupt:
            nvm.tear_after(None)
            if cov is not None:
                cov.keep()
            raise
        except BaseException as e:  # noqa: BLE001 - whatever escapes the card is a finding
            dt = time.perf_counter() - t0
            nvm.tear_after(None)
            if nvm.torn or isinstance(e, CardTorn):
                if cov is not None and mark is not None:
                    cov.forget(mark)
                return None
            if cov is not None:
                cov.keep()
            why = e.reason if isinstance(e, Interrupted) else None
            step = Step(Send(apdu), None, dt, traceback.format_exc(), why)
            self.steps.append(step)
            self._recover()
            return step
        nvm.tear_after(None)
        if nvm.torn:  # an applet swallowed the power loss of its first write
            if cov is not None and mark is not None:
                cov.forget(mark)
            return None
        if cov is not None:
            cov.keep()
        step = Step(Send(apdu), resp, time.perf_counter() - t0)
        self.steps.append(step)
        return step

    def rebuild(self) -> int | None:
        """Put a new card in place of this one, brought to the same state by replaying
        the steps (after `send_unless_writing` cut a command that writes).

        Returns:
            The index of the first step whose replay answered differently (None: the
            replay was faithful).
        """
        twin, diverged = self.clone()
        self.card = twin.card
        return diverged

    def apply(self, event: Event) -> Step:
        if isinstance(event, Send):
            return self.send(event.apdu)
        if isinstance(event, Reset):
            return self.reset()
        return self.tear(event.apdu, event.after)

    # -- replaying -----------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        return [s.event for s in self.steps]

    def replay(self, steps: Sequence[Step]) -> int | None:
        """Apply the events of `steps`; the index of the first different outcome, if any."""
        first: int | None = None
        for i, old in enumerate(steps):
            new = self.apply(old.event)
            if first is None and not same_outcome(old, new):
                first = i
        return first

    def clone(
        self, upto: int | None = None, patch: Callable[[CardRuntime], None] | None = None
    ) -> tuple[Episode, int | None]:
        """A new card in the state this one had after `upto` steps (all by default).

        Returns:
            The clone, and the index of the first step whose replay answered
            differently (None: the replay was faithful).
        """
        steps = self.steps if upto is None else self.steps[:upto]
        twin = Episode(self.target, self.seed, patch=patch)
        return twin, twin.replay(steps)


def same_outcome(a: Step, b: Step) -> bool:
    """Whether two steps did and answered the same (escaped tracebacks compare by presence)."""
    return (
        a.event == b.event
        and a.response == b.response
        and (a.escaped is None) == (b.escaped is None)
        and a.interrupted == b.interrupted
    )
