"""Fault injection for scenarios: a spec, the injector the recorders consult, the walker.

A fault spec names one fault at one step (the step numbers of the scenario):

    kill:smdpp@7          kill the server process "smdpp" as step 7 begins, restart it
    drop:http@7           the 1st HTTP message of step 7 is lost (no answer)
    drop@8.3              the 3rd message of step 8, whatever its kind
    dup:http@5            the 1st HTTP request of step 5 arrives twice (the answer to the first)
    delay:apdu@8.2=250    the 2nd APDU of step 8 waits 250 ms
    tear:euicc@8=3        the card "euicc" loses power at its 3rd NVM write in step 8

A scenario declares its fault points (`FaultPoint`): a spec and the outcome
the run must have under it. `walk` runs every declared point (a tear point
with `=*` expands to write indices measured in a clean run) so a system proves
its "nothing lost, nothing half-issued" claims in one test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from host.readers.base import ReaderError

if TYPE_CHECKING:
    from host.systems.scenario import Recorder, RunResult, Scenario, TracingReader

__all__ = ["FaultError", "FaultInjector", "FaultPoint", "FaultSpec", "walk"]

Action = Literal["kill", "drop", "dup", "delay", "tear"]
_SPEC = re.compile(
    r"^(?P<action>kill|drop|dup|delay|tear)(?::(?P<target>[A-Za-z0-9_+-]+))?"
    r"@(?P<step>\d+)(?:\.(?P<nth>\d+))?(?:=(?P<arg>\*|\d+))?$"
)


class FaultError(ValueError):
    """A fault spec that does not parse or does not fit the scenario."""


@dataclass(frozen=True)
class FaultSpec:
    """One fault at one step.

    Attributes:
        action: kill, drop, dup, delay or tear.
        target: the server (kill), the message kind (drop/dup/delay: http, apdu, link;
            None for any) or the card (tear).
        step: the step number.
        nth: which message of the step (1-based) for drop/dup/delay.
        arg: milliseconds (delay), the NVM write index (tear; None for "every": `=*`).
    """

    action: Action
    target: str | None
    step: int
    nth: int = 1
    arg: int | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Parse `ACTION[:TARGET]@STEP[.N][=ARG]`.

        Raises:
            FaultError: the text is not a fault spec.
        """
        m = _SPEC.match(text.strip())
        if m is None:
            raise FaultError(
                f"bad fault {text!r}: expected ACTION[:TARGET]@STEP[.N][=ARG] "
                "(kill:SERVER@N, drop|dup[:KIND]@N[.K], delay[:KIND]@N[.K]=MS, tear:CARD@N=W)"
            )
        action = cast(Action, m["action"])
        arg = None if m["arg"] in (None, "*") else int(m["arg"])
        nth = int(m["nth"] or 1)
        if nth < 1:
            raise FaultError(f"{text}: messages count from 1")
        if action == "kill" and not m["target"]:
            raise FaultError(f"{text}: kill needs the server, kill:SERVER@STEP")
        if action == "delay" and arg is None:
            raise FaultError(f"{text}: delay needs milliseconds, delay@STEP=MS")
        if action == "tear":
            if not m["target"]:
                raise FaultError(f"{text}: tear needs the card, tear:CARD@STEP=WRITE")
            if arg is not None and arg < 1:
                raise FaultError(f"{text}: NVM writes count from 1")
        if action in ("drop", "dup", "delay") and m["target"] not in (None, "http", "apdu", "link"):
            raise FaultError(f"{text}: the message kind is http, apdu or link")
        return cls(action, m["target"], int(m["step"]), nth, arg)

    def __str__(self) -> str:
        target = f":{self.target}" if self.target else ""
        nth = f".{self.nth}" if self.nth != 1 else ""
        arg = (
            ""
            if self.action in ("kill", "drop", "dup")
            else f"={'*' if self.arg is None else self.arg}"
        )
        return f"{self.action}{target}@{self.step}{nth}{arg}"


@dataclass(frozen=True)
class FaultPoint:
    """A fault a scenario declares, with the outcome a run under it must have.

    Attributes:
        spec: the fault (a tear's write may be `*`: every write, see `walk`).
        expect: the outcome's name (the scenario's `verdicts` names outcomes).
        why: one line: what the point proves.
    """

    spec: str
    expect: str
    why: str

    @property
    def fault(self) -> FaultSpec:
        return FaultSpec.parse(self.spec)


