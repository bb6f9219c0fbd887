"""Deleting a damaged profile (ES10c DeleteProfile, SGP.22 §5.7.18): complete, all or nothing.

A profile whose stored records are damaged can still be deleted: the delete needs
none of its records decoded. Its security domains are found by the store's own
keys (each SD record is stored under its AID) even when the metadata record that
lists them is damaged, so their instances go with it, and so do its other
applications (each has an application record under its AID); a damaged SD record
(of the profile deleted or of another) neither stops the delete nor hides an
instance. A tear at any write of the delete leaves the profile whole or gone,
never half.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from applets.isdr import ISD_R_AID
from applets.usim import UICC_AID
from applets.usim.store import DamagedProfile
from card.runtime import CardRuntime, CardTorn
from card.sgp22.values import bits_from_names, iccid_to_bytes
from card.uicc.builder import sample_profile
from card.uicc.profile import AppSpec, Profile, SdKey, SdSpec
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_profile_integrity import (
    DAMAGE,
    NAMELESS,
    OTHER,
    UNDEFINED_ERROR,
    _card_with,
    _es10c,
    _rewrite,
)
from tests.unit.test_profile_move_es10 import _card as _bare_card
from tests.unit.test_profile_move_es10 import _put, _state

OK = 0
ENABLED_ICCID = "8900000000000000011"
APP_AID = bytes.fromhex("F043415244454D550A01")
SSD_AID = bytes.fromhex("A000000151535344")
SHARED_SD = bytes.fromhex("A0000001515353DD")
ECHO_REF = "applets.sample.echo:EchoApplet"


def _sd(aid: bytes) -> SdSpec:
    return SdSpec(aid, bytes.fromhex("A0000001515350"), bytes.fromhex("A000000151535041"),
                  b"\x80\x00\x00", 0x0F)  # fmt: skip


def _with_sds(iccid: str, *sds: bytes, app: bytes | None = None) -> Profile:
    apps = [AppSpec(app, ECHO_REF)] if app else []
    return dataclasses.replace(
        sample_profile(iccid=iccid, apps=apps), security_domains=tuple(_sd(a) for a in sds)
    )


DOOMED = _with_sds("8900000000000000022", SSD_AID, SHARED_SD, app=APP_AID)
KEEPER = _with_sds("8900000000000000044", SHARED_SD)


def _card() -> CardRuntime:
    """ENABLED enabled; DOOMED (an SSD of its own, one shared with KEEPER, an applet) and
    KEEPER installed, disabled."""
    rt = _card_with(DOOMED)
    _put(rt, KEEPER)
    return rt


def _on_card(rt: CardRuntime) -> set[bytes]:
    return {bytes(aid) for aid, *_ in rt.applets()}


def _delete(lpa: Lpa, iccid: str) -> int:
    res = lpa.es10(
        "DeleteProfileRequest", ("iccid", iccid_to_bytes(iccid)), "DeleteProfileResponse"
    )
    return int(res["deleteResult"])


SD_DAMAGE: dict[str, Callable[[CardRuntime, str], None]] = {
    "its SD record garbled": _rewrite(f"sd.{SSD_AID.hex().upper()}", lambda v: b"\x01"),
    "its SD record cut short": _rewrite(f"sd.{SSD_AID.hex().upper()}", lambda v: v[:3]),
    "its shared SD record garbled": _rewrite(f"sd.{SHARED_SD.hex().upper()}", lambda v: (1,)),
}
#: the metadata record itself damaged, its ICCID still readable (the profile still addressable)
META_DAMAGE = {
    k: DAMAGE[k]
    for k in (
        "the metadata cut short",
        "the metadata's name not a string",
        "the metadata's applications garbled",
    )
}


@pytest.mark.parametrize("case", sorted(SD_DAMAGE) + sorted(META_DAMAGE))
def test_a_damaged_profile_is_deleted_with_its_security_domains(case: str) -> None:
    """Regression: a damaged SD record made the delete raise (`_sd_from_value`: 6F00), and a
    damaged metadata record left the profile's SD instances on the card for good."""
    rt = _card()
    assert {SSD_AID, SHARED_SD, APP_AID} <= _on_card(rt)
    (SD_DAMAGE | META_DAMAGE)[case](rt, DOOMED.iccid)
    assert _delete(Lpa(rt), DOOMED.iccid) == OK
    assert rt.exceptions == 0
    assert _state(rt) == [(ENABLED_ICCID, True), (KEEPER.iccid, False)]
    on_card = _on_card(rt)
    assert SSD_AID not in on_card
    assert SHARED_SD in on_card  # KEEPER still has it
    # The applet too, also when the damaged metadata no longer names it: the slot's
    # application record does (`Slot.app_aids`).
    assert APP_AID not in on_card
    # KEEPER goes too, and with it the shared SD
    assert _delete(Lpa(rt), KEEPER.iccid) == OK
    assert SHARED_SD not in _on_card(rt)
    assert rt.exceptions == 0


