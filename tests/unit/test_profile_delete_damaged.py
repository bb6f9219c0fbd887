"""Deleting a damaged profile (ES10c DeleteProfile, SGP.22 §5.7.18): complete, all or nothing.

A profile whose stored records are damaged can still be deleted: the delete needs
none of its records decoded. Its security domains are found by the store's own
keys (each SD record is stored under its AID) even when the metadata record that
lists them is damaged, so their instances go with it; a damaged SD record (of the
profile deleted or of another) neither stops the delete nor hides an instance. Its
other applications are named by the metadata record only: with it damaged they
stay, locked (the registry records no owner to find them by). A
tear at any write of the delete leaves the profile whole or gone, never half.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from card.runtime import CardRuntime, CardTorn
from card.sgp22.values import iccid_to_bytes
from card.uicc.builder import sample_profile
from card.uicc.profile import AppSpec, Profile, SdSpec
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_profile_integrity import DAMAGE, _card_with, _rewrite
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
    if case in SD_DAMAGE:
        assert APP_AID not in on_card
    else:
        # Only the damaged record named the applet, and the registry records no owner:
        # it stays, locked, never selectable (UiccApplet.delete_profile).
        assert APP_AID in on_card
        select = bytes((0x00, 0xA4, 0x04, 0x00, len(APP_AID))) + APP_AID
        assert rt.process(select) == b"\x6a\x82"
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
