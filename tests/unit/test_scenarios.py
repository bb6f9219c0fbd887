"""Scenarios (host.systems): recorders, fault specs, reports, and the esim-download scenario.

The eSIM download runs for real (an emulated eUICC, the SM-DP+ over HTTPS on
loopback, the LPA); every declared fault point is walked and its outcome and
claims asserted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.cli import main
from host.readers.base import ReaderError
from host.systems.faults import FaultError, FaultInjector, FaultSpec, walk
from host.systems.report import html_report
from host.systems.run import get_scenario, run_scenario
from host.systems.scenario import LocalLink, Recorder, StepSpec

STEPS = (
    StepSpec(1, "X", "Hello", "a", "b", "a greets b"),
    StepSpec(2, "X", "Reply", "b", "a", "b answers"),
    StepSpec(3, "X", "Bye", "a", "b", "done"),
)


# -- fault specs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,spec",
    [
        ("kill:smdpp@7", FaultSpec("kill", "smdpp", 7)),
        ("drop:http@7", FaultSpec("drop", "http", 7)),
        ("drop@8.3", FaultSpec("drop", None, 8, 3)),
        ("dup:http@5", FaultSpec("dup", "http", 5)),
        ("delay:apdu@8.2=250", FaultSpec("delay", "apdu", 8, 2, 250)),
        ("tear:euicc@8=3", FaultSpec("tear", "euicc", 8, 1, 3)),
        ("tear:euicc@8=*", FaultSpec("tear", "euicc", 8, 1, None)),
    ],
)
def test_fault_specs_parse(text: str, spec: FaultSpec) -> None:
    assert FaultSpec.parse(text) == spec
    assert str(spec) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "explode@3",
        "kill@7",  # which server?
        "delay:http@7",  # how long?
        "tear@8=3",  # which card?
        "tear:euicc@8=0",  # writes count from 1
        "drop:smtp@3",  # no such message kind
        "drop@3.0",
        "drop@x",
        "kill:smdpp@7;rm -rf",
    ],
)
def test_bad_fault_specs_are_refused(text: str) -> None:
    with pytest.raises(FaultError):
        FaultSpec.parse(text)


@given(
    st.sampled_from(["drop", "dup", "delay"]),
    st.sampled_from([None, "http", "apdu", "link"]),
    st.integers(0, 999),
    st.integers(1, 99),
    st.integers(0, 10_000),
)
def test_fault_spec_round_trip(action: str, kind: str | None, step: int, nth: int, ms: int) -> None:
    spec = FaultSpec(action, kind, step, nth, ms if action == "delay" else None)  # type: ignore[arg-type]
    assert FaultSpec.parse(str(spec)) == spec


# -- the recorder ---------------------------------------------------------------------------


def test_messages_belong_to_the_step_that_completes() -> None:
    done = []
    rec = Recorder(STEPS, on_step=done.append)
    link = LocalLink(rec, "a", "b")
    assert rec.current_number == 1
    assert link.send("a", b"\x01", "hello") == b"\x01"
    rec.step_done("X", "Hello", "said hello")
    assert rec.current_number == 2
    link.send("b", b"\x02", "reply")
    link.send("b", b"\x03", "reply again")
    rec.step_done("X", "Reply")
    rec.step_done("X", "Extra", "not declared")
    link.send("a", b"\x04", "bye")
    failed = rec.step_failed("ValueError: gone")
    assert [r.spec.number for r in done] == [1, 2, 2, 3]
    assert [len(r.messages) for r in done] == [1, 2, 0, 1]
    assert [m.step for m in done[1].messages] == [2, 2]
    assert done[1].messages[0].source == "b" and done[1].messages[0].target == "a"
    assert done[2].spec.meaning == "(not a declared step)"
    assert failed is done[3] and failed.verdict == "failed" and "gone" in failed.line()
    with pytest.raises(ValueError):
        link.send("c", b"", "not on the link")


@pytest.mark.parametrize(
    "fault,arrives,note",
    [
        ("drop:link@2.2", [b"\x02", None, b"\x04"], "dropped"),
        ("dup:link@2", [b"\x02", b"\x03", b"\x04"], "duplicated"),
        ("delay@2.3=50", [b"\x02", b"\x03", b"\x04"], "delayed 50 ms"),
        ("drop:http@2", [b"\x02", b"\x03", b"\x04"], ""),  # not a link message: untouched
        ("drop:link@1", [b"\x02", b"\x03", b"\x04"], ""),  # another step: untouched
    ],
)
def test_message_faults_on_a_local_link(fault: str, arrives: list, note: str) -> None:
    rec = Recorder(STEPS)
    rec.injector = FaultInjector(FaultSpec.parse(fault))
    link = LocalLink(rec, "a", "b")
    rec.step_done("X", "Hello")
    t0 = time.perf_counter()
    got = [link.send("b", bytes([i]), f"m{i}") for i in (2, 3, 4)]
    assert got == arrives
    assert [m.fault for m in rec.pending if m.fault] == ([note] if note else [])
    if "delay" in fault:
        assert time.perf_counter() - t0 >= 0.05


def test_an_apdu_drop_is_a_reader_error() -> None:
    rec = Recorder(STEPS)
    rec.injector = FaultInjector(FaultSpec.parse("drop:apdu@1"))
    with pytest.raises(ReaderError, match="lost"):
        rec.deliver("apdu", "a", "b", lambda: b"\x90\x00")


def test_unknown_scenario_and_misfit_faults() -> None:
    with pytest.raises(KeyError, match="esim-download"):
        get_scenario("nope")
    sc = get_scenario("esim-download")
    with pytest.raises(FaultError, match="no step 99"):
        run_scenario(sc, fault="drop@99")
    with pytest.raises(FaultError, match="WRITE"):
        run_scenario(sc, fault="tear:euicc@8=*")


# -- esim-download ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_run():
    return run_scenario(get_scenario("esim-download"), seed=1)


def test_esim_download_records_every_message_under_its_step(clean_run) -> None:
    r = clean_run
    assert r.ok and r.outcome == "completed" and r.error is None
    got = [(s.spec.number, s.spec.name) for s in r.steps]
    assert got == [
        (0, "SM-DP+.serve"),
        (1, "ES10b.GetEUICCChallenge"),
        (2, "ES10b.GetEUICCInfo1"),
        (3, "ES9+.InitiateAuthentication"),
        (4, "ES10b.AuthenticateServer"),
        (5, "ES9+.AuthenticateClient"),
        (6, "ES10b.PrepareDownload"),
        (7, "ES9+.GetBoundProfilePackage"),
        (8, "ES10b.LoadBoundProfilePackage"),
        (9, "ES9+.HandleNotification"),
        (10, "ES10b.RemoveNotificationFromList"),
        (11, "ES10c.EnableProfile"),
        (12, "ES10c.GetProfilesInfo"),
        (13, "ES9+.HandleNotification"),
        (14, "USIM.AUTHENTICATE"),
    ]
    by = {s.spec.number: s for s in r.steps}
    # ES9+ steps carry exactly their HTTP exchange, to the SM-DP+.
    for n, fn in ((3, "initiateAuthentication"), (5, "authenticateClient"), (7, "getBound")):
        http = [m for m in by[n].messages if m.kind == "http"]
        assert len(http) == 1 and fn in http[0].summary and "200" in http[0].summary
        assert (http[0].source, http[0].target, http[0].step) == ("lpa", "smdpp", n)
        assert json.loads(http[0].request) and json.loads(http[0].response)["header"]
    # ES10 steps carry APDUs to the eUICC; LoadBoundProfilePackage many.
    for n in (1, 2, 4, 6, 8, 10, 11, 12, 14):
        assert by[n].messages and {m.kind for m in by[n].messages} == {"apdu"}
        assert all(m.target == "euicc" and m.response for m in by[n].messages)
    assert len(by[8].messages) > 10
    assert r.nvm_writes[8] > 10
    assert {v.name for v in r.verdicts if not v.ok} == set()


def test_reports_json_and_html(clean_run) -> None:
    j = clean_run.to_json()
    assert [p["name"] for p in j["parties"]] == ["lpa", "euicc", "smdpp"]
    assert j["steps"][3]["messages"][0]["kind"] == "http"
    assert all("elapsed_ms" in s and "verdict" in s for s in j["steps"])
    assert j["nvm_writes"]["8"] == clean_run.nvm_writes[8] > 10
    page = html_report(clean_run)
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    # Self-contained: no script, nothing fetched.
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    for s in clean_run.steps:
        assert f"{s.spec.number} {s.spec.name}" in page


def test_cli_scenario_list_and_run(tmp_path, capsys) -> None:
    assert main(["scenario", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = next(r for r in rows if r["name"] == "esim-download")  # other systems list beside it
    assert {"fault": "kill:smdpp@7", "expect": "completed"}.items() <= row["fault_points"][
        0
    ].items()
    report = tmp_path / "run.html"
    assert main(["scenario", "esim-download", "--json", "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["outcome"] == "completed"
    assert "  7 ES9+.GetBoundProfilePackage: BPP of" in err
    assert "esim-download: completed" in err
    assert report.read_text().startswith("<!DOCTYPE html>")
    assert main(["scenario", "esim-download", "--fault", "explode@1"]) == 2


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_report_renders_in_headless_chromium(clean_run, tmp_path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium here (apt-get install --no-install-recommends chromium)")
    page = tmp_path / "report.html"
    page.write_text(html_report(clean_run), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    # What the browser built: the diagram with every party and every step.
    svg = dom[dom.index("<svg") : dom.index("</svg>")]
    for party in ("lpa", "euicc", "smdpp"):
        assert f'class="party-name">{party}</text>' in svg
    for s in clean_run.steps:
        assert f"{s.spec.number} {s.spec.name}</text>" in svg
    assert dom.count('<details class="step ok"') == len(clean_run.steps)
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_every_fault_point_of_esim_download() -> None:
    """Each declared fault point: the declared outcome, and every claim holds.

    The tear point is walked at its step's first, middle and last NVM write
    (CARDEMU_EXHAUSTIVE=1: every write).
    """
    sc = get_scenario("esim-download")
    runs = walk(sc, exhaustive=bool(os.environ.get("CARDEMU_EXHAUSTIVE")))
    assert {p.spec for p, _, _ in runs} == {p.spec for p in sc.fault_points}
    tears = [s for _, s, _ in runs if s.action == "tear"]
    assert len(tears) >= 3 and len({s.arg for s in tears}) == len(tears)
    for point, spec, result in runs:
        failed = [f"{v.name}: {v.detail}" for v in result.verdicts if not v.ok]
        assert not failed, f"{spec}: {failed}"
        assert result.outcome == point.expect, spec
        assert result.fault == str(spec)
    by = {str(s): r for _, s, r in runs}
    # The kill landed in step 7, and the download went on against the restarted server.
    assert by["kill:smdpp@7"].steps[7].spec.function == "GetBoundProfilePackage"
    assert by["kill:smdpp@7"].steps[7].verdict == "ok"
    assert "smdpp killed" in by["kill:smdpp@7"].steps[7].messages[0].fault
    # The torn step is the one that failed.
    torn = by[str(tears[0])]
    assert [s.spec.number for s in torn.steps if s.verdict == "failed"] == [8]
    notes = [m.fault for m in torn.steps[8].messages if m.fault]
    assert notes == ["torn at the card's NVM write 1 of step 8"]
    page = html_report(torn)
    assert page.count('<g class="step failed">') == 1 and "torn at the card" in page
    assert by["drop:http@9"].steps[9].messages[0].fault == "dropped"


def test_pcsc_run() -> None:
    """--pcsc: the same scenario with the eUICC served through pcscd and vpcd."""
    from host.systems.pcsc import PcscUnavailable, check_pcsc

    try:
        check_pcsc()
    except PcscUnavailable as e:
        pytest.skip(str(e))
    r = run_scenario(get_scenario("esim-download"), pcsc=True)
    if r.error and "PcscUnavailable" in r.error:
        # Another pcscd whose vpcd slot is absent or holds a card: not ours to use.
        pytest.skip(r.error)
    assert r.ok, [v for v in r.verdicts if not v.ok]
    by = {s.spec.number: s for s in r.steps}
    assert len(by[8].messages) > 10 and {m.kind for m in by[8].messages} == {"apdu"}
