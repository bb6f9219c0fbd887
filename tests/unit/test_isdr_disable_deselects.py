"""A disabled profile's applications leave every logical channel (GSMA SGP.22 §1.4, §5.7.16-17).

SGP.22 §1.4 defines a Disabled profile as one none of whose files and applications
(MNO-SD, NAA, other applets) is selectable over the terminal interface. Regression:
an MNO-SD (or a profile's applet) selected on another logical channel while its
profile was enabled stayed selected after ES10c DisableProfile, or after an
EnableProfile that switched to another profile, and the next command on that channel
still reached it. Now the channel stays open with no application selected (as after
a SELECT that failed): a command there answers 6999, the runtime's answer on such a
channel (Java Card's SW_APPLET_SELECT_FAILED), rather than 6985 or 6A82, which an
application would give and none is there to give; a new SELECT of the locked AID
answers 6A82, "file or application not found" (ISO/IEC 7816-4; GlobalPlatform: a
LOCKED application is not selectable). The same whatever the refreshFlag (with it, a
real eUICC also resets the terminal through REFRESH). The USIM ADF of the profile,
opened on a channel, is gone from it too (the store's generation resets the view).

The cards are copies of one image built once (two TS.48 downloads and a profile with
an applet), so each test starts from the same state in milliseconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from applets.usim import UICC_AID
from applets.usim.sd import ProfileSecurityDomain
from card.runtime import CardRuntime, CardTorn
from card.sgp22.values import bits_to_set, iccid_to_bytes
from card.uicc.builder import sample_profile
from card.uicc.profile import AppSpec
from host.pki import default_pki
from host.presets import install_euicc
from tests.unit.sgp22_helpers import (
    TS48_ICCID,
    TS48_USIM,
    Lpa,
    TestSmdp,
    download,
    notification_config,
    ts48_with_iccid,
)
from tests.unit.usim_cards import authenticate, send

MNO_SD = bytes.fromhex("A000000151000000")  # TS.48's MNO-SD (both TS.48 profiles have it)
SECOND = "8949449999999990056"  # a second TS.48 profile
WITH_APP = "8900000000000000033"  # a profile with an applet
APP_AID = bytes.fromhex("F043415244454D550A01")
ECHO_REF = "applets.sample.echo:EchoApplet"
OK, NOT_FOUND, WRONG_STATE = 0, 1, 2


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An eUICC image: TS.48 (notifications for enable/disable/delete), a second TS.48,
    and a profile with the echo applet; none enabled."""
    image = tmp_path_factory.mktemp("euicc") / "card.img"
    rt = CardRuntime(str(image), rng_seed=7)
    install_euicc(rt, pki=default_pki())
    rt.power_on()
    lpa = Lpa(rt)
    assert download(lpa, TestSmdp(notification_config=notification_config(1, 2, 3)))[0]
    smdp2 = TestSmdp(
        upp=ts48_with_iccid(SECOND), iccid=SECOND, profile_class=0, transaction_id=b"\x02" * 8
    )
    assert download(lpa, smdp2)[0]
    ctx = rt.selected_context(0)
    assert ctx is not None  # the profile store, default-selected
    profile = sample_profile(iccid=WITH_APP, apps=[AppSpec(APP_AID, ECHO_REF)])
    rt.call_in_context(ctx, rt.applet(UICC_AID).install_profile, profile.to_bytes())
    rt.close()
    return image


@pytest.fixture
def card(template: Path, tmp_path: Path) -> Iterator[CardRuntime]:
    image = tmp_path / "card.img"
    shutil.copy(template, image)
    rt = CardRuntime(str(image), rng_seed=7)
    rt.power_on()
    yield rt
    rt.close()


def _es10c(lpa: Lpa, function: str, iccid: str, refresh: bool = False) -> int:
    res = lpa.es10(
        f"{function}ProfileRequest",
        {"profileIdentifier": ("iccid", iccid_to_bytes(iccid)), "refreshFlag": refresh},
        f"{function}ProfileResponse",
    )
    return int(res[f"{function.lower()}Result"])


