"""Running scenarios: the registry of scenarios and `run_scenario`."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from host.systems.faults import FaultError, FaultInjector, FaultSpec
from host.systems.scenario import (
    Recorder,
    RunContext,
    RunResult,
    Scenario,
    StepRecord,
    Verdict,
)

__all__ = ["SCENARIOS", "get_scenario", "run_scenario"]


def _esim_download() -> Scenario:
    from host.systems.esim_download.scenario import EsimDownload

    return EsimDownload()


def _doorlock() -> Scenario:
    from host.systems.doorlock.scenario import DoorLockScenario

    return DoorLockScenario()


def _repository() -> Scenario:
    from host.systems.repository.scenario import RepositoryScenario

    return RepositoryScenario()


def _profile_move() -> Scenario:
    from host.systems.profile_move.scenario import ProfileMoveScenario

    return ProfileMoveScenario()


def _profile_move_refused() -> Scenario:
    from host.systems.profile_move.scenario import ProfileMoveRefusedScenario

    return ProfileMoveRefusedScenario()


def _ekyc() -> Scenario:
    from host.systems.ekyc.scenario import EkycScenario

    return EkycScenario()


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "ekyc": _ekyc,
    "esim-download": _esim_download,
    "doorlock": _doorlock,
    "repository": _repository,
    "profile-move": _profile_move,
    "profile-move-refused": _profile_move_refused,
}
"""Scenario name → factory (the four systems add theirs here)."""


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`.

    Raises:
        KeyError: no such scenario.
    """
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise KeyError(
            f"no scenario {name!r} (there are: {', '.join(sorted(SCENARIOS))})"
        ) from None
    return factory()


def run_scenario(
    scenario: Scenario,
    *,
    fault: FaultSpec | str | None = None,
    pcsc: bool = False,
    processes: bool = False,
    seed: int | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> RunResult:
    """Run `scenario` once, recording every message, optionally under one fault.

    Args:
        scenario: what to run.
        fault: a fault spec (`FaultSpec` or its text).
        pcsc: serve the cards through pcscd and vpcd.
        processes: run the servers as real processes (a kill fault implies it).
        seed: seeds the emulated cards' RNGs.
        on_step: called with each step as it completes (the narrative).

    Raises:
        FaultError: the fault does not parse or names a step the scenario lacks.
        PcscUnavailable: `pcsc` asked for and the PC/SC stack is not here.
    """
    if pcsc:
        from host.systems.pcsc import check_pcsc

        check_pcsc()
    spec = FaultSpec.parse(fault) if isinstance(fault, str) else fault
    if spec is not None:
        numbers = {s.number for s in scenario.steps}
        if spec.step not in numbers:
            raise FaultError(f"{spec}: {scenario.name} has no step {spec.step}")
        if spec.action == "tear" and spec.arg is None:
            raise FaultError(f"{spec}: give the NVM write, tear:CARD@STEP=WRITE")
    recorder = Recorder(scenario.steps, on_step=on_step)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"cardemu-{scenario.name}-") as workdir:
        ctx = RunContext(
            recorder,
            spec,
            pcsc,
            processes or (spec is not None and spec.action == "kill"),
            workdir,
            seed,
        )
        if spec is not None:
            recorder.injector = ctx.injector = FaultInjector(spec)
        error: BaseException | None = None
        try:
            scenario.run(ctx)
        except Exception as e:  # noqa: BLE001 - a failed run is a result, judged by verdicts
            error = e
            recorder.step_failed(f"{type(e).__name__}: {e}")
        outcome, claims = scenario.verdicts(ctx, error)
    verdicts = [_outcome_verdict(scenario, spec, outcome), *claims]
    return RunResult(
        scenario.name,
        scenario.title,
        scenario.parties,
        recorder.records,
        verdicts,
        outcome,
        str(spec) if spec is not None else None,
        f"{type(error).__name__}: {error}" if error is not None else None,
        time.perf_counter() - t0,
        dict(recorder.nvm_writes),
        dict(recorder.card_nvm_writes),
    )


def _outcome_verdict(scenario: Scenario, spec: FaultSpec | None, outcome: str) -> Verdict:
    """Without a fault the run must complete; under a declared fault point, its outcome."""
    if spec is None:
        expected = scenario.expected_outcome
        name = "the scenario completes" if expected == "completed" else f"outcome {expected}"
        return Verdict(name, outcome == expected, f"outcome {outcome}")
    for point in scenario.fault_points:
        declared = point.fault
        if (declared.action, declared.target, declared.step, declared.nth) == (
            spec.action,
            spec.target,
            spec.step,
            spec.nth,
        ) and declared.arg in (None, spec.arg):
            return Verdict(
                f"under {spec}: outcome {point.expect}",
                outcome == point.expect,
                f"outcome {outcome} ({point.why})",
            )
    return Verdict(f"under {spec} (not a declared fault point)", True, f"outcome {outcome}")
