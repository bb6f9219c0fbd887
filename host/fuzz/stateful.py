"""Hypothesis state machines over a fuzz target: the same oracles, hypothesis' shrinking.

`machine_for(target)` is a `RuleBasedStateMachine` whose rules select an applet,
enter one of its states (PIN verified, ...), send a command drawn from the
applet's specs, corpus and random shapes, reset the card, or tear a command at
one of its writes; after every rule the oracles must hold. Hypothesis looks for
a failing sequence and shrinks it: `run_stateful` turns the smallest failing
sequence into a `Finding`, as the random engine does.

Through `run_stateful`, the same seed gives the same run whatever the process
imported before (it runs under `fixed_local_constants`). Tests may use the
machine directly:

    TestPurse = machine_for(preset_target("demo").only(["purse"])).TestCase

but that path (like `run_state_machine_as_test`) is Hypothesis' own: its draws
depend on the modules imported before unless run inside `fixed_local_constants()`.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    invariant,
    precondition,
    rule,
)

from apdu_specs.strategies import commands
from host.fuzz import mutators
from host.fuzz.engine import minimise, quiet_card_logs
from host.fuzz.generators import specs_for
from host.fuzz.oracles import ALL_ORACLES, Checker, Violation
from host.fuzz.report import Finding
from host.fuzz.session import Episode, Reset, Send, Step, Tear
from host.fuzz.targets import AppletTarget, CardTarget, CommandWrapper


class OracleViolation(AssertionError):
    """An oracle did not hold (what a state machine raises)."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(str(violation))
        self.violation = violation


@dataclass
class Recorder:
    """Keeps the steps of the last run that failed (hypothesis replays the minimal one last)."""

    steps: list[Step] = field(default_factory=list)
    violation: Violation | None = None
    runs: int = 0
    apdus: int = 0
    tears: int = 0
    sws: Counter[int] = field(default_factory=Counter)


def _structured() -> st.SearchStrategy[bytes]:
    header = st.tuples(
        st.sampled_from(mutators.WRONG_CLASSES) | st.integers(0, 255),
        st.integers(0, 255),
        st.sampled_from(mutators.INTERESTING_BYTES) | st.integers(0, 255),
        st.sampled_from(mutators.INTERESTING_BYTES) | st.integers(0, 255),
    ).map(bytes)
    body = st.one_of(
        st.just(b""),
        st.integers(0, 255).map(lambda n: bytes((n,))),
        st.binary(min_size=1, max_size=40).map(lambda d: bytes((len(d),)) + d),
        st.tuples(st.binary(min_size=1, max_size=40), st.integers(0, 255)).map(
            lambda t: bytes((len(t[0]),)) + t[0] + bytes((t[1],))
        ),
        st.binary(min_size=0, max_size=300).map(lambda d: b"\x00" + len(d).to_bytes(2, "big") + d),
        st.binary(min_size=1, max_size=8),
    )
    return st.tuples(header, body).map(lambda t: t[0] + t[1])


def _mutated(corpus: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: Any) -> bytes:
        base = draw(st.sampled_from(corpus))
        n = draw(st.sampled_from((0, 0, 1, 1, 2, 3)))
        if n == 0:
            return base
        r = random.Random(draw(st.integers(0, 2**32 - 1)))
        return mutators.mutate(base, r, corpus, rounds=n)

    return build()


def apdu_strategy(applets: Sequence[AppletTarget]) -> st.SearchStrategy[bytes]:
    """Commands for these applets, weighted towards what knows them best: their corpus
    (mutated), their own specs, then interindustry specs (shrinking field by field),
    random headers and bodies, random bytes."""
    own: dict[str, Any] = {}
    generic: dict[str, Any] = {}
    for a in applets:
        for s in specs_for(a):
            (generic if getattr(s, "context", None) is None else own).setdefault(s.id, s)
    parts: list[st.SearchStrategy[bytes]] = []
    corpus = [c for a in applets for c in a.corpus]
    if corpus:
        mutated = _mutated(corpus)
        parts += [mutated, mutated, mutated]
    if own:
        mine = st.one_of([commands(s) for s in own.values()])
        parts += [mine, mine]
    if generic:
        parts.append(st.one_of([commands(s) for s in generic.values()]))
    parts.append(_structured())
    parts.append(st.binary(min_size=1, max_size=64))
    return st.one_of(parts)