def test_a_damaged_sd_record_of_another_profile_does_not_stop_a_delete() -> None:
    rt = _card()
    _rewrite(f"sd.{SHARED_SD.hex().upper()}", lambda v: b"\x01")(rt, KEEPER.iccid)
    assert _delete(Lpa(rt), DOOMED.iccid) == OK
    assert rt.exceptions == 0
    assert SHARED_SD in _on_card(rt)  # KEEPER's record of it is damaged, not gone


@pytest.mark.parametrize("case", ["its SD record garbled", "the metadata cut short"])
def test_a_delete_of_a_damaged_profile_is_all_or_nothing_under_tears(case: str) -> None:
    rt = _card()
    (SD_DAMAGE | META_DAMAGE)[case](rt, DOOMED.iccid)
    before = rt.nvm.total_writes
    assert _delete(Lpa(rt), DOOMED.iccid) == OK
    after_state, after_card = _state(rt), _on_card(rt)
    n = int(rt.nvm.total_writes - before)
    assert n > 0
    for write in range(1, n + 1):
        rt = _card()
        (SD_DAMAGE | META_DAMAGE)[case](rt, DOOMED.iccid)
        whole_state, whole_card = _state(rt), _on_card(rt)
        lpa = Lpa(rt)
        rt.nvm.tear_after(write - 1)
        with pytest.raises(CardTorn):
            _delete(lpa, DOOMED.iccid)
        rt.nvm.tear_after(None)
        rt.power_off()
        rt.power_on()
        assert (_state(rt), _on_card(rt)) == (whole_state, whole_card), write
        assert _delete(Lpa(rt), DOOMED.iccid) == OK
        assert (_state(rt), _on_card(rt)) == (after_state, after_card), write
        assert rt.exceptions == 0


def _keyed_sd() -> SdSpec:
    keys = tuple(SdKey(0x30, kid, usage, 0, ((0x88, bytes(16)),)) for kid, usage in
                 ((1, 0x38), (2, 0x34), (3, 0xC8)))  # fmt: skip
    return dataclasses.replace(_sd(SSD_AID), keys=keys)


#: an SD record of the right length, a field of another type
SD_TYPES: dict[str, Callable[[tuple], tuple]] = {
    "a key's components an integer": lambda v: (*v[:5], tuple((*k[:4], 5) for k in v[5]), *v[6:]),
    "the lifecycle bytes": lambda v: (*v[:4], b"\x0f", *v[5:]),
    "the AID a string": lambda v: ("A000000151535344", *v[1:]),
    "the counter None": lambda v: (*v[:9], None, *v[10:]),
}


@pytest.mark.parametrize("case", sorted(SD_TYPES))
def test_an_sd_record_with_a_field_of_another_type_fails_the_check(case: str) -> None:
    """Regression: an SD record of the right length with a key's components not a tuple
    passed `Slot.check` and the activation, and INITIALIZE UPDATE then answered 6F00."""
    p = dataclasses.replace(sample_profile(iccid="8900000000000000077"),
                            security_domains=(_keyed_sd(),))  # fmt: skip
    rt = _bare_card()
    _put(rt, p)
    _put(rt, OTHER)
    assert _es10c(Lpa(rt), "Enable", p.iccid) == OK
    select = bytes((0x00, 0xA4, 0x04, 0x00, len(SSD_AID))) + SSD_AID
    init_update = bytes.fromhex("8050300008") + bytes(8) + b"\x00"
    assert rt.process(select)[-2:] == b"\x61\x46"
    assert rt.process(init_update)[-2:] == b"\x90\x00"
    _rewrite(f"sd.{SSD_AID.hex().upper()}", SD_TYPES[case])(rt, p.iccid)
    store: Any = rt.applet(UICC_AID)
    slot = next(s for s in store._slots() if s.stored_iccid == p.iccid)
    assert slot.security_domain(SSD_AID) is None
    with pytest.raises(DamagedProfile):
        slot.check()
    rt.power_off()
    rt.power_on()
    assert rt.process(select)[-2:] != b"\x61\x46"  # not activated: nor is its SD
    assert rt.process(init_update)[-2:] != b"\x6f\x00"
    assert rt.exceptions == 0
    lpa = Lpa(rt)
    assert _es10c(lpa, "Enable", OTHER.iccid) == OK  # the switch disables it
    assert _es10c(lpa, "Enable", p.iccid) != OK  # and it is not enabled again
    assert rt.exceptions == 0


