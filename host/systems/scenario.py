"""Scenarios: steps between named parties, everything that passes between them recorded.

A scenario (one per system, `host.systems.<system>.scenario`) declares its
parties (cards, terminals, servers), its steps — each with the seed's step
number, the function's name, who talks to whom and one line of meaning — and
its fault points. Its `run` drives the real parts; it never records anything
itself. What passes between the parties goes through three recorders:

- `TracingReader`: every APDU a terminal sends a card (any `Reader` under it:
  in-process, PC/SC);
- `HttpRecorder`: every HTTP exchange of the client the terminals use (an
  `Es9Client` hook, `host.lpa.es9.HttpHook`);
- `LocalLink`: messages on a local link between two parties (NFC, BLE, a
  cable), delivered through the recorder so faults can reach them.

Steps complete when the driving code reports them (`Recorder.step_done`, the
LPA's `on_step`); the messages recorded since the previous step belong to the
step that completes. A run that raises leaves its messages on the step that
was under way, marked failed.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from host.lpa.es9 import HttpAnswer, HttpRequest
from host.readers.base import Reader, ReaderError
from host.readers.wrappers import ReaderWrapper

if TYPE_CHECKING:
    from card.runtime import CardRuntime
    from host.systems.faults import FaultInjector, FaultPoint, FaultSpec

__all__ = [
    "HttpRecorder",
    "LocalLink",
    "Message",
    "Party",
    "Recorder",
    "RunContext",
    "RunResult",
    "Scenario",
    "StepRecord",
    "StepHook",
    "StepSpec",
    "TracingReader",
    "Verdict",
    "card_reader",
    "step_table",
]

PartyKind = Literal["card", "terminal", "server"]
#: How a party reports a step it completed: (interface, function, detail); `Recorder.step_done`.
StepHook = Callable[[str, str, str], object]
MessageKind = Literal["apdu", "http", "link"]


@dataclass(frozen=True)
class Party:
    """One participant: a card, a terminal (the device that drives cards) or a server."""

    name: str
    kind: PartyKind
    description: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "description": self.description}


@dataclass(frozen=True)
class StepSpec:
    """A step as the seed (or the spec) numbers it.

    Attributes:
        number: the seed's step number.
        interface: the interface or layer ("ES9+", "ES10b", ...).
        function: the function's name ("InitiateAuthentication").
        source: the party that acts.
        target: the party it talks to.
        meaning: one line on what the step is for.
    """

    number: int
    interface: str
    function: str
    source: str
    target: str
    meaning: str

    @property
    def name(self) -> str:
        return f"{self.interface}.{self.function}"


#: A step table's row: (number, interface, function, source, target, meaning).
StepRow = tuple[int, str, str, str, str, str]


def step_table(*rows: StepRow) -> tuple[StepSpec, ...]:
    """A scenario's steps from rows of `StepSpec`'s fields, in the seed's order."""
    return tuple(StepSpec(*row) for row in rows)


@dataclass
class Message:
    """One thing that passed between two parties during a step."""

    kind: MessageKind
    source: str
    target: str
    summary: str
    request: str
    response: str
    elapsed: float
    step: int | None = None
    fault: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "step": self.step,
            "source": self.source,
            "target": self.target,
            "summary": self.summary,
            "request": self.request,
            "response": self.response,
            "elapsed_ms": round(self.elapsed * 1000, 3),
        }
        if self.fault:
            out["fault"] = self.fault
        return out


@dataclass
class StepRecord:
    """A step as it ran: its spec, the detail reported, its messages, its verdict."""

    spec: StepSpec
    detail: str = ""
    verdict: Literal["ok", "failed"] = "ok"
    messages: list[Message] = field(default_factory=list)
    started: float = 0.0
    elapsed: float = 0.0

    def line(self) -> str:
        """The narrative line (as `cardemu demo` prints a step, with the step's number)."""
        mark = "" if self.verdict == "ok" else " [FAILED]"
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.spec.number:>3} {self.spec.name}{detail}{mark}"

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.spec.number,
            "name": self.spec.name,
            "interface": self.spec.interface,
            "function": self.spec.function,
            "source": self.spec.source,
            "target": self.spec.target,
            "meaning": self.spec.meaning,
            "detail": self.detail,
            "verdict": self.verdict,
            "started_ms": round(self.started * 1000, 3),
            "elapsed_ms": round(self.elapsed * 1000, 3),
            "messages": [m.to_json() for m in self.messages],
        }


@dataclass(frozen=True)
class Verdict:
    """One claim checked after the run."""

    name: str
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


