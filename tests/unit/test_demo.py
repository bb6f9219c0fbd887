"""`cardemu demo`: every registered system end to end; its table, JSON, report, exit code."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from host.cli import main
from host.commands.demo import DEMO_ORDER, demo_systems
from host.systems import run as run_mod
from host.systems.scenario import Party, RunContext, Scenario, StepSpec, Verdict


def test_demo_runs_every_registered_system(capsys, tmp_path) -> None:
    report = tmp_path / "demo.html"
    assert main(["demo", "--json", "--report", str(report), "--seed", "1"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    names = [s["scenario"] for s in doc["systems"]]
    assert names == demo_systems() and set(names) == set(run_mod.SCENARIOS)
    from host.systems.run import get_scenario

    assert doc["ok"] and all(s["ok"] for s in doc["systems"])
    for s in doc["systems"]:  # each ends as its scenario means to (a refused move rolls back)
        assert s["outcome"] == get_scenario(s["scenario"]).expected_outcome, s["scenario"]
    esim = doc["systems"][names.index("esim-download")]
    assert any(
        v["name"].startswith("the profile on the eUICC answers AUTHENTICATE") and v["ok"]
        for v in esim["verdicts"]
    )
    # The narrative (banner, each system's steps) on stderr, nothing of it on stdout.
    assert captured.err.startswith(f"cardemu demo: {len(names)} system(s) end to end")
    assert "ES10b.LoadBoundProfilePackage" in captured.err
    assert "ES10b.LoadBoundProfilePackage" not in captured.out.split('"steps"')[0]
    page = report.read_text(encoding="utf-8")
    for name in names:
        assert f'<section id="{name}">' in page
        assert f'href="#{name}-step-0"' in page and f'id="{name}-step-0"' in page
    assert page.count("<svg ") == len(names) and "<script" not in page


def test_demo_table_on_stdout(capsys) -> None:
    assert main(["demo", "--system", "esim-download"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["system", "result", "steps", "time", "what"]
    assert lines[1].split()[:3] == ["esim-download", "pass", "15"]
    assert lines[-1].startswith("1 of 1 systems passed in ")
    assert "USIM.AUTHENTICATE" in captured.err and "USIM.AUTHENTICATE" not in captured.out


def test_demo_order_is_the_documented_one() -> None:
    order = demo_systems()
    assert order[0] == "esim-download"
    assert [n for n in order if n in DEMO_ORDER] == [n for n in DEMO_ORDER if n in order]


def test_demo_refuses_an_unknown_system(capsys) -> None:
    assert main(["demo", "--system", "no-such-system"]) == 2
    err = capsys.readouterr().err
    assert "no system 'no-such-system'" in err and "esim-download" in err


class _Broken(Scenario):
    """A system whose one claim does not hold: the demo must say FAIL and exit 1."""

    name = "broken"
    title = "a system that fails its claim"
    parties: ClassVar[tuple[Party, ...]] = (Party("a", "terminal", "a"),)
    steps: ClassVar[tuple[StepSpec, ...]] = (StepSpec(1, "X", "Only", "a", "a", "one step"),)

    def run(self, ctx: RunContext) -> None:
        ctx.recorder.step_done("X", "Only", "done")

    def verdicts(self, ctx: RunContext, error: BaseException | None) -> tuple[str, list[Verdict]]:
        return "completed", [Verdict("the claim holds", False, "it does not")]


def test_demo_fails_when_one_system_fails(capsys, monkeypatch) -> None:
    monkeypatch.setitem(run_mod.SCENARIOS, "broken", _Broken)
    assert main(["demo", "--system", "broken", "--system", "esim-download"]) == 1
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1] for line in captured.out.splitlines()[1:-1]}
    assert rows == {"esim-download": "pass", "broken": "FAIL"}
    assert captured.out.splitlines()[-1].startswith("1 of 2 systems passed")
    assert "FAILED: the claim holds: it does not" in captured.err


@pytest.mark.parametrize("flag", ["--json", None])
def test_demo_json_error_on_bad_system(capsys, flag) -> None:
    args = ["demo", "--system", "nope"] + ([flag] if flag else [])
    assert main(args) == 2


def test_the_demo_report_renders_in_headless_chromium(tmp_path) -> None:
    """The README's picture is made this way: demo --report, then headless Chromium."""
    import struct

    from host.systems.screenshot import chromium, screenshot

    if chromium() is None:
        pytest.skip("no chromium here (apt-get install --no-install-recommends chromium)")
    report = tmp_path / "demo.html"
    assert main(["demo", "--system", "esim-download", "--report", str(report)]) == 0
    png = screenshot(report, tmp_path / "demo.png", width=900, height=700)
    data = png.read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert (width, height) == (900, 700) and len(data) > 20_000  # a page, not a blank one