class FaultInjector:
    """Applies one `FaultSpec` where the recorders pass messages.

    Args:
        spec: the fault.
        servers: restartable servers by party name (for kill).
    """

    def __init__(self, spec: FaultSpec, servers: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.servers = servers if servers is not None else {}
        self.fired = False
        self.torn = False  # a tear was armed and went off
        self._seen = 0  # messages of the fault's kind seen in its step
        self._armed: Any = None  # the NVM a tear is armed on

    def _at_step(self, rec: Recorder) -> bool:
        return rec.current_number == self.spec.step

    def before_http(self, rec: Recorder, target: str) -> str:
        """Before an HTTP request to `target`: a kill fires here. Returns a note for it."""
        s = self.spec
        if s.action == "kill" and not self.fired and self._at_step(rec) and target == s.target:
            server = self.servers.get(target)
            if server is None:
                raise FaultError(f"{s}: no server process {target!r} in this run")
            self.fired = True
            old = server.pid
            server.kill()
            server.restart()
            return f"{target} killed (pid {old}) and restarted (pid {server.pid}) before this"
        return ""

    def before_apdu(self, rec: Recorder, reader: TracingReader) -> str:
        """Before an APDU: a tear is armed here. Returns a note for the APDU it tears."""
        s = self.spec
        if s.action != "tear" or reader.card != s.target:
            return ""
        if self.fired or not self._at_step(rec):
            return ""
        if reader.runtime is None:
            raise FaultError(f"{s}: the card {reader.card!r} is not emulated here (no tears)")
        nvm = reader.runtime.nvm
        if s.arg is None:
            raise FaultError(f"{s}: give the write index (the walker expands '*')")
        if not nvm.tear_armed:
            self.fired = True
            self._armed = nvm
            nvm.tear_after(s.arg - 1)
        return ""

    def tore(self, reader: TracingReader) -> str:
        """After an APDU failed: a note when the armed tear went off in it."""
        nvm = self._armed
        if nvm is not None and reader.runtime is not None and reader.runtime.nvm is nvm:
            if not nvm.tear_armed:
                return f"torn at the card's NVM write {self.spec.arg} of step {self.spec.step}"
        return ""

    def deliver(
        self, rec: Recorder, kind: str, target: str, send: Callable[[], Any]
    ) -> tuple[Any, str]:
        s = self.spec
        if s.action not in ("drop", "dup", "delay") or self.fired or not self._at_step(rec):
            return send(), ""
        if s.target is not None and s.target != kind:
            return send(), ""
        self._seen += 1
        if self._seen != s.nth:
            return send(), ""
        self.fired = True
        if s.action == "drop":
            if kind == "apdu":
                raise ReaderError(f"fault {s}: the command was lost")
            raise ConnectionError(f"fault {s}: the message was lost")
        if s.action == "delay":
            time.sleep((s.arg or 0) / 1000)
            return send(), f"delayed {s.arg} ms"
        first = send()
        send()  # the duplicate arrives too; its answer is lost on the way back
        return first, "duplicated"

    def end_step(self) -> None:
        """At a step's end: disarm a tear the step did not reach; note one that went off."""
        nvm, self._armed = self._armed, None
        if nvm is None:
            return
        if nvm.tear_armed:
            nvm.tear_after(None)
        else:
            self.torn = True


def walk(
    scenario: Scenario,
    *,
    exhaustive: bool = False,
    run: Callable[..., RunResult] | None = None,
) -> list[tuple[FaultPoint, FaultSpec, RunResult]]:
    """Run `scenario` under every declared fault point.

    A tear point with `=*` expands to NVM write indices of its step on its card,
    counted in a clean run first (on that card alone: a step number a scenario
    runs on two cards, once each, counts each card's writes): every index when
    `exhaustive`, else the first, the middle and the last.

    Returns:
        (point, the spec that ran, the result) for every run.
    """
    from host.systems.run import run_scenario

    runner = run or run_scenario
    out: list[tuple[FaultPoint, FaultSpec, RunResult]] = []
    clean: RunResult | None = None
    for point in scenario.fault_points:
        spec = point.fault
        specs = [spec]
        if spec.action == "tear" and spec.arg is None:
            if clean is None:
                clean = runner(scenario)
            if clean.card_nvm_writes:
                n = clean.card_nvm_writes.get((str(spec.target), spec.step), 0)
            else:  # a runner that counts per step only
                n = clean.nvm_writes.get(spec.step, 0)
            if n == 0:
                raise FaultError(f"{spec}: step {spec.step} makes no NVM write on {spec.target}")
            indices = range(1, n + 1) if exhaustive else sorted({1, (n + 1) // 2, n})
            specs = [FaultSpec("tear", spec.target, spec.step, 1, i) for i in indices]
        for s in specs:
            out.append((point, s, runner(scenario, fault=s)))
    return out
