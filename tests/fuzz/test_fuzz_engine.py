"""The campaign engine: it finds each planted bug, seeds reproduce, findings shrink to
small scripts that `cardemu run` and `cardemu fuzz --replay` replay."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from applets.sample import PURSE_AID
from host.cli import cli
from host.fuzz import oracles as o
from host.fuzz.corpus import Corpus
from host.fuzz.coverage import Coverage, executable_lines
from host.fuzz.engine import (
    FuzzConfig,
    Fuzzer,
    ddmin,
    plainer,
    replay_script,
    script_directives,
    script_events,
)
from host.fuzz.mutators import mutate
from host.fuzz.session import RateLimitedReader, Reset, Send, Tear
from host.fuzz.targets import preset_target, reader_target
from host.presets import new_card
from host.readers.inprocess import InProcessReader
from host.script import parse_script, run_script
from host.tracefile import read_trace
from tests.fuzz import buggy


def campaign(cls: type, budget: int = 3000, **kw: object) -> object:
    max_ms = kw.pop("max_ms", 1000.0)
    target = buggy.target_for(cls, max_ms=max_ms)  # type: ignore[arg-type]
    cfg = FuzzConfig(seed=1, budget=budget, minimise_seconds=10, **kw)  # type: ignore[arg-type]
    return Fuzzer(target, cfg).run()


@pytest.mark.parametrize(
    "cls, oracle, extra",
    [
        (buggy.CrashesWhenVerified, o.NO_EXCEPTION, {}),
        (buggy.EscapesRuntime, o.NO_EXCEPTION, {}),
        (buggy.BadStatus, o.WELL_FORMED, {}),
        (buggy.DirtyError, o.ERROR_KEEPS_STATE, {}),
        (buggy.RetryReset, o.RETRY_COUNTER, {}),
        (buggy.LeaksPin, o.NO_SECRET, {}),
        (buggy.LeaksKey, o.NO_SECRET, {}),
        (buggy.Slow, o.RESPONSE_TIME, {"max_ms": 10.0}),
        (buggy.TornPair, o.TEAR_ATOMICITY, {}),
        (buggy.Nondeterministic, o.DETERMINISM, {}),
    ],
)
def test_campaign_finds_the_planted_bug(cls: type, oracle: str, extra: dict) -> None:
    report = campaign(cls, **extra)
    found = {f.violation.oracle for f in report.findings}  # type: ignore[attr-defined]
    assert oracle in found, report.text()  # type: ignore[attr-defined]
    assert found <= {oracle, o.RESPONSE_TIME}  # nothing else (timing may flake on a busy box)


def test_correct_applet_gives_no_finding() -> None:
    report = campaign(buggy.Correct)
    assert report.findings == [], report.text()  # type: ignore[attr-defined]
    assert report.apdus == 3000  # type: ignore[attr-defined]
    assert report.tears > 0  # type: ignore[attr-defined]


def test_demo_card_campaign_is_clean_and_covers_every_applet() -> None:
    report = Fuzzer(preset_target("demo"), FuzzConfig(seed=5, budget=6000)).run()
    assert report.findings == [], report.text()
    assert report.tears > 0
    for a in report.applets:
        assert a.apdus > 500, a.name
        assert len(a.sws) >= 5, a.name
        assert a.lines_total > 0 and a.lines_covered > 0, a.name
    purse = next(a for a in report.applets if a.name == "purse")
    assert purse.lines_covered / purse.lines_total > 0.8  # the states and specs reach it
    assert purse.states["pin-verified"] > 0
    assert {"spec", "spec-broken", "corpus", "sweep", "structured", "raw", "follow-up"} <= set(
        report.kinds
    )


def test_the_same_seed_reproduces_the_campaign() -> None:
    target = preset_target("demo")
    runs = [Fuzzer(target, FuzzConfig(seed=s, budget=2500)).run() for s in (3, 3, 4)]
    assert runs[0].digest == runs[1].digest
    assert runs[0].digest != runs[2].digest
    assert [a.apdus for a in runs[0].applets] == [a.apdus for a in runs[1].applets]
    assert [dict(a.sws) for a in runs[0].applets] == [dict(a.sws) for a in runs[1].applets]


def test_finding_shrinks_to_a_small_replayable_script(tmp_path: Path) -> None:
    target = buggy.target_for(buggy.CrashesWhenVerified)
    cfg = FuzzConfig(seed=2, budget=4000, findings_dir=tmp_path, card_seed=9)
    report = Fuzzer(target, cfg).run()
    (finding,) = [f for f in report.findings if f.violation.oracle == o.NO_EXCEPTION]
    # SELECT, VERIFY, the crashing command: nothing else is needed.
    assert len(finding.steps) == 3, [s.event for s in finding.steps]
    assert finding.original_steps >= len(finding.steps)
    events = [s.event for s in finding.steps]
    assert events[1] == Send(buggy.VERIFY)
    crash = events[2].apdu  # type: ignore[union-attr]
    assert crash[1:3] == b"\x42\x13" and len(crash) == 4  # data, Le and P2 shrunk away
    assert events[0].apdu[1] == 0xA4 and len(events[0].apdu) <= 5 + len(buggy.AID)  # type: ignore[union-attr]

    text = finding.script.read_text()
    assert "# fuzz: card-seed 9" in text
    assert "no-exception" in text and "ZeroDivisionError" in text
    # `cardemu run`'s engine replays it with every expectation met...
    script = parse_script(text)
    card = target.build(9)
    result = run_script(script, InProcessReader(card))
    assert result.expectations_met == 3
    assert card.exceptions == 1
    # ... and `cardemu fuzz --replay`'s finds the violation again.
    out = replay_script(target, text)
    assert [v.oracle for v in out.violations] == [o.NO_EXCEPTION]
    trace = read_trace(finding.trace)
    assert [ex.command for ex in trace.exchanges] == [e.apdu for e in events]  # type: ignore[union-attr]
    assert trace.header.seed == 9


def test_tear_finding_script_carries_the_tear(tmp_path: Path) -> None:
    target = buggy.target_for(buggy.TornPair)
    report = Fuzzer(target, FuzzConfig(seed=1, budget=3000, findings_dir=tmp_path)).run()
    (finding,) = [f for f in report.findings if f.violation.oracle == o.TEAR_ATOMICITY]
    assert isinstance(finding.steps[-1].event, Tear)
    assert len(finding.steps) <= 3
    text = finding.script.read_text()
    assert "# fuzz: tear-after 1" in text
    events, seed = script_events(text)
    assert seed == 1
    assert isinstance(events[-1], Tear) and events[-1].after == 1
    assert [v.oracle for v in replay_script(target, text).violations] == [o.TEAR_ATOMICITY]


def test_preset_findings_name_the_preset_and_replay_command(tmp_path: Path) -> None:
    from host.fuzz.report import Finding, save_finding
    from host.fuzz.session import Episode

    target = preset_target("demo")
    ep = Episode(target, 4)
    ep.send(bytes.fromhex("00A4040009") + PURSE_AID)
    ep.reset()
    ep.send(bytes.fromhex("8050000004"))
    v = o.Violation(o.RESPONSE_TIME, "slow", 2, "50")
    f = Finding(1, v, "purse", tuple(ep.steps), 3)
    save_finding(f, tmp_path, target, 4, ep.atr)
    text = f.script.read_text()
    assert "cardemu run --preset demo --seed 4 001-response-time-purse.apdu" in text
    assert script_directives(text) == {"card-seed": "4", "preset": "demo"}
    events, _ = script_events(text)
    assert events == [s.event for s in ep.steps]
    assert isinstance(events[1], Reset)
    assert f.image is None  # the preset rebuilds the card


def test_image_of_a_card_no_preset_rebuilds(tmp_path: Path) -> None:
    from host.fuzz.targets import image_target

    img = tmp_path / "c.card"
    new_card("demo", img, rng_seed=1).close()
    target = image_target(img)
    assert target.run_options == () and target.rebuildable_image()
    before = img.read_bytes()
    report = Fuzzer(target, FuzzConfig(seed=1, budget=800)).run()
    assert report.findings == []
    assert img.read_bytes() == before  # fuzzing never writes the user's image
    assert [a.name for a in target.applets] == [a.name for a in preset_target("demo").applets]


def test_corpus_directory_grows_and_is_read_back(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.hex").write_text("# a seed\n00A4040009F043415244454D5501\n8050000004\n")
    Fuzzer(preset_target("demo"), FuzzConfig(seed=1, budget=1500, corpus_dir=corpus)).run()
    written = sorted(corpus.glob("*.apdu"))
    assert written
    assert "# applet:" in written[0].read_text()
    again = Corpus(corpus)
    assert len(again) == len(written) + 1
    assert any(e.applet for e in again.entries)


def test_card_in_a_reader_is_fuzzed_at_the_rate_limit() -> None:
    card = new_card("demo", rng_seed=1)
    reader = RateLimitedReader(InProcessReader(card), rate=500)
    reader.connect()
    target = reader_target(reader, [PURSE_AID])
    assert not target.in_process and target.applets[0].name == "purse"
    t0 = time.monotonic()
    report = Fuzzer(target, FuzzConfig(seed=1, budget=100)).run()
    elapsed = time.monotonic() - t0
    assert report.apdus == 100 and report.findings == []
    assert elapsed >= 99 / 500 * 0.9
    assert o.ERROR_KEEPS_STATE not in report.oracles and o.WELL_FORMED in report.oracles
    assert report.tears == 0 and not report.coverage


# -- pieces ---------------------------------------------------------------------------------------


def test_ddmin_keeps_exactly_what_matters() -> None:
    items = [Send(bytes((i,))) for i in range(40)]
    needed = {items[3], items[17], items[31]}

    def fails(xs: list) -> bool:
        return needed <= set(xs)

    assert ddmin(items, fails) == [items[3], items[17], items[31]]  # type: ignore[arg-type]


def test_plainer_forms_are_strictly_simpler() -> None:
    apdu = bytes.fromhex("80421301 03 AABBCC 10")
    forms = plainer(apdu)
    assert bytes.fromhex("80421301 03 AABBCC") in forms  # Le dropped
    assert bytes.fromhex("8042130100") not in forms  # not simpler than... a valid shape anyway
    assert all((len(f), sum(f)) < (len(apdu), sum(apdu)) for f in forms)
    assert plainer(b"\x00") == []
    assert all(len(f) >= 4 for f in plainer(bytes.fromhex("8042") + bytes.fromhex("13000100")))
    assert bytes.fromhex("80") in plainer(bytes.fromhex("8042"))  # already short: may shrink


def test_scripts_keep_short_commands_for_the_fuzzer_only() -> None:
    from host.fuzz.report import script_text
    from host.fuzz.session import Episode

    target = preset_target("demo")
    ep = Episode(target, 1)
    ep.send(bytes.fromhex("0000"))
    text = script_text(ep.steps, target, 1)
    assert "# Replay: cardemu run" not in text and "refuses its commands under 4 bytes" in text
    events, _ = script_events(text)
    assert events == [Send(bytes.fromhex("0000"))]


def test_mutations_never_return_empty_commands() -> None:
    r = random.Random(1)
    for _ in range(2000):
        assert mutate(bytes.fromhex("00A4040002 3F00 00"), r)


def test_coverage_counts_lines_and_new_arcs(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f(a):\n    if a:\n        return 1\n    return 2\n")
    assert executable_lines(str(src)) == {2, 3, 4}
    ns: dict = {}
    exec(compile(src.read_text(), str(src), "exec"), ns)
    cov = Coverage([str(src)])
    assert cov.run(ns["f"], 1) == 1
    assert cov.take_new() == 4  # lines 2, 3 and arcs (0,2), (2,3)
    cov.run(ns["f"], 1)
    assert cov.take_new() == 0
    cov.run(ns["f"], 0)
    assert cov.take_new() == 2  # line 4 and arc (2,4)
    assert cov.summary() == (3, 3, 3)
    assert cov.missing(str(src)) == []


def test_coverage_forgets_what_a_cut_command_saw(tmp_path: Path) -> None:
    # A random tear first sends the command armed to lose power at its first write; if
    # it writes, what was traced is forgotten (it runs again from the start), so the
    # campaign goes as if the cut run never happened (the same seed, the same digest).
    src = tmp_path / "m.py"
    src.write_text("def f(a):\n    if a:\n        return 1\n    return 2\n")
    ns: dict = {}
    exec(compile(src.read_text(), str(src), "exec"), ns)
    cov = Coverage([str(src)])
    cov.run(ns["f"], 1)
    assert cov.take_new() == 4
    before = (set(cov.lines), set(cov.arcs), cov._calls, cov._quiet, 0)
    mark = cov.mark()
    cov.run(ns["f"], 0)
    cov.forget(mark)
    assert (set(cov.lines), set(cov.arcs), cov._calls, cov._quiet, cov.take_new()) == before
    mark = cov.mark()
    cov.run(ns["f"], 0)
    cov.keep()
    assert cov.take_new() == 2 and cov._journal is None


# -- the command line -----------------------------------------------------------------------------


def test_cli_fuzz_prints_the_campaign_report(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli, ["fuzz", "--budget", "1500", "--seed", "2", "--findings", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "APDUs/s" in r.output and "findings: none" in r.output
    for name in ("iso7816", "purse", "echo", "counter-client"):
        assert name in r.output
    r = CliRunner().invoke(cli, ["fuzz", "--budget", "500", "--json", "--applet", "purse"])
    assert "campaign running" in r.stderr  # stdout is the JSON document alone
    data = json.loads(r.stdout)
    assert data["apdus"] == 500 and [a["name"] for a in data["applets"]] == ["purse"]
    assert data["applets"][0]["distinct_status_words"] > 3


def test_cli_fuzz_list_bench_and_replay(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["fuzz", "--list", "--applet", "purse"])
    assert r.exit_code == 0 and "pin-verified" in r.output and "tear-atomicity" in r.output
    r = CliRunner().invoke(cli, ["fuzz", "--bench", "--budget", "200", "--applet", "echo"])
    assert r.exit_code == 0 and "echo" in r.output and "+coverage" in r.output
    script = tmp_path / "s.apdu"
    script.write_text("# fuzz: card-seed 1\n00A4040009F043415244454D5501 =*9000\n8050000004\n")
    r = CliRunner().invoke(cli, ["fuzz", "--replay", str(script)])
    assert r.exit_code == 0 and "every oracle held" in r.output
    r = CliRunner().invoke(cli, ["fuzz", "--applet", "nope", "--budget", "10"])
    assert r.exit_code == 2 and "no applet 'nope'" in r.output  # a usage error
    r = CliRunner().invoke(cli, ["fuzz", "--oracle", "nope"])
    assert r.exit_code == 2


def test_progress_shows_on_a_tty_only() -> None:
    import io

    from host.fuzz.report import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(stream, interval=0)
        Fuzzer(preset_target("demo").only(["purse"]), FuzzConfig(budget=300), p).run()
    assert "\r" in tty.getvalue() and "APDUs" in tty.getvalue() and "lines" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    assert pipe.getvalue() == ""


def test_cli_stateful_engine(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli,
        ["fuzz", "--engine", "stateful", "--applet", "purse", "--budget", "500", "--findings",
         str(tmp_path)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "stateful (hypothesis)" in r.output and "findings: none" in r.output


def test_declared_secret_is_caught_on_a_card_in_a_reader() -> None:
    from host.fuzz.targets import AppletTarget, Secret

    card = buggy.target_for(buggy.LeaksKey).build(1)
    reader = RateLimitedReader(InProcessReader(card), rate=5000)
    reader.connect()
    profile = AppletTarget("buggy", buggy.AID, corpus=buggy.CORPUS)
    target = reader_target(
        reader, [buggy.AID], secrets=(Secret("the key", buggy.KEY),), profiles=[profile]
    )
    report = Fuzzer(target, FuzzConfig(seed=1, budget=400)).run()
    assert [f.violation.oracle for f in report.findings] == [o.NO_SECRET]
    assert "the key" in report.findings[0].violation.message


@pytest.mark.parametrize("declared", [True, False])
def test_a_four_byte_secret_is_looked_for_when_declared(declared: bool) -> None:
    """A real card's 4-byte PIN (`--secret`) is reported; an unconfirmable guess of that
    length is not (it would match public bytes by chance)."""
    from host.fuzz.targets import AppletTarget, Secret

    card = buggy.target_for(buggy.LeaksKey).build(1)
    reader = RateLimitedReader(InProcessReader(card), rate=5000)
    reader.connect()
    profile = AppletTarget("buggy", buggy.AID, corpus=buggy.CORPUS)
    secret = Secret("the PIN", buggy.KEY[:4], declared=declared)
    target = reader_target(reader, [buggy.AID], secrets=(secret,), profiles=[profile])
    report = Fuzzer(target, FuzzConfig(seed=1, budget=400)).run()
    found = {f.violation.oracle for f in report.findings}
    assert found == ({o.NO_SECRET} if declared else set())


def test_cli_refuses_a_secret_under_four_bytes() -> None:
    r = CliRunner().invoke(cli, ["fuzz", "--secret", "00", "--budget", "10"])
    assert r.exit_code == 2
    assert "a secret has 4 bytes or more" in r.output


def test_a_timed_run_says_how_to_reproduce_it_and_that_works() -> None:
    timed = Fuzzer(preset_target("demo").only(["purse"]), FuzzConfig(seed=3, seconds=0.2)).run()
    assert not timed.counted
    assert f"--seed 3 --budget {timed.apdus} replays" in timed.text()
    again = Fuzzer(
        preset_target("demo").only(["purse"]), FuzzConfig(seed=3, budget=timed.apdus)
    ).run()
    assert again.counted and again.apdus == timed.apdus
    assert again.digest == timed.digest
    assert "the same seed and options give the same digest" in again.text()