class Recorder:
    """Collects the messages of a run and closes them into steps.

    Args:
        steps: the scenario's declared steps, in order.
        on_step: called with each step as it completes (the narrative).
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        steps: tuple[StepSpec, ...],
        *,
        on_step: Callable[[StepRecord], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.specs = steps
        self.records: list[StepRecord] = []
        self.injector: FaultInjector | None = None
        self._on_step = on_step
        self._clock = clock
        self._pending: list[Message] = []
        #: NVM writes the emulated cards made, per step number
        self.nvm_writes: dict[int, int] = {}
        #: the same per (card, step number): a step that writes on two cards (each
        #: once, in two rounds of a scenario) has a count for each
        self.card_nvm_writes: dict[tuple[str, int], int] = {}
        self._cursor = 0  # index of the next expected spec
        self._t0 = clock()
        self._last = self._t0

    @property
    def current(self) -> StepSpec | None:
        """The step under way: the next declared one not yet completed."""
        return self.specs[self._cursor] if self._cursor < len(self.specs) else None

    @property
    def current_number(self) -> int | None:
        spec = self.current
        return spec.number if spec is not None else None

    @property
    def pending(self) -> list[Message]:
        """The messages of the step under way so far."""
        return list(self._pending)

    def mark(self) -> int:
        """Where the run is in the declared steps (for `again`)."""
        return self._cursor

    def again(self, mark: int) -> None:
        """Expect the declared steps from `mark` once more: a party retries after a failure.

        The steps already recorded stay as they ran (a failed one marked so); the
        retry's messages go to the same declared steps again.
        """
        if not 0 <= mark <= self._cursor:
            raise ValueError("again: a mark from earlier in this run")
        self._cursor = mark

    def add(self, message: Message) -> Message:
        message.step = self.current_number
        self._pending.append(message)
        return message

    def step_done(self, interface: str, function: str, detail: str = "") -> StepRecord:
        """Close the step `interface.function` (the next declared one with that name)."""
        for i in range(self._cursor, len(self.specs)):
            spec = self.specs[i]
            if (spec.interface, spec.function) == (interface, function):
                self._cursor = i + 1
                break
        else:
            # Not declared (an extra notification, say): numbered after the last step.
            last = self.records[-1].spec.number if self.records else 0
            spec = StepSpec(last, interface, function, "?", "?", "(not a declared step)")
        return self._close(spec, detail, "ok")

    def number_done(
        self, number: int, detail: str = "", *, ahead: bool = True
    ) -> StepRecord | None:
        """Close the declared step numbered `number`, for a party that knows its steps by number.

        With `ahead`, the next step of that number from the one under way (the
        steps between are left for their own reports); without it, only the step
        under way. Nothing is closed when there is no such step (a step done
        again by a retry: its messages join the next one).
        """
        candidates = self.specs[self._cursor : None if ahead else self._cursor + 1]
        spec = next((s for s in candidates if s.number == number), None)
        if spec is None:
            return None
        return self.step_done(spec.interface, spec.function, detail)

    def function_done(self, function: str, detail: str = "") -> StepRecord:
        """Close the step of the declared function `function` (names unique in the scenario)."""
        interface = next(s.interface for s in self.specs if s.function == function)
        return self.step_done(interface, function, detail)

    def step_failed(self, error: str) -> StepRecord | None:
        """Close the step under way as failed (the run raised `error`)."""
        spec = self.current
        if spec is None:
            if not self._pending:
                return None
            spec = StepSpec(0, "run", "end", "?", "?", "(after the last step)")
        self._cursor += 1
        return self._close(spec, error, "failed")

    def _close(self, spec: StepSpec, detail: str, verdict: Literal["ok", "failed"]) -> StepRecord:
        if self.injector is not None:
            self.injector.end_step()
        now = self._clock()
        for m in self._pending:
            m.step = spec.number
        record = StepRecord(spec, detail, verdict, self._pending, self._last - self._t0)
        record.elapsed = now - self._last
        self._pending = []
        self._last = now
        self.records.append(record)
        if self._on_step is not None:
            self._on_step(record)
        return record

    def deliver(
        self, kind: MessageKind, source: str, target: str, send: Callable[[], Any]
    ) -> tuple[Any, str]:
        """Run `send` through the fault injector (if any); return its result and the fault."""
        if self.injector is None:
            return send(), ""
        return self.injector.deliver(self, kind, target, send)


@contextlib.contextmanager
def card_reader(card: CardRuntime, pcsc: bool, *, slot: int = 0) -> Iterator[Reader]:
    """The card in a reader: in-process, or served through pcscd and vpcd (`--pcsc`) on `slot`."""
    from host.readers.inprocess import InProcessReader

    if not pcsc:
        yield InProcessReader(card)
        return
    from host.systems.pcsc import served_card

    with served_card(card, slot=slot) as reader:
        yield reader


class TracingReader(ReaderWrapper):
    """A `Reader` that records every APDU as a message from `terminal` to `card`.

    Args:
        inner: the reader the card is in.
        recorder: the run's recorder.
        terminal: the party that sends the APDUs.
        card: the card's party name.
        runtime: the emulated card behind `inner`, when there is one (for tears).
    """

    def __init__(
        self,
        inner: Reader,
        recorder: Recorder,
        *,
        terminal: str,
        card: str,
        runtime: CardRuntime | None = None,
    ) -> None:
        super().__init__(inner)
        self.recorder = recorder
        self.terminal = terminal
        self.card = card
        self.runtime = runtime

    def transmit(self, apdu: bytes) -> bytes:
        from host.trace import annotate_command

        rec = self.recorder
        note = rec.injector.before_apdu(rec, self) if rec.injector is not None else ""
        t0 = time.perf_counter()
        writes = self.runtime.nvm.total_writes if self.runtime is not None else 0
        step = rec.current_number
        annotation = annotate_command(apdu)
        ins = f"CLA {apdu[:1].hex().upper()} INS {apdu[1:2].hex().upper()}"
        name = annotation.name or ins
        message = Message("apdu", self.terminal, self.card, name, apdu.hex().upper(), "", 0.0)
        try:
            response, fault = rec.deliver(
                "apdu", self.terminal, self.card, lambda: self.inner.transmit(apdu)
            )
        except ReaderError as e:
            message.summary = f"{name}: no answer ({e})"
            message.elapsed = time.perf_counter() - t0
            torn = rec.injector.tore(self) if rec.injector is not None else ""
            message.fault = "; ".join(x for x in (note, torn, _fault_of(e)) if x)
            rec.add(message)
            raise
        finally:
            if self.runtime is not None and step is not None:
                made = self.runtime.nvm.total_writes - writes
                rec.nvm_writes[step] = rec.nvm_writes.get(step, 0) + made
                key = (self.card, step)
                rec.card_nvm_writes[key] = rec.card_nvm_writes.get(key, 0) + made
        message.elapsed = time.perf_counter() - t0
        message.response = response.hex().upper()
        message.fault = "; ".join(x for x in (note, fault) if x)
        sw = response[-2:].hex().upper()
        message.summary = f"{name} → {sw}" + (
            f", {len(response) - 2} bytes" if len(response) > 2 else ""
        )
        rec.add(message)
        return response


class HttpRecorder:
    """The HTTP hook for the terminals' client (`Es9Client(hook=...)`): records each exchange.

    Args:
        recorder: the run's recorder.
        source: the party that sends the requests.
        target: a function from the request's URL to the server party's name.
        kills: a kill fault strikes before the first request of its step (False:
            the caller strikes kills itself, e.g. at the K-th exchange of a step).
    """

    def __init__(
        self,
        recorder: Recorder,
        source: str,
        target: Callable[[str], str],
        *,
        kills: bool = True,
    ) -> None:
        self.recorder = recorder
        self.source = source
        self.target = target
        self.kills = kills

    def __call__(self, request: HttpRequest, send: Callable[[], HttpAnswer]) -> HttpAnswer:
        rec = self.recorder
        target = self.target(request.url)
        note = rec.injector.before_http(rec, target) if rec.injector and self.kills else ""
        t0 = time.perf_counter()
        path = request.url.split("://", 1)[-1].partition("/")[2]
        message = Message(
            "http", self.source, target, f"{request.method} /{path}", _text(request.body), "", 0.0
        )
        try:
            answer, fault = rec.deliver("http", self.source, target, send)
        except OSError as e:
            message.summary += f" → no answer ({e})"
            message.elapsed = time.perf_counter() - t0
            message.fault = "; ".join(x for x in (note, _fault_of(e)) if x)
            rec.add(message)
            raise
        status, reason, body = answer
        message.elapsed = time.perf_counter() - t0
        message.response = _text(body)
        message.fault = "; ".join(x for x in (note, fault) if x)
        message.summary += f" → {status} {reason}" + _es9_status(body)
        rec.add(message)
        return answer


class LocalLink:
    """A local link between two parties (NFC, BLE, a cable): messages through the recorder.

    `send` returns what arrives at the other end: the payload, or None when a
    fault dropped it.
    """

    def __init__(self, recorder: Recorder, a: str, b: str) -> None:
        self.recorder = recorder
        self.ends = (a, b)

    def send(self, source: str, payload: bytes, meaning: str) -> bytes | None:
        if source not in self.ends:
            raise ValueError(f"{source} is not on this link {self.ends}")
        target = self.ends[1] if source == self.ends[0] else self.ends[0]
        t0 = time.perf_counter()
        message = Message("link", source, target, meaning, payload.hex().upper(), "", 0.0)
        try:
            arrived, fault = self.recorder.deliver("link", source, target, lambda: payload)
        except ConnectionError:
            message.fault = "dropped"
            message.elapsed = time.perf_counter() - t0
            self.recorder.add(message)
            return None
        message.fault = fault
        message.elapsed = time.perf_counter() - t0
        self.recorder.add(message)
        return arrived


def _fault_of(error: BaseException) -> str:
    """The injector's own errors say "fault SPEC: ..."; others are the real thing."""
    text = str(error)
    return "dropped" if text.startswith("fault ") else ""