def _reset(lpa: Lpa) -> int:
    """eUICCMemoryReset of the operational profiles (SGP.22 §5.7.19, resetOptions bit 0)."""
    res = lpa.es10(
        "EuiccMemoryResetRequest",
        {"resetOptions": bits_from_names(0)},
        "EuiccMemoryResetResponse",
    )
    return int(res["resetResult"])


def _nameless_card(enabled: bool) -> CardRuntime:
    """`_card()` with DOOMED's metadata garbled past naming an ICCID (enabled first, or not),
    a nickname given it first (so the ISD-R holds a record of it, "meta.<ICCID>")."""
    rt = _card()
    lpa = Lpa(rt)
    nickname = {"iccid": iccid_to_bytes(DOOMED.iccid), "profileNickname": "doomed"}
    res = lpa.es10("SetNicknameRequest", nickname, "SetNicknameResponse")
    assert res == {"setNicknameResult": OK}
    if enabled:
        assert _es10c(lpa, "Enable", DOOMED.iccid) == OK
    NAMELESS["the metadata garbled"](rt, DOOMED.iccid)
    return rt


def _isdr_records(rt: CardRuntime) -> list[str]:
    """The ISD-R's per-profile records ("meta.<ICCID>") in NVM."""
    return sorted(k for k in rt.nvm.segment(ISD_R_AID.hex()) if k.startswith("meta."))


def _everything(rt: CardRuntime) -> tuple[Any, ...]:
    slots = rt.nvm.read(UICC_AID.hex(), "profiles")
    enabled = rt.applet(UICC_AID).enabled_profile()
    return _state(rt), _on_card(rt), len(slots), enabled, _isdr_records(rt)


@pytest.mark.parametrize("enabled", [False, True], ids=["disabled", "enabled"])
def test_memory_reset_deletes_a_profile_whose_record_names_no_iccid(enabled: bool) -> None:
    """Regression: a damaged profile whose record names no ICCID is reached by no ES10c
    function, and eUICCMemoryReset, which deletes every operational profile (SGP.22
    §5.7.19), left it (and answered "nothing to delete" the next time): it is deleted by
    its slot, disabled first if enabled, with its security domains and (regression) the
    ISD-R's record of it (its ISD-P AID, metadata, nickname); all or nothing across a
    tear at any write."""
    rt = _nameless_card(enabled)
    whole = _everything(rt)
    assert ("", enabled) in whole[0] and whole[2] == 3
    assert whole[4] == ["meta." + DOOMED.iccid]
    assert {APP_AID, SSD_AID, SHARED_SD} <= whole[1]
    before = rt.nvm.total_writes
    assert _reset(Lpa(rt)) == OK
    after = _everything(rt)
    assert after[0] == [] and after[2:] == (0, None, [])  # the ISD-R's record of it gone too
    assert not {APP_AID, SSD_AID, SHARED_SD} & after[1]  # its application and its SDs
    assert after[1] == whole[1] - {APP_AID, SSD_AID, SHARED_SD}
    assert _reset(Lpa(rt)) == 1  # nothing to delete
    assert rt.exceptions == 0
    n = int(rt.nvm.total_writes - before)
    for write in range(1, n + 1):
        rt = _nameless_card(enabled)
        lpa = Lpa(rt)
        rt.nvm.tear_after(write - 1)
        with pytest.raises(CardTorn):
            _reset(lpa)
        rt.nvm.tear_after(None)
        rt.power_off()
        rt.power_on()
        assert _everything(rt) == whole, write
        assert _reset(Lpa(rt)) == OK
        assert _everything(rt) == after, write
        assert rt.exceptions == 0


def test_a_profile_whose_metadata_is_damaged_locks_and_deletes_its_applets() -> None:
    """Regression: with the enabled profile's metadata damaged, a switch left its applet
    selectable (610E) and a delete left it on the card: only the metadata named it.
    The slot's application records name it now: locked at the switch (6A82), deleted
    with the profile."""
    e = _with_sds("8900000000000000055", app=APP_AID)
    rt = _bare_card()
    _put(rt, e)
    _put(rt, OTHER)
    lpa = Lpa(rt)
    assert _es10c(lpa, "Enable", e.iccid) == OK
    select = bytes((0x00, 0xA4, 0x04, 0x00, len(APP_AID))) + APP_AID
    assert rt.process(select)[-2:] == b"\x61\x0e"
    DAMAGE["the metadata cut short"](rt, e.iccid)
    assert _es10c(lpa, "Enable", OTHER.iccid) == OK
    assert rt.process(select) == b"\x6a\x82"  # locked with its profile's disable
    assert _delete(lpa, e.iccid) == OK
    assert _state(rt) == [(OTHER.iccid, True)]
    assert APP_AID not in _on_card(rt)
    assert rt.exceptions == 0


