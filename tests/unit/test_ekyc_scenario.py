"""`cardemu scenario ekyc`: the seed's steps in order, every message recorded, and crash safety
walked over every fault point (each server killed at each step it takes part in, messages
lost or doubled, the eUICC torn)."""

from __future__ import annotations

import logging

import pytest

from host.systems.ekyc.scenario import EkycScenario
from host.systems.faults import FaultSpec, walk
from host.systems.run import get_scenario, run_scenario
from host.systems.scenario import RunResult

SERVERS = {"mgmt1", "mgmt2", "auth", "relay"}


@pytest.fixture(scope="module")
def clean_run() -> RunResult:
    return run_scenario(get_scenario("ekyc"))


def test_registered_and_completes(clean_run: RunResult) -> None:
    assert clean_run.ok, [v for v in clean_run.verdicts if not v.ok]
    assert clean_run.outcome == "completed"
    numbers = [s.spec.number for s in clean_run.steps]
    assert numbers == [s.number for s in EkycScenario.steps]  # every step, in the seed's order
    assert all(s.verdict == "ok" for s in clean_run.steps)


def test_the_messages_of_each_step(clean_run: RunResult) -> None:
    by = {s.spec.number: s for s in clean_run.steps}

    def pairs(n: int) -> set[tuple[str, str, str]]:
        return {(m.kind, m.source, m.target) for m in by[n].messages}

    assert ("apdu", "phone", "euicc") in pairs(1)  # S1-S4 registration on card
    assert ("apdu", "phone", "euicc") in pairs(7)  # S7-S9 local authentication
    # The management server closes the steps it reaches: S13 (the key claimed), S14-S15.
    assert pairs(13) == {("http", "mgmt1", "relay")}
    assert pairs(14) == {("http", "mgmt1", "auth")}
    assert ("http", "phone", "mgmt1") in pairs(16)  # S12's request, S16's answer
    assert pairs(20) == {("http", "mgmt1", "auth")}  # S20-S24
    assert ("http", "mgmt1", "relay") in pairs(26)  # S26: ES12.RegisterEvent
    assert {("http", "phone", "relay"), ("http", "relay", "auth")} <= pairs(27)  # S27-S29
    assert ("apdu", "phone", "euicc") in pairs(30) and ("http", "phone", "relay") in pairs(30)
    assert ("http", "mgmt1", "relay") in pairs(34)  # the installed profile's event deleted
    # The later contract: no identity verification, no certificate fetched.
    for n in (41, 48, 49, 51, 52, 53, 57):
        assert not any(target == "auth" for _, _, target in pairs(n)), n
    assert "no eKYC" in by[51].spec.meaning
    assert "RES, CK and IK match" in by[61].detail and "RES, CK and IK match" in by[62].detail
    assert by[61].detail.split()[1] != by[62].detail.split()[1]  # two profiles, two ICCIDs


def test_every_server_is_killed_at_every_step_it_takes_part_in(clean_run: RunResult) -> None:
    # A message is recorded in the step under way when it completes; a kill strikes before
    # it starts. The phone's request that the management server answers after closing
    # steps of its own (S12 -> S16, S19 -> S26, S48 -> S52) started in the first of them.
    started = {16: 12, 26: 19, 52: 48}
    touched = {
        (
            m.target,
            started.get(s.spec.number, s.spec.number) if m.source == "phone" else s.spec.number,
        )
        for s in clean_run.steps
        for m in s.messages
        if m.kind == "http" and m.target in SERVERS
    }
    declared = {
        (p.fault.target, p.fault.step)
        for p in EkycScenario.fault_points
        if p.fault.action == "kill"
    }
    assert touched <= declared, sorted(touched - declared)


def test_crash_safety_walked_over_every_fault_point() -> None:
    logging.disable(logging.WARNING)  # the refusals and retries the faults cause are expected
    try:
        results = walk(EkycScenario())
    finally:
        logging.disable(logging.NOTSET)
    failed = [
        (str(spec), res.outcome, [f"{v.name}: {v.detail}" for v in res.verdicts if not v.ok])
        for _, spec, res in results
        if not res.ok
    ]
    assert not failed, failed
    kinds = {spec.action for _, spec, _ in results}
    assert kinds == {"kill", "drop", "dup", "tear"}
    # Every fault struck: a message of its run carries its note.
    silent = [
        str(spec) for _, spec, r in results if not any(m.fault for t in r.steps for m in t.messages)
    ]
    assert not silent, f"faults that never fired: {silent}"


def test_a_real_process_killed_and_restarted() -> None:
    # With processes only the phone's exchanges pass the recorder: a kill fires before one.
    res = run_scenario(EkycScenario(real_processes=True), fault=FaultSpec.parse("kill:relay@27"))
    assert res.ok, [v for v in res.verdicts if not v.ok]
    notes = [m.fault for s in res.steps for m in s.messages if m.fault]
    assert any("killed (pid" in n and "restarted" in n for n in notes), notes


def test_pcsc_run() -> None:
    """--pcsc: the phone's eUICC served through pcscd and vpcd."""
    from host.systems.pcsc import PcscUnavailable, check_pcsc

    try:
        check_pcsc()
    except PcscUnavailable as e:
        pytest.skip(str(e))
    r = run_scenario(get_scenario("ekyc"), pcsc=True)
    if r.error and "PcscUnavailable" in r.error:
        # Another pcscd whose vpcd slot is absent or holds a card: not ours to use.
        pytest.skip(r.error)
    assert r.ok, [v for v in r.verdicts if not v.ok]
