"""Seed 003 FIG. 4 on the LPA's path: ES10c EnableProfile of a move-bound profile.

The ISD-R enables a profile carrying a move binding only if it passes the same
check the move agent's ACTIVATE runs (card.profile_binding): a profile with the
right eSE ID and signature enables; an edited eSE ID or a forged signature is
refused with undefinedError(127) and nothing changed (or, with the discard
policy, the profile deleted), also when the card is torn at every NVM write of
the refused enable; an ordinary profile enables as before.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from applets.isdr import ISD_R_AID
from applets.profile_move import MoveAgentApplet
from applets.profile_move.wire import (
    META_ESE_ID,
    MOVE_AGENT_AID,
    TAG_DISCARD,
    TAG_ESE_ID,
    TAG_PRIVATE,
    TAG_ROOT,
    TAG_VARIANT,
    Variant,
)
from applets.usim import UICC_AID, UiccApplet
from card import tlv
from card.nvm import PowerLoss
from card.profile_binding import (
    BindingError,
    BindingPolicy,
    check_with_policy,
    has_binding,
    metadata_has_binding,
)
from card.runtime import CardRuntime, CardTorn
from card.sgp22.values import iccid_to_bytes
from card.uicc.builder import sample_profile
from card.uicc.profile import Profile
from host.presets import install_euicc
from host.systems.profile_move.card import bind
from host.systems.profile_move.pki import demo_pki, ese_id_of
from tests.unit.cards import restart
from tests.unit.sgp22_helpers import Lpa

PKI = demo_pki(0)
OK, UNDEFINED_ERROR = 0, 127


def _bound(n: int = 1) -> Profile:
    return bind(
        sample_profile(),
        key=PKI.provider,
        certificate=PKI.provider_cert,
        ese_id=ese_id_of(n),
        profile_id="P-1",
    )


def _card(*, agent: bool = True, discard: bool = False) -> CardRuntime:
    """eSE 1 as an eUICC: profile store, ECASD, ISD-R, and (if `agent`) the move agent."""
    rt = CardRuntime(None, rng_seed=7)
    install_euicc(rt)
    if agent:
        params = (
            tlv.build(TAG_ESE_ID, ese_id_of(1))
            + tlv.build(TAG_ROOT, PKI.root.public.to_point())
            + tlv.build(TAG_PRIVATE, PKI.ese_key(1).private_bytes())
            + tlv.build(TAG_VARIANT, bytes((Variant.FULL,)))
            + tlv.build(TAG_DISCARD, b"\x01" if discard else b"\x00")
        )
        rt.install(MoveAgentApplet, MOVE_AGENT_AID, params)
    rt.power_on()
    return rt


def _put(rt: CardRuntime, profile: Profile) -> None:
    """A profile put into the store as-is, disabled (as a copy bypassing the agent would be)."""
    ctx = rt.selected_context(0)
    assert ctx is not None  # the profile store, default-selected
    rt.call_in_context(ctx, rt.applet(UICC_AID).install_profile, profile.to_bytes())


def _state(rt: CardRuntime) -> list[tuple[str, bool]]:
    return [(p.iccid, p.enabled) for p in rt.applet(UICC_AID).list_profiles()]


def _enable(rt: CardRuntime, iccid: str) -> int:
    lpa = Lpa(rt)
    res = lpa.es10(
        "EnableProfileRequest",
        {"profileIdentifier": ("iccid", iccid_to_bytes(iccid)), "refreshFlag": False},
        "EnableProfileResponse",
    )
    return int(res["enableResult"])


def _edited(profile: Profile) -> Profile:
    """The profile with its eSE ID rewritten to this eSE's own (1), the signature untouched."""
    meta = tuple((k, ese_id_of(1).hex() if k == META_ESE_ID else v) for k, v in profile.metadata)
    return replace(profile, metadata=meta)


def _forged(profile: Profile) -> Profile:
    """Bound to eSE 1, but signed by a key that is not the certified provider's."""
    return bind(
        sample_profile(),
        key=PKI.other_provider,
        certificate=PKI.provider_cert,
        ese_id=ese_id_of(1),
        profile_id="P-1",
    )


REFUSED = {
    "edited eSE ID": lambda: _edited(_bound(2)),
    "forged signature": lambda: _forged(_bound()),
}