def machine_for(
    target: CardTarget,
    *,
    seed: int = 0,
    oracles: frozenset[str] = ALL_ORACLES,
    max_ms: float | None = None,
    recorder: Recorder | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine fuzzing `target`'s applets under the oracles.

    Args:
        target: the card (in-process for tears and the state oracles).
        seed: the card's RNG seed.
        oracles: the oracles checked after every rule.
        max_ms: the response-time bound (None: the target's).
        recorder: told about every failing run (for `run_stateful`).
    """
    applets = target.applets
    with_states = [a for a in applets if a.states]
    commands = apdu_strategy(applets)
    corpus = [c for a in applets for c in a.corpus]
    known = _mutated(corpus) if corpus else st.nothing()
    in_process = target.in_process

    class CardMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.episode = Episode(target, seed)
            self.checker = Checker(self.episode, oracles=oracles, max_ms=max_ms)
            #: the session a state's set-up opened (a secure channel), until it ends
            self.session: CommandWrapper | None = None
            if recorder is not None:
                recorder.runs += 1

        def _do(self, event: Send | Reset | Tear) -> Step:
            if not isinstance(event, Send):
                self.session = None
            if isinstance(event, Tear):
                step, vs = self.checker.tear(event.apdu, event.after)
            else:
                step, vs = self.checker.apply(event)
            if recorder is not None and not isinstance(event, Reset):
                recorder.apdus += 1
                if step.sw is not None:
                    recorder.sws[step.sw] += 1
                if isinstance(step.event, Tear):
                    recorder.tears += 1
            if vs:
                if recorder is not None:
                    recorder.steps = list(self.episode.steps)
                    recorder.violation = vs[0]
                raise OracleViolation(vs[0])
            return step

        # A reset rule of its own would be drawn far too often (hypothesis favours rules
        # without arguments): a reset comes with one select in eight instead.
        @rule(applet=st.sampled_from(applets), reset=st.integers(0, 7))
        def select(self, applet: AppletTarget, reset: int) -> None:
            if reset == 7:
                self._do(Reset())
            self.session = None
            self._do(Send(applet.select_command))

        @precondition(lambda self: bool(with_states))
        @rule(data=st.data())
        def enter_state(self, data: Any) -> None:
            applet = data.draw(st.sampled_from(with_states), label="applet")
            state = data.draw(st.sampled_from(applet.states), label="state")
            self.session = None
            step = self._do(Send(applet.select_command))
            if step.sw != 0x9000 and (step.sw or 0) >> 8 != 0x61:
                return
            if callable(state.setup):

                def send(apdu: bytes) -> bytes:
                    return self._do(Send(apdu)).response or b""

                try:
                    session = state.setup(send)
                except OracleViolation:
                    raise
                except Exception:  # noqa: BLE001 - the state is just not reached
                    return
                if isinstance(session, CommandWrapper):
                    self.session = session
                return
            for apdu in state.setup:
                s = self._do(Send(apdu))
                if s.sw != 0x9000:
                    return

        def _wrapped(self, apdu: bytes) -> bytes:
            if self.session is None or not apdu or not apdu[0] & 0x80:
                return apdu
            try:
                return self.session.wrap_command(apdu)
            except Exception:  # noqa: BLE001 - a command the session cannot wrap goes raw
                return apdu

        @rule(apdu=commands)
        def send(self, apdu: bytes) -> None:
            self._do(Send(self._wrapped(apdu)))

        # The applets' own corpus gets rules of its own: it knows their commands best.
        @precondition(lambda self: bool(corpus))
        @rule(apdu=known)
        def send_known(self, apdu: bytes) -> None:
            self._do(Send(self._wrapped(apdu)))

        @precondition(lambda self: in_process)
        @rule(apdu=commands, after=st.integers(0, 3) | st.integers(0, 16))
        def tear(self, apdu: bytes, after: int) -> None:
            self._do(Tear(apdu, after))

        @precondition(lambda self: in_process and bool(corpus))
        @rule(apdu=st.sampled_from(corpus or [b""]), after=st.integers(0, 3))
        def tear_known(self, apdu: bytes, after: int) -> None:
            self._do(Tear(apdu, after))

        @invariant()
        def powered(self) -> None:
            card = self.episode.card
            assert card is None or card.powered

    CardMachine.__name__ = CardMachine.__qualname__ = f"CardMachine_{_ident(target.name)}"
    return CardMachine


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


@contextlib.contextmanager
def fixed_local_constants() -> Iterator[None]:
    """Hypothesis' generation from its seed alone, whatever the process imported before.

    Hypothesis (6.131 on; checked with 6.155.2 and 6.170.27) draws, with probability
    0.05 per choice, a "local constant": a literal scraped from the source of every
    module of the project that happens to be in `sys.modules`
    (`providers._get_local_constants`, rescanned whenever `sys.modules` grows). So one
    `@seed` generated other sequences after other imports: without this,
    `run_stateful(seed=0)` found the torn pair of tests/fuzz/buggy.py in 588 runs in a
    bare process, 1,763 after importing tests.unit.doorlock_cards (whose imports bring
    in the door-lock applets' and systems' literals), with either version; with it, in
    471 runs in both (6.170.27). For the run, the pool is empty (Hypothesis' own global
    constants stay) and its filtered cache cleared on the way in and out; a process-
    wide change while it lasts, so not for threads running Hypothesis meanwhile. A
    Hypothesis without the pool has nothing to fix. Checked in a fresh interpreter by
    tests/fuzz/test_fuzz_stateful.py (its `_disturbing` imports).
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # a Hypothesis before local constants
        yield
        return
    scan = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if scan is None or cache is None:
        yield
        return
    empty = Constants()
    providers._get_local_constants = lambda: empty
    cache.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = scan
        cache.cache.clear()


def run_stateful(
    target: CardTarget,
    *,
    seed: int = 0,
    card_seed: int | None = None,
    examples: int = 100,
    steps: int = 50,
    oracles: frozenset[str] = ALL_ORACLES,
    max_ms: float | None = None,
) -> tuple[Finding | None, Recorder]:
    """Run the state machine under hypothesis; the shrunk finding, if any.

    Args:
        target: the card.
        seed: hypothesis' seed (the same seed, the same run).
        card_seed: the card's RNG seed (default: `seed`).
        examples: sequences to try.
        steps: the most rules in one sequence.
    """
    recorder = Recorder()
    cs = seed if card_seed is None else card_seed
    machine = machine_for(target, seed=cs, oracles=oracles, max_ms=max_ms, recorder=recorder)
    conf = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # No explain phase: the last failing run must be the minimal one.
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        print_blob=False,
        report_multiple_bugs=False,
    )
    test = hypothesis_seed(seed)(get_state_machine_test(machine, settings=conf))
    with quiet_card_logs(), fixed_local_constants():
        try:
            test()
        except Exception:
            # A violation (or hypothesis' report of a flaky one): the recorder has it.
            if recorder.violation is None:
                raise
    if recorder.violation is None:
        return None, recorder
    v = recorder.violation
    found = tuple(recorder.steps)
    # Hypothesis' shrinking stops at a local minimum, which can still hold a step that
    # is not needed (before `fixed_local_constants`, the same seed after other imports
    # shrank the torn pair of `tests/fuzz/buggy.py` to 3 or to 6 steps). The engine's
    # own minimiser (delta debugging, then plainer APDUs, on fresh cards) finishes the
    # job, so the reported sequence is one no single step can be dropped from.
    smaller = minimise(target, cs, [s.event for s in found], v, max_ms=max_ms)
    if smaller is not None and len(smaller[0]) <= len(found):
        found, v = smaller
    applet = target.applets[0].name if len(target.applets) == 1 else "card"
    finding = Finding(1, v, applet, found, len(recorder.steps), recorder.apdus)
    return finding, recorder
