"""Seed 003 FIG. 4 at every activation of a move-bound profile, power-up included.

The seed's step 402 selects the profile to use when the user picks one, and also
automatically when the terminal boots or leaves flight mode; steps 403-405 check
its eSE ID and the provider's signature every time, and a profile that fails is
not used (404). ES10c EnableProfile runs the check when the LPA enables a profile
(tests/unit/test_profile_move_es10.py), but refuses an already enabled one, so an
enabled bound profile is checked again by the card itself at each power-up (the
first command after it): one whose binding no longer holds is not activated, the
terminal gets no USIM from it, and nothing is written; the ISD-R still lists it
enabled and the LPA can disable it (ES10c then refuses to enable it again).
"""

from __future__ import annotations

from typing import Any

import pytest

from applets.profile_move.wire import META_ESE_ID
from applets.usim import UICC_AID
from card.runtime import CardRuntime
from host.systems.profile_move.pki import ese_id_of
from tests.unit.cards import restart
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_enabled_profile_damaged import COMMANDS
from tests.unit.test_profile_integrity import OWNER, _es10c, garble_deep_file
from tests.unit.test_profile_move_es10 import _bound, _card, _put, _state
from tests.unit.usim_cards import send

OK, UNDEFINED_ERROR = 0, 127
BOUND = _bound()


def _running(rt: CardRuntime) -> bool:
    """Whether the terminal gets the profile's USIM (and its PIN)."""
    return (
        send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x9000
        and send(rt, COMMANDS["VERIFY PIN1"])[1] == 0x9000
    )


def _rebind(rt: CardRuntime, ese_id: bytes, iccid: str = BOUND.iccid) -> None:
    """The stored binding's eSE ID rewritten and the record sealed again: an intact
    profile (the store's integrity check passes) bound to another eSE, as an image
    copied onto another eSE, or edited by someone who can write the store, would be."""
    store: Any = rt.applet(UICC_AID)
    slot = next(s for s in store._slots() if s.stored_iccid == iccid)
    meta = rt.nvm.read(OWNER, slot.prefix + "meta")
    metadata = tuple((k, ese_id.hex() if k == META_ESE_ID else v) for k, v in meta[3])
    new = (*meta[:3], metadata, *meta[4:8])
    rt.nvm.write(OWNER, slot.prefix + "meta", (*new, slot._seal(new)))
    slot.check()  # intact: only FIG. 4 can tell


def _enabled_bound() -> CardRuntime:
    rt = _card()
    _put(rt, BOUND)
    assert _es10c(Lpa(rt), "Enable", BOUND.iccid) == OK
    assert _running(rt)
    return rt


@pytest.mark.parametrize("how", ["power cycle", "warm reset", "tear"])
def test_an_enabled_bound_profile_is_checked_at_power_up(how: str) -> None:
    rt = _enabled_bound()
    _rebind(rt, ese_id_of(2))
    assert _running(rt)  # activated this session: checked when it was enabled
    if how != "tear":
        restart(rt, how)
    else:
        from card.runtime import CardTorn

        rt.nvm.tear_after(0)
        with pytest.raises(CardTorn):
            send(rt, COMMANDS["VERIFY PIN1"])  # VERIFY writes its counter first
        rt.nvm.tear_after(None)
        rt.power_on()
    before = rt.nvm.snapshot()
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82  # FIG. 4 step 404: not used
    assert send(rt, COMMANDS["AUTHENTICATE 3G"])[1] == 0x6A88
    assert send(rt, COMMANDS["VERIFY PIN1"])[1] == 0x6A88
    assert rt.nvm.snapshot() == before  # nothing written
    assert rt.exceptions == 0
    # The ISD-R still lists it enabled; the LPA can disable it, and not enable it again.
    assert _state(rt) == [(BOUND.iccid, True)]
    lpa = Lpa(rt)
    assert _es10c(lpa, "Disable", BOUND.iccid) == OK
    assert _es10c(lpa, "Enable", BOUND.iccid) == UNDEFINED_ERROR
    assert rt.exceptions == 0


