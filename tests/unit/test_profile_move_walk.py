"""`cardemu scenario profile-move`: seed 003 end to end, and the all-or-nothing proof.

Every declared fault point of the move is walked (each HTTP message lost or
doubled, the push to the terminal and the eSE's commands lost or doubled, each
party killed and restarted, each eSE torn at the first, middle and last NVM
write of its backup, install and delete, and at each write of the LPA's enable
on the target of either move) and, for the failure branch, the AuC
refusing the new K. After each run every party is back and every move
finished, and exactly one of the two profiles authenticates against the AuC,
with the user's phone book entry and added application where it is. The
activation on the target (FIG. 4) is the LPA's ES10c EnableProfile, so a
binding edited on the target after the move is refused there with
undefinedError(127).
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from applets.profile_move.wire import META_ESE_ID
from applets.usim import UICC_AID
from card.uicc.profile import Profile
from host.cli import main
from host.lpa.es10 import ISDR_AID
from host.systems.faults import FaultSpec, walk
from host.systems.profile_move.pki import ese_id_of
from host.systems.profile_move.scenario import ProfileMoveScenario
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


def test_the_activation_on_the_target_is_the_lpas_enable_profile(clean_run: RunResult) -> None:
    """402 is ES10c EnableProfile (STORE DATA 'BF31' to the ISD-R), not the agent's ACTIVATE."""
    for step in (s for s in clean_run.steps if s.spec.number == 402):
        apdus = [bytes.fromhex(m.request) for m in step.messages if m.kind == "apdu"]
        assert any(a[1] == 0xA4 and ISDR_AID in a for a in apdus), step.spec.name
        enables = [a for a in apdus if a[1] == 0xE2 and a[5:7] == b"\xbf\x31"]
        assert len(enables) == 1, [a.hex() for a in apdus]
        assert not any(a[0] & 0x80 and a[1] == 0xE4 for a in apdus)  # no move-agent ACTIVATE
        assert "verified" in step.detail


class _EditedOnTarget(ProfileMoveScenario):
    """Move 1, then the moved profile's eSE ID rewritten in eSE 2's store (FIG. 4, 403).

    As an attacker with the eSE's memory would (the agent's install would have
    refused such a package): the binding now names eSE 1, the signature is untouched.
    """

    world: Any = None
    edited: bytes = b""

    def before_activation(self, world: Any, move: int) -> None:
        self.world = world
        rt = world.cards[1]
        ctx = rt.selected_context(0)
        assert ctx is not None and ctx.aid == UICC_AID  # the store, default-selected
        store: Any = rt.applet(UICC_AID)
        profile = Profile.from_bytes(store.export_profile(world.iccid))
        meta = tuple(
            (k, ese_id_of(1).hex() if k == META_ESE_ID else v) for k, v in profile.metadata
        )
        self.edited = replace(profile, metadata=meta).to_bytes()
        rt.call_in_context(ctx, store.delete_profile, world.iccid)
        rt.call_in_context(ctx, store.install_profile, self.edited)


def test_an_edited_binding_on_the_target_is_refused_by_the_lpas_enable_and_nothing_half_moved() -> (
    None
):
    scenario = _EditedOnTarget()
    r = run_scenario(scenario, seed=5)
    by = {s.spec.number: s for s in r.steps}
    assert by[402].detail == "refused: undefinedError (127)", by[402].detail
    assert not r.ok and r.error is not None and "refused" in r.error
    assert r.nvm_writes.get(402, 0) == 0  # the refused EnableProfile wrote nothing
    # 406 holds the error, then recovery's messages: the enable asked again, refused
    # again (enableResult 127), and no attach with the refused profile.
    assert by[406].verdict == "failed" and "refused" in by[406].detail
    messages = [m for step in r.steps for m in step.messages]
    enables = [m for m in messages if m.kind == "apdu" and m.request[10:14].upper() == "BF31"]
    assert len(enables) == 2
    assert all(bytes.fromhex(m.response) == bytes.fromhex("BF310380017F9000") for m in enables)
    assert not any(m.target == "auc" for m in messages[-len(by[406].messages) :])
    verdicts = {v.name: v for v in r.verdicts}
    moved = next(v for n, v in verdicts.items() if n.startswith("every move finished"))
    assert moved.ok and moved.detail == "moves: done"
    # Nothing half-moved: eSE 1's copy was deleted by the finished move (575), eSE 2 holds
    # the one copy, still disabled and exactly as edited (recovery asked again: refused).
    world = scenario.world
    stores = [rt.applet(UICC_AID) for rt in world.cards]
    assert [(p.iccid, p.enabled) for p in stores[0].list_profiles()] == []
    assert [(p.iccid, p.enabled) for p in stores[1].list_profiles()] == [(world.iccid, False)]
    assert stores[1].export_profile(world.iccid) == scenario.edited
    # So neither phone attaches: the AuC holds the moved profile's new K, and the only
    # profile with that K is the refused one (the edit cost the user the profile).
    one = next(v for n, v in verdicts.items() if n.startswith("exactly one profile"))
    assert not one.ok and one.detail == "terminal-1 does not, terminal-2 does not", one.detail


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
    tears = collections.Counter((s.target, s.step) for _, s, _ in results if s.action == "tear")
    # 535 makes 2 writes: {1, 2}; 560 and 575 first, middle, last; the enable (402, the
    # target eSE of each move) each of its 3 writes, counted on that eSE alone.
    assert tears == {
        ("ese-1", 535): 2,
        ("ese-2", 560): 3,
        ("ese-1", 575): 3,
        ("ese-2", 402): 3,
        ("ese-1", 402): 3,
    }, tears
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
    notes = [m.get("fault") or "" for s in doc["steps"] for m in s["messages"]]
    killed = [n for n in notes if "provider killed" in n]
    assert len(killed) == 1 and "restarted" in killed[0], notes


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