def test_a_bound_profile_with_the_right_ese_id_and_signature_enables_via_es10c() -> None:
    rt = _card()
    _put(rt, _bound())
    iccid = _bound().iccid
    assert _state(rt) == [(iccid, False)]
    assert _enable(rt, iccid) == OK
    assert _state(rt) == [(iccid, True)]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_bound_profile_is_left_disabled_and_nothing_changes(case: str) -> None:
    rt = _card()
    profile = REFUSED[case]()
    _put(rt, profile)
    before = rt.nvm.total_writes
    assert _enable(rt, profile.iccid) == UNDEFINED_ERROR
    assert rt.nvm.total_writes == before  # no write at all: no partial state to tear
    assert _state(rt) == [(profile.iccid, False)]
    with pytest.raises(BindingError):  # the agent's own check agrees
        policy = BindingPolicy(ese_id_of(1), PKI.root.public.to_point(), Variant.FULL, False)
        check_with_policy(profile, policy)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_bound_profile_is_discarded_under_the_discard_policy_even_torn(
    case: str,
) -> None:
    profile = REFUSED[case]()

    def fresh() -> CardRuntime:
        rt = _card(discard=True)
        _put(rt, profile)
        return rt

    rt = fresh()
    before = rt.nvm.total_writes
    assert _enable(rt, profile.iccid) == UNDEFINED_ERROR
    assert _state(rt) == []  # FIG. 4 step 404: discarded
    n = int(rt.nvm.total_writes - before)
    assert n > 0
    for write in range(1, n + 1):
        rt = fresh()
        lpa = Lpa(rt)  # the channel opened before the tear is armed
        rt.nvm.tear_after(write - 1)
        with pytest.raises(CardTorn):
            lpa.es10(
                "EnableProfileRequest",
                {
                    "profileIdentifier": ("iccid", iccid_to_bytes(profile.iccid)),
                    "refreshFlag": False,
                },
                "EnableProfileResponse",
            )
        rt.nvm.tear_after(None)
        rt.power_off()
        rt.power_on()
        assert _state(rt) == [(profile.iccid, False)], write  # all or nothing: still whole
        assert _enable(rt, profile.iccid) == UNDEFINED_ERROR  # asked again: refused, discarded
        assert _state(rt) == []


def test_a_bound_profile_is_refused_on_a_card_without_the_move_agent() -> None:
    rt = _card(agent=False)
    _put(rt, _bound())
    assert _enable(rt, _bound().iccid) == UNDEFINED_ERROR  # no eSE ID to check: fail closed
    assert _state(rt) == [(_bound().iccid, False)]


def test_a_profile_with_only_part_of_a_binding_is_checked_not_waved_through() -> None:
    partial = replace(_bound(), metadata=((META_ESE_ID, ese_id_of(1).hex()),))
    assert has_binding(partial)
    rt = _card()
    _put(rt, partial)
    assert _enable(rt, partial.iccid) == UNDEFINED_ERROR
    assert _state(rt) == [(partial.iccid, False)]


@pytest.mark.parametrize("agent", [True, False])
def test_an_ordinary_profile_enables_as_before(agent: bool) -> None:
    plain = sample_profile()
    assert not has_binding(plain)
    rt = _card(agent=agent)
    _put(rt, plain)
    assert _enable(rt, plain.iccid) == OK
    assert _state(rt) == [(plain.iccid, True)]