def _issuer_deleted_app() -> CardRuntime:
    """DOOMED installed, enabled and disabled again, then its application deleted by the
    card issuer (GP DELETE: `CardRuntime.delete`), the slot still naming it."""
    rt = _bare_card()
    _put(rt, DOOMED)
    lpa = Lpa(rt)
    assert _es10c(lpa, "Enable", DOOMED.iccid) == OK
    assert _es10c(lpa, "Disable", DOOMED.iccid) == OK
    rt.delete(APP_AID)
    assert APP_AID not in _on_card(rt)
    return rt


@pytest.mark.parametrize("how", ["DeleteProfile", "eUICCMemoryReset"])
def test_a_profile_whose_application_the_issuer_deleted_is_deleted(how: str) -> None:
    """Regression: the delete of an application instance already gone (the issuer's GP
    DELETE) failed, so DeleteProfile and eUICCMemoryReset answered undefinedError for
    ever; the gone instance is skipped and the rest of the profile deleted."""
    rt = _issuer_deleted_app()
    lpa = Lpa(rt)
    result = _delete(lpa, DOOMED.iccid) if how == "DeleteProfile" else _reset(lpa)
    assert result == OK
    assert _state(rt) == []
    assert SSD_AID not in _on_card(rt) and SHARED_SD not in _on_card(rt)
    assert rt.nvm.read(UICC_AID.hex(), "profiles") == ()
    assert rt.exceptions == 0


def test_a_profile_whose_application_the_issuer_deleted_is_not_enabled() -> None:
    """Regression: enabling it again answered a raw 6A88 (the instance to make selectable
    not found) instead of an EnableProfileResponse; it answers undefinedError(127) (no
    other enableResult is true of it), nothing written, and it can still be deleted."""
    rt = _issuer_deleted_app()
    lpa = Lpa(rt)
    before = rt.nvm.snapshot()
    assert _es10c(lpa, "Enable", DOOMED.iccid) == UNDEFINED_ERROR
    assert rt.nvm.snapshot() == before
    assert _state(rt) == [(DOOMED.iccid, False)]
    assert _delete(lpa, DOOMED.iccid) == OK
    assert rt.exceptions == 0


def test_the_enabled_profile_whose_sd_the_issuer_deleted_is_disabled_then_deleted() -> None:
    """Regression: with the enabled profile's SSD deleted by the card issuer (GP DELETE),
    DisableProfile answered a raw 6A88 (the lock of the gone instance failed) and the
    profile could be neither disabled nor deleted; the gone instance needs no lock, so
    it is disabled, then deleted, with no command answering an error after a write."""
    rt = _bare_card()
    _put(rt, DOOMED)
    lpa = Lpa(rt)
    assert _es10c(lpa, "Enable", DOOMED.iccid) == OK
    rt.delete(SSD_AID)
    assert SSD_AID not in _on_card(rt)
    lpa = Lpa(rt)
    assert _es10c(lpa, "Disable", DOOMED.iccid) == OK
    assert _state(rt) == [(DOOMED.iccid, False)]
    assert _delete(lpa, DOOMED.iccid) == OK
    assert _state(rt) == []
    assert not {SSD_AID, SHARED_SD, APP_AID} & _on_card(rt)
    assert rt.exceptions == 0 and rt.nvm_violations == 0


@pytest.mark.parametrize("other_enabled", [False, True])
def test_a_profile_whose_sd_the_issuer_deleted_is_not_enabled(other_enabled: bool) -> None:
    """Regression: enabling a profile whose SSD the issuer deleted answered a raw 6A88;
    it answers undefinedError(127) (as for a gone application), the transaction rolled
    back whole (the profile enabled before, whose instances the switch had locked,
    stays enabled and selectable: NVM unchanged), and it can still be deleted."""
    if other_enabled:
        rt = _card()  # ENABLED enabled
    else:
        rt = _bare_card()
        _put(rt, DOOMED)
    rt.delete(SSD_AID)
    lpa = Lpa(rt)
    state = _state(rt)
    before = rt.nvm.snapshot()
    assert _es10c(lpa, "Enable", DOOMED.iccid) == UNDEFINED_ERROR
    assert rt.nvm.snapshot() == before
    assert _state(rt) == state
    assert (ENABLED_ICCID, True) in state if other_enabled else True
    assert _delete(lpa, DOOMED.iccid) == OK
    assert DOOMED.iccid not in {i for i, _ in _state(rt)}
    assert rt.exceptions == 0 and rt.nvm_violations == 0