def _open(rt: CardRuntime) -> int:
    resp = rt.process(bytes.fromhex("0070000001"))
    assert resp[-2:] == b"\x90\x00"
    return resp[0]


def _cla(ch: int, proprietary: bool = False) -> int:
    """The class byte for logical channel `ch` (ISO/IEC 7816-4 §5.4.1)."""
    return (0x80 if proprietary else 0) | (ch if ch < 4 else 0x40 | (ch - 4))


def _select(rt: CardRuntime, ch: int, aid: bytes) -> int:
    return send(rt, bytes((_cla(ch), 0xA4, 0x04, 0x00, len(aid))) + aid + b"\x00")[1]


def _get_data(rt: CardRuntime, ch: int) -> int:
    """GET DATA card data (GP, tag 66), which the MNO-SD answers."""
    return send(rt, bytes((_cla(ch, True), 0xCA, 0x00, 0x66, 0x00)))[1]


@pytest.fixture
def sd_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The channels on which an MNO-SD instance processed a command (a spy, not a mock)."""
    seen: list[int] = []
    real = ProfileSecurityDomain.process

    def spy(self: ProfileSecurityDomain, apdu: Any) -> Any:
        seen.append(apdu.channel)
        return real(self, apdu)

    monkeypatch.setattr(ProfileSecurityDomain, "process", spy)
    return seen


@pytest.mark.parametrize("refresh", [False, True])
def test_disable_deselects_the_mno_sd_on_another_channel(
    card: CardRuntime, sd_calls: list[int], refresh: bool
) -> None:
    lpa = Lpa(card)  # ES10 on its own channel
    assert _es10c(lpa, "Enable", TS48_ICCID, refresh) == OK
    ch = _open(card)
    assert _select(card, ch, MNO_SD) == 0x9000 and _get_data(card, ch) == 0x9000
    assert sd_calls and set(sd_calls) == {ch}
    sd_calls.clear()
    assert _es10c(lpa, "Disable", TS48_ICCID, refresh) == OK
    assert card.selected_aid(ch) is None and ch in card.open_channels()
    assert _get_data(card, ch) == 0x6999  # no application selected there
    assert _select(card, ch, MNO_SD) == 0x6A82  # locked: not selectable
    assert sd_calls == []  # nothing reached the disabled profile's MNO-SD
    # The channel is usable: it selects what is selectable.
    assert _es10c(lpa, "Enable", TS48_ICCID, refresh) == OK
    assert _select(card, ch, MNO_SD) == 0x9000 and _get_data(card, ch) == 0x9000


@pytest.mark.parametrize("refresh", [False, True])
def test_enabling_another_profile_deselects_the_old_ones_mno_sd(
    card: CardRuntime, sd_calls: list[int], refresh: bool
) -> None:
    """The two TS.48 profiles share the MNO-SD AID (one instance, answering for the
    enabled profile's record): a selection made for the first does not carry over to
    the second with whatever session it opened."""
    lpa = Lpa(card)
    assert _es10c(lpa, "Enable", TS48_ICCID, refresh) == OK
    ch = _open(card)
    assert _select(card, ch, MNO_SD) == 0x9000
    sd_calls.clear()
    assert _es10c(lpa, "Enable", SECOND, refresh) == OK
    assert card.selected_aid(ch) is None
    assert _get_data(card, ch) == 0x6999
    assert sd_calls == []
    assert _select(card, ch, MNO_SD) == 0x9000  # now the second profile's
    assert _get_data(card, ch) == 0x9000


@pytest.mark.parametrize("how", ["disable", "enable another"])
def test_a_profile_applet_selected_elsewhere_is_deselected(card: CardRuntime, how: str) -> None:
    lpa = Lpa(card)
    assert _es10c(lpa, "Enable", WITH_APP) == OK
    ch = _open(card)
    assert _select(card, ch, APP_AID) == 0x9000
    echo = bytes((_cla(ch, True), 0x01, 0x00, 0x00, 0x02)) + b"hi" + b"\x00"
    assert send(card, echo) == (b"hi", 0x9000)
    if how == "disable":
        assert _es10c(lpa, "Disable", WITH_APP) == OK
    else:
        assert _es10c(lpa, "Enable", TS48_ICCID) == OK
    assert card.selected_aid(ch) is None
    assert send(card, echo)[1] == 0x6999  # the echo applet never sees it
    assert _select(card, ch, APP_AID) == 0x6A82


def test_the_usim_adf_opened_on_another_channel_is_gone_after_disable(card: CardRuntime) -> None:
    lpa = Lpa(card)
    assert _es10c(lpa, "Enable", TS48_ICCID) == OK
    ch = _open(card)
    assert send(card, bytes((_cla(ch), 0xA4, 0x04, 0x04, len(TS48_USIM))) + TS48_USIM)[1] == 0x9000
    # A wrong AUTN reaches the profile's USIM: MAC failure (TS 31.102 §7.1.2.1).
    assert authenticate(card, bytes(16), bytes(16), channel=ch)[1] == 0x9862
    assert _es10c(lpa, "Disable", TS48_ICCID) == OK
    fcp, sw = send(card, bytes((_cla(ch, True), 0xF2, 0x00, 0x00, 0x00)))  # STATUS
    assert sw == 0x9000 and TS48_USIM not in fcp  # back at the MF, no ADF
    assert authenticate(card, bytes(16), bytes(16), channel=ch)[1] not in (0x9000, 0x9862)


def test_a_refused_disable_deselects_nothing(card: CardRuntime) -> None:
    lpa = Lpa(card)
    assert _es10c(lpa, "Enable", TS48_ICCID) == OK
    ch = _open(card)
    assert _select(card, ch, MNO_SD) == 0x9000
    assert _es10c(lpa, "Disable", SECOND) == WRONG_STATE  # not the enabled one
    assert _es10c(lpa, "Disable", "8949449999999990999") == NOT_FOUND
    assert _es10c(lpa, "Enable", TS48_ICCID) == WRONG_STATE  # already enabled
    assert card.selected_aid(ch) == MNO_SD and _get_data(card, ch) == 0x9000


def _state(lpa: Lpa) -> tuple[int, int]:
    """(TS.48's profileState, its disable notifications)."""
    infos = lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")[1]
    state = next(i["profileState"] for i in infos if i["iccid"] == iccid_to_bytes(TS48_ICCID))
    ntf = lpa.es10("ListNotificationRequest", {}, "ListNotificationResponse")[1]
    return int(state), sum(2 in bits_to_set(m["profileManagementOperation"]) for m in ntf)


def test_a_tear_at_every_write_of_disable_leaves_before_or_after(card: CardRuntime) -> None:
    """Torn at each NVM write of ES10c DisableProfile (MNO-SD selected on a channel),
    the card powers up either still enabled with no disable notification, its MNO-SD
    selectable, or disabled with exactly one, its MNO-SD not selectable."""
    rt = card
    lpa = Lpa(rt)
    assert _es10c(lpa, "Enable", TS48_ICCID) == OK
    tears = 0
    while True:
        rt.reset()  # the channels of the last round closed
        lpa = Lpa(rt)
        state_before, ntf_before = _state(lpa)
        assert state_before == 1
        ch = _open(rt)
        assert _select(rt, ch, MNO_SD) == 0x9000
        rt.nvm.tear_after(tears)
        try:
            result = _es10c(lpa, "Disable", TS48_ICCID)
        except CardTorn:
            rt.nvm.tear_after(None)
            rt.power_off()
            rt.power_on()
            lpa = Lpa(rt)
            state, ntf = _state(lpa)
            assert (state, ntf) in ((1, ntf_before), (0, ntf_before + 1)), tears
            ch = _open(rt)
            assert _select(rt, ch, MNO_SD) == (0x9000 if state else 0x6A82)
            if state == 0:  # the commit landed before the tear: enable again, go on
                assert _es10c(lpa, "Enable", TS48_ICCID) == OK
            tears += 1
            continue
        rt.nvm.tear_after(None)
        assert result == OK
        assert rt.selected_aid(ch) is None and _get_data(rt, ch) == 0x6999
        assert _state(lpa) == (0, ntf_before + 1)
        break
    assert tears >= 3  # the notification, the lifecycles and the enabled record at least


class SelectionMachine(RuleBasedStateMachine):
    """Enable, disable and SELECT in any order: a channel keeps an application of a
    profile only while that profile stays enabled, and one with nothing selected
    answers 6999. The model: what each channel has selected. A channel opens with the
    profile store (the card's default application), which no switch deselects; a
    SELECT that fails leaves the channel as it was."""

    PROFILES = (TS48_ICCID, SECOND, WITH_APP)
    AIDS = {MNO_SD: (TS48_ICCID, SECOND), APP_AID: (WITH_APP,)}

    def __init__(self, template: Path, image: Path) -> None:
        super().__init__()
        shutil.copy(template, image)
        self.rt = CardRuntime(str(image), rng_seed=7)
        self.rt.power_on()
        self.lpa = Lpa(self.rt)
        self.enabled: str | None = None
        self.selected: dict[int, bytes | None] = {}

    @rule()
    def open_channel(self) -> None:
        if len(self.selected) < 3:
            self.selected[_open(self.rt)] = UICC_AID

    @rule(index=st.integers(0, 2), aid=st.sampled_from(sorted(AIDS)))
    def select(self, index: int, aid: bytes) -> None:
        if not self.selected:
            return
        ch = sorted(self.selected)[index % len(self.selected)]
        ok = self.enabled in self.AIDS[aid]
        sw = _select(self.rt, ch, aid)
        # Not selectable: 6A82 from the card, or the selected application's own refusal.
        assert (sw == 0x9000) == ok, f"{sw:04X}"
        if ok:
            self.selected[ch] = aid

    @rule(iccid=st.sampled_from(PROFILES), refresh=st.booleans())
    def enable(self, iccid: str, refresh: bool) -> None:
        expect = WRONG_STATE if iccid == self.enabled else OK
        assert _es10c(self.lpa, "Enable", iccid, refresh) == expect
        if expect == OK:
            self.enabled = iccid
            self._switched()

    @rule(iccid=st.sampled_from(PROFILES), refresh=st.booleans())
    def disable(self, iccid: str, refresh: bool) -> None:
        expect = OK if iccid == self.enabled else WRONG_STATE
        assert _es10c(self.lpa, "Disable", iccid, refresh) == expect
        if expect == OK:
            self.enabled = None
            self._switched()

    def _switched(self) -> None:
        """The profile enabled before is disabled: its applications left every channel."""
        self.selected = {ch: aid if aid == UICC_AID else None for ch, aid in self.selected.items()}

    @invariant()
    def channels_hold_what_the_model_says(self) -> None:
        for ch, aid in self.selected.items():
            assert self.rt.selected_aid(ch) == aid, ch
            if aid is None:
                assert _get_data(self.rt, ch) == 0x6999

    def teardown(self) -> None:
        self.rt.close()


def test_selections_follow_the_enabled_profile(template: Path, tmp_path: Path) -> None:
    images = iter(range(10**6))
    run_state_machine_as_test(
        lambda: SelectionMachine(template, tmp_path / f"c{next(images)}.img"),
        settings=settings(max_examples=15, stateful_step_count=20, deadline=None),
    )
