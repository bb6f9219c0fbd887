"""`cardemu scenario doorlock`: seed 001 step by step, its fault points walked, the TCP link."""

from __future__ import annotations

import json

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
    # S207-S209: the request over HTTPS, the server's APDUs to phone-2's SIM.
    download = next(s for s in steps if s.spec.number == 207)
    assert any(m.kind == "http" and m.target == "ams" for m in download.messages)
    assert any(m.kind == "apdu" and m.target == "phone-2-sim" for m in download.messages)
    # Offline: nothing goes to the server after it stopped.
    offline = steps[steps.index(next(s for s in steps if s.spec.number == 300)) :]
    assert not any(m.kind == "http" for s in offline for m in s.messages)
    # What the host programs pass on is answers and certificates, never a key: the door
    # keys are random here; `test_the_personalisation_travels_encrypted` checks the server's.


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
