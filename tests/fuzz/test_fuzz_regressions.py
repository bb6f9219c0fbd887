"""Minimised finding scripts, replayed under every oracle: once fixed, they must hold.

Each `regressions/*.apdu` is a script `cardemu fuzz` saved for a finding (see
`host.fuzz.report`), kept after the bug was fixed. Its `# fuzz: preset NAME` and
`# fuzz: card-seed N` lines say which card to replay it on; tears come from
`# fuzz: tear-after K`. The expectations in the script are those of the buggy
run, so only the oracles are checked, not the status words. A finding reported
but not fixed yet says so with `# fuzz: known-issue WHY` and is a strict xfail.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from host.fuzz import oracles as o
from host.fuzz.engine import replay_script, script_directives
from host.fuzz.report import script_text
from host.fuzz.session import Episode
from host.fuzz.targets import CardTarget, preset_target
from tests.fuzz import buggy

REGRESSIONS = Path(__file__).parent / "regressions"


def _scripts() -> list[object]:
    # A finding not fixed yet carries `# fuzz: known-issue WHY`: it must still fail (a
    # strict xfail), so that the day it is fixed the directive has to go.
    out: list[object] = []
    for path in sorted(REGRESSIONS.glob("*.apdu")):
        issue = script_directives(path.read_text(encoding="utf-8")).get("known-issue")
        marks = [pytest.mark.xfail(strict=True, reason=issue)] if issue else []
        out.append(pytest.param(path, marks=marks, id=path.name))
    return out


def violations(text: str, target: CardTarget | None = None) -> list[o.Violation]:
    """Replay a regression script on its card; the violations seen."""
    if target is None:
        preset = script_directives(text).get("preset")
        assert preset, "a regression script names its card with '# fuzz: preset NAME'"
        target = preset_target(preset)
    # A regression that is back as a hang is interrupted (and reported), never waited for.
    target = replace(target, hang_ms=3 * target.max_ms, memory_mb=512.0)
    return replay_script(target, text).violations


@pytest.mark.parametrize("path", _scripts())
def test_regression_script_holds_every_oracle(path: Path) -> None:
    found = violations(path.read_text(encoding="utf-8"))
    assert found == [], "\n".join(str(v) for v in found)


def test_the_walker_catches_a_script_that_still_fails() -> None:
    # A finding's script against the still-buggy applet: the replay must report it.
    target = buggy.target_for(buggy.DirtyError)
    ep = Episode(target, 3)
    ep.send(bytes.fromhex("00A4040007") + buggy.AID)
    ep.send(bytes.fromhex("8050000002AABB"))
    text = script_text(ep.steps, target, 3)
    found = violations(text, target)
    assert [v.oracle for v in found] == [o.ERROR_KEEPS_STATE]
    # ... and the fixed applet passes the same script.
    assert violations(text, buggy.target_for(buggy.Correct)) == []


def test_preset_scripts_name_their_card() -> None:
    target = preset_target("demo")
    ep = Episode(target, 2)
    ep.send(bytes.fromhex("8050000004"))
    text = script_text(ep.steps, target, 2)
    assert script_directives(text)["preset"] == "demo"
    assert violations(text) == []
