"""`cardemu scenario repository`: seed 002 step by step, every fault point walked, --pcsc."""

from __future__ import annotations

import json
import os

import pytest

from host.cli import main
from host.systems.faults import walk
from host.systems.report import html_report
from host.systems.repository.demo import DEMO_CREDENTIAL
from host.systems.run import get_scenario, run_scenario
from host.systems.scenario import RunResult


@pytest.fixture(scope="module")
def clean_run() -> RunResult:
    return run_scenario(get_scenario("repository"), seed=3)


def test_the_seed_steps_in_order_with_their_messages(clean_run: RunResult) -> None:
    r = clean_run
    assert r.ok and r.outcome == "completed" and r.error is None, r.verdicts
    assert [s.spec.number for s in r.steps] == [
        *(11, 12, 13, 17, 20),  # issuance, ST11-ST22
        *(31, 34, 36, 38, 40, 42),  # the counter: finger, URL, session, SM, keys
        *(51, 54, 57, 58, 61),  # read, ST51-ST65
        *(72, 75, 79),  # write, ST71-ST83
    ]
    by = {s.spec.number: s for s in r.steps}
    # Issuance: APDUs relayed for the registration device, HTTP polls to it.
    for n in (11, 12, 13, 17, 20):  # each issuance step carries its own polls and APDUs
        kinds = {(m.kind, m.target) for m in by[n].messages}
        assert {("apdu", "card"), ("http", "registration")} <= kinds, n
    # What the card did at issuance is where the seed puts it: key pair, then the URL stored.
    assert r.nvm_writes.get(17, 0) >= 1 and r.nvm_writes.get(20, 0) >= 1
    assert r.nvm_writes.get(11, 0) == r.nvm_writes.get(12, 0) == 0
    # The card's own steps are APDUs only; the repository's carry HTTP to it.
    assert {m.kind for m in by[31].messages} == {"apdu"}
    assert any(m.kind == "http" and m.target == "repository" for m in by[61].messages)
    # After the SM set-up, the APDUs the counter relays for the repository are protected.
    relayed = [
        m
        for n in (42, 54, 57, 72)
        for m in by[n].messages
        if m.kind == "apdu" and m.source == "counter"
    ]
    assert relayed and all(int(m.request[:2], 16) & 0x0C == 0x0C for m in relayed)
    # The holder's credential never crossed the terminal-card link in clear.
    secret = DEMO_CREDENTIAL.hex().upper()
    assert not any(
        secret in m.request or secret in m.response
        for s in r.steps
        for m in s.messages
        if m.kind == "apdu"
    )
    page = html_report(r)
    assert page.startswith("<!DOCTYPE html>") and "61 read.disclosed" in page


def test_cli_runs_it_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "repository", "--json", "--seed", "4"]) == 0
    out, err = capsys.readouterr()
    j = json.loads(out)
    assert j["outcome"] == "completed" and j["ok"]
    assert " 61 read.disclosed: qualification" in err


def test_every_fault_point_of_the_repository() -> None:
    """Each declared fault point: its declared outcome, and every claim holds.

    The tear during key generation is walked at its step's first, middle and
    last NVM write (CARDEMU_EXHAUSTIVE=1: every write).
    """
    sc = get_scenario("repository")
    runs = walk(sc, exhaustive=bool(os.environ.get("CARDEMU_EXHAUSTIVE")))
    assert {p.spec for p, _, _ in runs} == {p.spec for p in sc.fault_points}
    for point, spec, result in runs:
        failed = [f"{v.name}: {v.detail}" for v in result.verdicts if not v.ok]
        assert not failed, f"{spec}: {failed}"
        assert result.outcome == point.expect, spec
    by = {str(s): r for _, s, r in runs}
    kill = by["kill:repository@61"]
    assert [s.spec.number for s in kill.steps if s.verdict == "failed"] == [61]
    (killed,) = [s for s in kill.steps if s.spec.number == 61]
    assert "repository killed" in killed.messages[0].fault
    tears = [s for _, s, _ in runs if s.action == "tear"]
    assert {t.step for t in tears} == {17, 20, 31, 42}
    for t in tears:  # the torn step is the one that failed
        assert [s.spec.number for s in by[str(t)].steps if s.verdict == "failed"] == [t.step]
    # The duplicated token presentation released once and logged once.
    dup = by["dup:http@61"]
    assert any("1 released, 1 disclosure(s) logged" in v.detail for v in dup.verdicts)


def test_pcsc_run() -> None:
    """--pcsc: the card served through pcscd and vpcd, three logical channels and all."""
    from host.systems.pcsc import PcscUnavailable, check_pcsc

    try:
        check_pcsc()
    except PcscUnavailable as e:
        pytest.skip(str(e))
    r = run_scenario(get_scenario("repository"), pcsc=True)
    if r.error and "PcscUnavailable" in r.error:
        pytest.skip(r.error)
    assert r.ok, [v for v in r.verdicts if not v.ok]
    assert r.outcome == "completed"