def test_the_binding_policy_is_granted_to_the_isdr_and_the_profile_store_only() -> None:
    """The ISD-R checks on EnableProfile, the profile store at power-up
    (test_profile_move_power_up.py); no other applet gets the policy."""
    rt = _card()
    agent: Any = rt.applet(MOVE_AGENT_AID)
    assert agent.get_shareable_interface_object(ISD_R_AID, 0) is agent
    assert agent.get_shareable_interface_object(UICC_AID, 0) is agent
    assert agent.get_shareable_interface_object(bytes.fromhex("A000000151000000"), 0) is None


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ICCIDs of the profiles the store exported and decoded whole (a spy, not a mock)."""
    seen: list[str] = []
    real_export = UiccApplet.export_profile
    real_decode = Profile.from_bytes.__func__  # type: ignore[attr-defined]

    def export(self: UiccApplet, iccid: str, with_secrets: bool = True) -> bytes:
        seen.append(iccid)
        return real_export(self, iccid, with_secrets)

    def decode(cls: type[Profile], data: bytes) -> Profile:
        seen.append("decode")
        return real_decode(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(UiccApplet, "export_profile", export)
    monkeypatch.setattr(Profile, "from_bytes", classmethod(decode))
    return seen


@pytest.mark.parametrize("agent", [True, False])
def test_an_ordinary_profiles_enable_decodes_no_profile(agent: bool, decodes: list[str]) -> None:
    """The binding is looked up in the store's summary (the metadata stored at install),
    so ES10c EnableProfile of an ordinary profile reads no profile back; a bound one is
    still decoded whole and checked."""
    plain = sample_profile(iccid="8900000000000000077")
    rt = _card(agent=agent)
    _put(rt, plain)
    decodes.clear()
    assert _enable(rt, plain.iccid) == OK
    assert decodes == []
    bound = _bound()
    _put(rt, bound)
    decodes.clear()
    assert _enable(rt, bound.iccid) == (OK if agent else UNDEFINED_ERROR)
    assert decodes == [bound.iccid, "decode"]


def test_the_store_summary_shows_the_binding_at_every_tear_of_the_install() -> None:
    """The metadata is the slot's last write, in the install's transaction: after a tear
    at any write the profile is either absent or listed with its binding."""
    bound = _bound()
    rt = _card()
    n = 0
    while True:
        rt.nvm.tear_after(n)
        try:
            _put(rt, bound)
        except PowerLoss:
            rt.nvm.tear_after(None)
            rt.power_off()
            rt.power_on()
            summaries = rt.applet(UICC_AID).list_profiles()
            assert [s.iccid for s in summaries] in ([], [bound.iccid]), n
            if summaries:
                assert metadata_has_binding(summaries[0].metadata)
                break
            n += 1
            continue
        rt.nvm.tear_after(None)
        break
    (summary,) = rt.applet(UICC_AID).list_profiles()
    assert summary.metadata == bound.metadata and metadata_has_binding(summary.metadata)
    assert n > 10
    assert not metadata_has_binding(sample_profile().metadata)


@pytest.fixture
def fig4_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ICCIDs of the profiles FIG. 4 was run on (`check_binding`: every path's check,
    the ISD-R's and the store's activation both come through `check_with_policy`; a spy
    that calls the real check, not a mock)."""
    import card.profile_binding as pb

    seen: list[str] = []
    real = pb.check_binding

    def spy(profile: Profile, *args: Any) -> str:
        seen.append(profile.iccid)
        return real(profile, *args)

    monkeypatch.setattr(pb, "check_binding", spy)
    return seen


def test_one_enable_checks_the_binding_once(fig4_checks: list[str]) -> None:
    """Regression: ES10c EnableProfile ran FIG. 4 on the bound profile (the ISD-R), and the
    first command after it ran it again (the store's activation of the newly enabled
    profile, which reads every file back). Once per enable now; a power-up or reset
    checks again, once."""
    from card.uicc.builder import DEFAULT_USIM_AID
    from tests.unit.usim_cards import send

    rt = _card()
    bound = _bound()
    _put(rt, bound)
    fig4_checks.clear()
    assert _enable(rt, bound.iccid) == OK
    assert fig4_checks == [bound.iccid]
    select_usim = bytes((0x00, 0xA4, 0x04, 0x0C, len(DEFAULT_USIM_AID))) + DEFAULT_USIM_AID
    for _ in range(3):
        assert send(rt, select_usim)[1] == 0x9000  # activated: the profile runs
    assert fig4_checks == [bound.iccid]
    for how in ("power cycle", "warm reset"):
        restart(rt, how)
        fig4_checks.clear()
        for _ in range(2):
            assert send(rt, select_usim)[1] == 0x9000
        assert fig4_checks == [bound.iccid]  # the activation's own check, once
    assert rt.exceptions == 0


def test_an_enable_not_by_a_client_leaves_the_binding_to_the_activation(
    fig4_checks: list[str],
) -> None:
    """The store's own enable (as at its installation with a profile) ran no FIG. 4: the
    activation at the first command runs it, once."""
    from card.uicc.builder import DEFAULT_USIM_AID
    from tests.unit.usim_cards import send

    rt = _card()
    bound = _bound()
    _put(rt, bound)
    ctx = rt.selected_context(0)
    assert ctx is not None  # the profile store, default-selected
    fig4_checks.clear()
    rt.call_in_context(ctx, rt.applet(UICC_AID).enable_profile, bound.iccid)
    assert fig4_checks == []
    select_usim = bytes((0x00, 0xA4, 0x04, 0x0C, len(DEFAULT_USIM_AID))) + DEFAULT_USIM_AID
    for _ in range(2):
        assert send(rt, select_usim)[1] == 0x9000
    assert fig4_checks == [bound.iccid]
    assert rt.exceptions == 0