def _text(body: bytes, limit: int = 64 * 1024) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.hex().upper()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _es9_status(body: bytes) -> str:
    import json

    try:
        answer = json.loads(body)
        status = answer["header"]["functionExecutionStatus"]
    except (ValueError, KeyError, TypeError):
        return ""
    codes = status.get("statusCodeData")
    if codes:
        return f", {status.get('status')} {codes.get('subjectCode')}/{codes.get('reasonCode')}"
    return f", {status.get('status')}"


@dataclass
class RunContext:
    """What a scenario's `run` gets: the recorder, the fault, the run's options.

    Attributes:
        recorder: where the messages go (through the recorders above).
        fault: the fault this run injects, if any.
        pcsc: serve the cards through pcscd and vpcd.
        processes: run the servers as real processes.
        workdir: a private directory for the run (stores, card images).
        seed: seeds the emulated cards' RNGs.
        injector: the fault's injector (`run` registers its restartable servers there).
        state: what `run` leaves for `verdicts` (the scenario's own keys).
    """

    recorder: Recorder
    fault: FaultSpec | None
    pcsc: bool
    processes: bool
    workdir: str
    seed: int | None = None
    injector: FaultInjector | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """A finished run: the steps with their messages, the verdicts, the outcome."""

    scenario: str
    title: str
    parties: tuple[Party, ...]
    steps: list[StepRecord]
    verdicts: list[Verdict]
    outcome: str
    fault: str | None
    error: str | None
    elapsed: float
    nvm_writes: dict[int, int] = field(default_factory=dict)
    card_nvm_writes: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every verdict holds (a fault run is ok when its outcome is the declared one)."""
        return all(v.ok for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "title": self.title,
            "ok": self.ok,
            "outcome": self.outcome,
            "fault": self.fault,
            "error": self.error,
            "elapsed_ms": round(self.elapsed * 1000, 3),
            # What a tear:CARD@STEP=W fault can aim at: the emulated cards' writes per step.
            "nvm_writes": {str(k): v for k, v in sorted(self.nvm_writes.items())},
            "parties": [p.to_json() for p in self.parties],
            "steps": [s.to_json() for s in self.steps],
            "verdicts": [v.to_json() for v in self.verdicts],
        }


class Scenario(ABC):
    """A system's scenario: parties, numbered steps, fault points, a run and its verdicts."""

    name: ClassVar[str]
    title: ClassVar[str]
    parties: ClassVar[tuple[Party, ...]]
    steps: ClassVar[tuple[StepSpec, ...]]
    fault_points: ClassVar[tuple[FaultPoint, ...]] = ()
    #: the outcome of a run without a fault (a failure branch's scenario names its own)
    expected_outcome: ClassVar[str] = "completed"

    @abstractmethod
    def run(self, ctx: RunContext) -> None:
        """Drive the parties through the steps (raising ends the run at the step under way)."""

    @abstractmethod
    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        """After the run: (the outcome's name, the claims checked)."""

    def recover(self, ctx: RunContext) -> list[Verdict]:
        """The claims on what the run left, checked while its servers are still up.

        A scenario that registers `recover_on` overrides this; it may retry what
        a fault interrupted, then check that nothing was lost.
        """
        return []

    def recover_on(self, ctx: RunContext, stack: contextlib.ExitStack) -> None:
        """Run `recover` as `stack` unwinds, the run raised or not, before what it closes after.

        A recovery that raises is a failed claim, not a crash of the run.
        """

        def recover() -> None:
            try:
                ctx.state["recovery"] = self.recover(ctx)
            except Exception as e:  # noqa: BLE001 - a recovery that fails is a failed claim
                ctx.state["recovery"] = [Verdict("recovery ran", False, f"{type(e).__name__}: {e}")]

        stack.callback(recover)

    @staticmethod
    def recovered(ctx: RunContext) -> list[Verdict]:
        """The claims `recover` checked (a failed claim when it never ran)."""
        claims: list[Verdict] = ctx.state.get(
            "recovery", [Verdict("recovery ran", False, "no recovery")]
        )
        return claims
