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
    absent = [201, 202, 204, 205, 206, 207, 208, 209, 202, 104, 105, 107, 109]
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
    # S207: the modem submits the chip's short message; the server polls its inbox.
    sent = next(s for s in steps if s.spec.number == 207)
    assert [(m.kind, m.source, m.target, m.summary.split(" →")[0]) for m in sent.messages if
            m.kind == "http"] == [("http", "lock-controller", "smsc", "POST /submit-tpdu"),
                                  ("http", "ams", "smsc", "GET /inbox/12345")]  # fmt: skip
    # S208: the server's own checks: nothing on the wire.
    assert next(s for s in steps if s.spec.number == 208).messages == []
    # S209: SMS-PP download ENVELOPEs to phone-2's SIM, through its modem, and the
    # SMS centre's leg: the server's submits, the phone's polls, the PoRs back.
    download = next(s for s in steps if s.spec.number == 209)
    envelopes = [m for m in download.messages if m.request[:4] == "80C2"]
    assert envelopes and {(m.source, m.target) for m in envelopes} == {("phone-2", "phone-2-sim")}
    http = {(m.source, m.summary.split(" ")[0]) for m in download.messages if m.kind == "http"}
    assert http == {("ams", "POST"), ("phone-2", "GET"), ("phone-2", "POST"), ("ams", "GET")}
    assert all(m.target == "smsc" for m in download.messages if m.kind == "http")
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
    download = [m for s in r.steps if s.spec.number in (207, 208, 209) for m in s.messages]
    assert any(m.kind == "http" and m.target == "ams" for m in download)
    assert any(m.kind == "apdu" and m.source == "ams" for m in download)


def test_cli_runs_it_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "doorlock", "--json", "--seed", "4"]) == 0
    out, err = capsys.readouterr()
    j = json.loads(out)
    assert j["outcome"] == "completed" and j["ok"]
    assert "209 ams.download: phone-2: installed" in err


def test_every_fault_point() -> None:
    runs = walk(get_scenario("doorlock"))
    assert len(runs) >= 9
    for point, spec, result in runs:
        assert result.ok, (str(spec), point.why, [v for v in result.verdicts if not v.ok])
    kills = {str(spec): result for _, spec, result in runs if spec.action == "kill"}
    assert set(kills) == {"kill:ams@209", "kill:ams@209.4", "kill:smsc@209.2", "kill:smsc@207"}
    for spec, result in kills.items():
        struck = [m for s in result.steps for m in s.messages if "killed" in m.fault]
        assert len(struck) == 1 and struck[0].target == "smsc", spec
        numbers = [s.spec.number for s in result.steps]
        if spec.startswith("kill:ams"):
            # S209 failed once (the server died under it); the controller presented the
            # phone again, the retried request installed exactly once.
            failed = [s.spec.number for s in result.steps if s.verdict == "failed"]
            assert failed == [209] and numbers.count(209) == 2 and numbers.count(201) == 2
            once = [v for v in result.verdicts if "exactly once" in v.name]
            assert once and once[0].ok and once[0].detail.startswith("1 install(s)")
        else:
            # The SMS centre restarted on its store: nothing lost, nothing retried.
            assert numbers.count(209) == 1 and all(s.verdict == "ok" for s in result.steps)


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
