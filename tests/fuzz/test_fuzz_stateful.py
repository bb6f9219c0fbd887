"""Hypothesis state machines for every applet of every preset card, under every oracle.

Each applet gets its own bounded machine (selects, its states, spec and corpus
commands, random shapes, resets, tears). New presets and applets are picked up
without a change here; `HYPOTHESIS_PROFILE=long` runs longer campaigns, as does
`cardemu fuzz --engine stateful`.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from host.fuzz import oracles as o
from host.fuzz.engine import replay_script
from host.fuzz.report import script_text
from host.fuzz.stateful import machine_for, run_stateful
from host.fuzz.targets import preset_target
from host.presets import PRESETS
from tests.fuzz import buggy

# The shrink-length tests leave the response-time oracle out: on a loaded machine a slow
# step is a second, different failure for hypothesis to chase while it shrinks the one
# the test is about (a CI run shrank the torn pair to 5 steps instead of 3).
_UNTIMED = o.ALL_ORACLES - {o.RESPONSE_TIME}

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
EXAMPLES = 300 if LONG else 15
STEPS = 50 if LONG else 25


def _applets() -> list[tuple[str, str]]:
    out = []
    for preset in sorted(PRESETS):
        for a in preset_target(preset).applets:
            out.append((preset, a.name))
    return out


@pytest.mark.parametrize("preset, applet", _applets())
def test_applet_state_machine_holds_every_oracle(preset: str, applet: str) -> None:
    target = preset_target(preset).only([applet])
    machine = machine_for(target, seed=1)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_stateful_engine_finds_and_shrinks_a_state_dependent_bug() -> None:
    target = buggy.target_for(buggy.CrashesWhenVerified)
    finding, rec = run_stateful(target, seed=1, examples=1000, steps=20, oracles=_UNTIMED)
    assert finding is not None, f"{rec.runs} runs, {rec.apdus} APDUs"
    assert finding.violation.oracle == o.NO_EXCEPTION
    # The shrunk sequence: enter the PIN-verified state (SELECT, VERIFY), then the command.
    apdus = [s.event.apdu for s in finding.steps]  # type: ignore[union-attr]
    assert len(apdus) <= 4, [a.hex() for a in apdus]
    assert buggy.VERIFY in apdus
    assert apdus[-1][1:3] == b"\x42\x13"
    text = script_text(finding.steps, target, 1)
    assert [v.oracle for v in replay_script(target, text).violations] == [o.NO_EXCEPTION]


def test_stateful_engine_finds_a_torn_pair() -> None:
    finding, _ = run_stateful(
        buggy.target_for(buggy.TornPair), seed=0, examples=1000, steps=20, oracles=_UNTIMED
    )
    assert finding is not None and finding.violation.oracle == o.TEAR_ATOMICITY
    assert len(finding.steps) <= 3


def test_stateful_engine_passes_a_correct_applet() -> None:
    finding, rec = run_stateful(buggy.target_for(buggy.Correct), seed=1, examples=30, steps=20)
    assert finding is None
    assert rec.runs >= 30 and rec.apdus > 100
