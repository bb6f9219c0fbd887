"""Review H: reproducers (strict xfail) for the runtime / ISD-R fixes and the pooled matcher.

Each test states what the code or its docstring promises and fails today; when the defect
is fixed the test passes and its xfail must go.
"""

from __future__ import annotations

from typing import Any

import pytest

from applets.biometric import matcher
from applets.biometric.iso19794 import encode_minutiae
from applets.sample import COUNTER_CLIENT_AID, ECHO_AID, EchoApplet
from host.bio import difficulty
from tests.unit.cards import sample_card, select, tx
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_enabled_profile_damaged import (
    APPS,
    COMMANDS,
    DAMAGE,
    ENABLED_RECORD_DAMAGE,
    _apps_card,
    _select_sw,
)
from tests.unit.test_profile_integrity import OWNER, _card_with, _es10c
from tests.unit.test_runtime import _GATE, _gated_card
from tests.unit.usim_cards import send

UNDEFINED_ERROR = 127


@pytest.mark.xfail(
    strict=True,
    reason="review H: with GLOBAL_POOL 1 a template against itself need not score "
    "SCORE_MAX: the growings from different seeds pair the whole template but reach "
    "different significances (1.0 for one, 0.922 for five), and their mean is < 1",
)
def test_a_generator_template_against_itself_scores_score_max() -> None:
    """`matcher._pooled`'s docstring: 'a template against itself (every seed growing the
    whole template) still scores SCORE_MAX'. Hard setting, seed 1, finger 32, impression 0
    (25 minutiae, a valid enrolment: the applet's minimum is 12): 9670 pooled, 10000 with
    the best growing's score (GLOBAL_POOL 0). 1 of 720 generator templates so."""
    ds = difficulty.make_dataset(60, 2, seed=1, d=difficulty.HARD)
    t = matcher.extract(encode_minutiae(ds.impressions[32][0]))
    assert len(t) == 25
    assert matcher.compare(t, t) == matcher.SCORE_MAX


@pytest.mark.xfail(
    strict=True,
    reason="review H: MANAGE CHANNEL OPEN from a non-basic channel whose applet is not "
    "multiselectable opens an empty channel (9000) instead of closing it with 6985 "
    "(Java Card RE 3.0.5 §4.5.1 step 8)",
)
def test_manage_channel_open_copying_a_non_multiselectable_applet_is_refused() -> None:
    """Java Card RE §4.5.1: from a channel other than 0 the candidate is the origin's
    applet; 'if the candidate applet instance is not a multiselectable applet and the
    candidate applet's context is active, the Java Card RE shall close the new logical
    channel' and answer 6985. The runtime's comment cites the RE for this branch, but
    `_do_select(strict=False)` returns silently and the channel stays open, empty."""
    rt = sample_card()
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(COUNTER_CLIENT_AID, cla=1)) == "9000"  # not multiselectable
    assert tx(rt, "0170000000") == "6985"
    assert rt.open_channels() == [0, 1]


@pytest.mark.xfail(
    strict=True,
    reason="review H: ES10c GetProfilesInfo on the store's damaged 'enabled' record "
    "answers 6F00 and counts a card fault, though SGP.22 ProfileInfoListError has "
    "undefinedError(127) and the fix treats this very record as damaged data",
)
@pytest.mark.parametrize("damage", sorted(ENABLED_RECORD_DAMAGE))
def test_get_profiles_info_on_a_damaged_enabled_record_is_not_a_card_fault(damage: str) -> None:
    """_GuardedStore turns the store's DamagedRecord into ProfileStoreError for every
    store call, but `get_profiles_info` (via `profiles()`) does not catch it: the
    ProfileStoreError escapes as 6F00 and `rt.exceptions` counts it as a bug of the card,
    the very distinction the fix draws (damaged data: undefinedError, uncounted)."""
    rt = _card_with()
    rt.nvm.write(OWNER, "enabled", ENABLED_RECORD_DAMAGE[damage])
    res = Lpa(rt).es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")
    assert res == ("profileInfoListError", UNDEFINED_ERROR)
    assert rt.exceptions == 0


@pytest.mark.xfail(
    strict=True,
    reason="review H: the 'enabled' record's shape is checked in _enabled_slot (the "
    "store's view) but not on the terminal's path (_current/_activate): a shape the "
    "store calls damaged runs the profile (9000) or answers 6F00, counted",
)
@pytest.mark.parametrize("damage", sorted(ENABLED_RECORD_DAMAGE))
def test_the_terminal_path_treats_a_damaged_enabled_record_as_the_store_does(
    damage: str,
) -> None:
    """The same damaged record: the ISD-R answers undefinedError (damaged data), while the
    USIM's own commands answer 9000 for (0, "1") and (True, 1) -- the profile runs on a
    record the store refuses -- and 6F00 counted for b"\\x01" and (0,) -- a card fault,
    not the 6581 memory problem `_memory_problem` gives a DamagedRecord."""
    rt = _card_with()
    rt.nvm.write(OWNER, "enabled", ENABLED_RECORD_DAMAGE[damage])
    sws: dict[str, Any] = {n: send(rt, COMMANDS[n])[1] for n in ("SELECT MF", "STATUS")}
    assert sws == {"SELECT MF": 0x6581, "STATUS": 0x6581}
    assert rt.exceptions == 0


def _count_deselects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = EchoApplet.deselect

    def deselect(applet: EchoApplet) -> None:
        calls.append(1)
        real(applet)

    monkeypatch.setattr(EchoApplet, "deselect", deselect)
    return calls


@pytest.mark.xfail(
    strict=True,
    reason="review H: deselect_everywhere (and _leave after a commit) still call a "
    "gated-off instance's deselect(); only _end_unusable and MANAGE CHANNEL CLOSE skip it",
)
def test_deselect_everywhere_runs_no_code_of_a_gated_off_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_gated_off`'s rule: 'a profile not activated runs none of its code, not even its
    clean-up'. The card's own deselection of the instance (`deselect_everywhere`, what a
    profile switch or delete does) calls its `deselect()` while its gate refuses it."""
    calls = _count_deselects(monkeypatch)
    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    _GATE["open"] = False  # gated off while selected; no command on channel 1 since
    assert rt.deselect_everywhere(ECHO_AID) == [1]
    assert rt.selected_context(1) is None
    assert calls == []


@pytest.mark.xfail(
    strict=True,
    reason="review H: ES10c Disable of the damaged enabled profile calls deselect() of "
    "its application still selected on a channel (the switch's deselect_everywhere)",
)
def test_disabling_a_damaged_profile_runs_none_of_its_applications_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The profile found damaged (6581 on channel 0) while its application stays selected
    on channel 1 with no command there since; SELECT of it answers 6A82 (gated off). The
    LPA then disables the profile (SGP.22: a damaged profile can be disabled): the
    application's `deselect()` runs -- code of a profile not activated."""
    rt = _apps_card()
    app = APPS.apps[0].aid
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x9000
    assert send(rt, bytes.fromhex("0070000001"))[1] == 0x9000
    assert _select_sw(rt, app, 1) == 0x9000
    calls = _count_deselects(monkeypatch)
    DAMAGE["keys record gone"](rt, APPS.iccid)
    assert send(rt, COMMANDS["AUTHENTICATE 3G"])[1] == 0x6581  # found damaged
    assert _select_sw(rt, app, 0) == 0x6A82  # gated off (channel 0)
    assert rt.selected_aid(1) == app and calls == []  # still selected on channel 1
    assert _es10c(Lpa(rt), "Disable", APPS.iccid) == 0
    assert rt.selected_aid(1) is None
    assert calls == []