def test_an_enabled_bound_profile_that_still_holds_runs_after_power_up() -> None:
    rt = _enabled_bound()
    _rebind(rt, ese_id_of(1))  # its own eSE ID again: the same binding, sealed again
    rt.power_off()
    rt.power_on()
    assert _running(rt)
    assert rt.exceptions == 0


def test_an_enabled_bound_profile_is_not_activated_without_the_move_agent() -> None:
    """No agent, no eSE ID to check against: fail closed, as ES10c does."""
    rt = _enabled_bound()
    rt.delete(bytes.fromhex("F043415244454D554D56"))  # the move agent
    rt.power_off()
    rt.power_on()
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82
    assert rt.exceptions == 0


def test_an_enabled_bound_profile_with_a_damaged_file_is_not_activated() -> None:
    """Regression: a file `Slot.check` does not cover, damaged, made the FIG. 4 check's
    read of the profile raise TypeError (not BindingError) at power-up, and every
    command answered 6F00; its activation fails instead, as for any damage."""
    rt = _enabled_bound()
    garble_deep_file(rt, BOUND.iccid)
    rt.power_off()
    rt.power_on()
    before = rt.nvm.snapshot()
    assert send(rt, COMMANDS["SELECT MF"])[1] == 0x9000
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82  # not used
    assert send(rt, COMMANDS["VERIFY PIN1"])[1] == 0x6A88
    assert send(rt, COMMANDS["STATUS"])[1] == 0x9000
    assert rt.nvm.snapshot() == before
    assert rt.exceptions == 0
    # The ISD-R lists it (its IMSI unreadable) and the LPA can disable it.
    assert _state(rt) == [(BOUND.iccid, True)]
    assert _es10c(Lpa(rt), "Disable", BOUND.iccid) == OK
    assert rt.exceptions == 0


def _bound_with_apps() -> Any:
    """BOUND's binding on a profile with an application and a security domain."""
    from host.systems.profile_move.card import bind
    from tests.unit.test_enabled_profile_damaged import APPS
    from tests.unit.test_profile_move_es10 import PKI

    return bind(
        APPS, key=PKI.provider, certificate=PKI.provider_cert, ese_id=ese_id_of(1),
        profile_id="P-2",
    )  # fmt: skip


def test_a_copy_bound_to_another_ese_runs_none_of_its_applications() -> None:
    """Seed 003 FIG. 4 (404): a bound profile whose eSE ID is not this eSE's is not used,
    its Java Card applications and SDs included (SGP.22 §1.4: selectable only while
    the profile is in use): a SELECT of one, the first command after power-up, runs
    the check and answers 6A82, on every channel, writing nothing; bound to this eSE
    again, they run."""
    profile = _bound_with_apps()
    rt = _card()
    _put(rt, profile)
    assert _es10c(Lpa(rt), "Enable", profile.iccid) == OK
    aids = [a.aid for a in profile.apps] + [sd.aid for sd in profile.security_domains]
    _rebind(rt, ese_id_of(2), profile.iccid)
    rt.power_off()
    rt.power_on()
    before = rt.nvm.snapshot()
    for aid in aids:
        assert _select(rt, aid) == 0x6A82, aid.hex()  # the first command
        ch = send(rt, bytes.fromhex("0070000001"))[0][0]
        assert _select(rt, aid, ch) == 0x6A82
        assert send(rt, bytes((0x00, 0x70, 0x80, ch)))[1] == 0x9000
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82
    assert rt.nvm.snapshot() == before  # nothing written
    _rebind(rt, ese_id_of(1), profile.iccid)  # bound to this eSE again
    rt.power_off()
    rt.power_on()
    for aid in aids:
        assert _select(rt, aid) == 0x9000, aid.hex()
    assert rt.exceptions == 0


def _select(rt: CardRuntime, aid: bytes, channel: int = 0) -> int:
    return send(rt, bytes((channel, 0xA4, 0x04, 0x00, len(aid))) + aid)[1]
