"""`cardemu scenario doorlock`: seed 001 step by step, its fault points walked, the TCP link."""

from __future__ import annotations

import json
import re

import pytest

from host.cli import main
from host.readers.inprocess import InProcessReader
from host.systems.faults import walk
from host.systems.run import get_scenario, run_scenario
from host.systems.scenario import RunResult
from tests.unit.doorlock_cards import issuer, lock_sim, phone_sim


@pytest.fixture(scope="module")
def clean_run() -> RunResult:
    return run_scenario(get_scenario("doorlock"), seed=3)


def test_the_seed_steps_in_order(clean_run: RunResult) -> None:
    r = clean_run
    assert r.ok and r.outcome == "completed" and r.error is None, r.verdicts
    presentation = [101, 102, 104, 105, 107, 109]
    refused = [101, 102, 104, 105, 107, 110]
    absent = [201, 202, 204, 205, 206, 207, 202, 104, 105, 107, 109]
    assert [s.spec.number for s in r.steps] == [
        1, 2, *presentation, *presentation, *refused, *absent, 300, *presentation,
    ]  # fmt: skip
    steps = r.steps
    # The phone's chip is asked by the phone; the lock's chip decides; the link carries both.
    assert {(m.kind, m.source, m.target) for m in steps[4].messages} >= {
        ("apdu", "phone-1", "phone-1-sim")
    }
    assert [m.kind for m in steps[6].messages] == ["apdu"]  # collate: the lock's chip only
    # S206: the lock's chip sends its request by SMS: the modem FETCHes SEND SHORT MESSAGE.
    request = next(s for s in steps if s.spec.number == 206)
    fetched = [m for m in request.messages if m.kind == "apdu" and m.request[:4] == "8012"]
    # D0 ... 81 03 nn 13 00: a proactive command, its details naming SEND SHORT MESSAGE (13).
    assert fetched and re.match(r"D0(81)?..8103..1300", fetched[0].response)
    # S207-S209: SMS-PP download ENVELOPEs to phone-2's SIM, through its modem.
    download = next(s for s in steps if s.spec.number == 207)
    envelopes = [m for m in download.messages if m.request[:4] == "80C2"]
    assert envelopes and {(m.source, m.target) for m in envelopes} == {("phone-2", "phone-2-sim")}
    # Offline: nothing goes to the server after it stopped.
    offline = steps[steps.index(next(s for s in steps if s.spec.number == 300)) :]
    assert not any(m.kind == "http" for s in offline for m in s.messages)
    # What the host programs pass on is answers and certificates, never a key: the door
    # keys are random here; `test_the_personalisation_travels_encrypted` checks the server's.


def test_the_scp03_and_https_path() -> None:
    """The same scenario with the server's SCP03 sessions and the controller's HTTPS."""
    from host.systems.doorlock.scenario import DoorLockScenario

    r = run_scenario(DoorLockScenario("gp"), seed=5)
    assert r.ok, [v for v in r.verdicts if not v.ok]
    download = next(s for s in r.steps if s.spec.number == 207)
    assert any(m.kind == "http" and m.target == "ams" for m in download.messages)
    assert any(m.kind == "apdu" and m.source == "ams" for m in download.messages)


def test_cli_runs_it_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "doorlock", "--json", "--seed", "4"]) == 0
    out, err = capsys.readouterr()
    j = json.loads(out)
    assert j["outcome"] == "completed" and j["ok"]
    assert "207 ams.download: phone-2: installed" in err


def test_every_fault_point() -> None:
    runs = walk(get_scenario("doorlock"))
    assert len(runs) >= 5
    for point, spec, result in runs:
        assert result.ok, (str(spec), point.why, [v for v in result.verdicts if not v.ok])


def test_the_link_over_loopback_tcp() -> None:
    """Controller and phone as separate programs: the same exchange over a TCP link."""
    from host.systems.doorlock.terminal import LockController, PhoneHost, PhoneLinkServer, TcpLink

    iss = issuer()
    lock = LockController(InProcessReader(lock_sim(iss)))
    phone = PhoneHost(InProcessReader(phone_sim(iss)), imei="356938035643809")
    with PhoneLinkServer(phone) as server:
        link = TcpLink("127.0.0.1", server.port)
        try:
            for method in (1, 2):
                result = lock.present(link, method)
                assert result.unlocked and result.lock_authentic
        finally:
            link.close()
    assert lock.opened == 2 and phone.last["unlocked"]


def test_the_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--doorlock", "--rounds", "3", "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    names = [f["name"] for f in j["figures"]]
    assert len(names) == 4 and all(f["n"] == 3 for f in j["figures"])
    assert all(r["median"] > 0 for r in j["ratios"].values())


def test_pcsc_run() -> None:
    """--pcsc: the lock's SIM through pcscd and vpcd (its modem's FETCH too); phones in-process."""
    from host.systems.pcsc import PcscUnavailable, check_pcsc

    try:
        check_pcsc()
    except PcscUnavailable as e:
        pytest.skip(str(e))
    r = run_scenario(get_scenario("doorlock"), pcsc=True)
    if r.error and "PcscUnavailable" in r.error:
        pytest.skip(r.error)
    assert r.ok and r.outcome == "completed", [v for v in r.verdicts if not v.ok]
