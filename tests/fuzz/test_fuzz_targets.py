"""Fuzz targets: every preset's applets are found, every profile's states are reachable,
the copied cards are the cards, and the profiles' secrets and counters are read right."""

from __future__ import annotations

import pytest

from host.fuzz import oracles as o
from host.fuzz.session import Episode
from host.fuzz.targets import (
    SELECTED,
    CardTarget,
    TargetError,
    applet_target,
    preset_target,
)
from host.presets import PRESETS

#: States a profile names that a card cannot reach: a UICC holding no profile has no PINs.
UNREACHABLE = {("euicc", "uicc"), ("euicc-empty", "uicc")}


def _states() -> list[tuple[str, str, str]]:
    out = []
    for preset in sorted(PRESETS):
        for a in preset_target(preset).applets:
            out.extend((preset, a.name, s.name) for s in a.states)
    return out


@pytest.mark.parametrize("preset, applet, state", _states())
def test_every_profile_state_is_reachable(preset: str, applet: str, state: str) -> None:
    target = preset_target(preset)
    a = target.applet(applet)
    ep = Episode(target, 1)
    checker = o.Checker(ep)
    step, vs = checker.send(a.select_command)
    assert step.sw == 0x9000 or step.sw >> 8 == 0x61, hex(step.sw or 0)
    setup = a.state(state).setup  # type: ignore[union-attr]

    def send(apdu: bytes) -> bytes:
        s, v = checker.send(apdu)
        assert v == [], v
        return s.response or b""

    if (preset, applet) in UNREACHABLE:
        # Refused, cleanly: the fuzzer then stays in "selected".
        answers = [send(apdu) for apdu in setup] if not callable(setup) else []
        assert any(r[-2] not in (0x90, 0x61) for r in answers) or callable(setup)
        return
    if callable(setup):
        setup(send)
    else:
        for apdu in setup:
            r = send(apdu)
            assert r[-2] in (0x90, 0x61), f"{apdu.hex()} -> {r.hex()}"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_copied_cards_answer_as_cards_personalised_afresh(preset: str) -> None:
    target = preset_target(preset)
    ep = Episode(target, 5)
    for a in target.applets:
        ep.send(a.select_command)
        for apdu in a.corpus[:8]:
            ep.send(apdu)
    ep.reset()
    assert Episode(target, 5, afresh=True).replay(ep.steps) is None


def test_demo_applets_have_their_profiles() -> None:
    names = [a.name for a in preset_target("demo").applets]
    assert names == ["iso7816", "purse", "echo", "counter-server", "counter-client"]
    purse = preset_target("demo").applet("purse")
    assert purse.state_names == (SELECTED, "pin-verified")
    assert purse.coverage_files()[0].endswith("applets/sample/purse.py")
    fs = preset_target("demo").applet("iso7816")
    assert any(f.endswith("card/fs/filesystem.py") for f in fs.coverage_files())


def test_applets_without_a_profile_get_a_generic_one() -> None:
    a = applet_target(bytes.fromhex("A0000009990001"))
    assert a.name == "A0000009990001" and a.state_names == (SELECTED,)
    assert a.select_command == bytes.fromhex("00A4040007A000000999000100")


def test_only_keeps_every_applet_known_to_the_oracles() -> None:
    target = preset_target("demo")
    one = target.only(["purse"])
    assert [a.name for a in one.applets] == ["purse"]
    assert len(one.card_applets) == 5
    assert target.only(["F043415244454D5502"]).applets[0].name == "echo"
    with pytest.raises(TargetError, match="no applet 'nope'"):
        target.only(["nope"])


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(TargetError, match="unknown preset"):
        preset_target("no-such-card")


def test_usim_profile_reads_pins_keys_and_counters() -> None:
    target: CardTarget = preset_target("usim")
    card = Episode(target, 1).card
    assert card is not None
    uicc = target.applet("uicc")
    secrets = {s.name.split()[0]: s for s in uicc.secrets(card, uicc.aid)}  # type: ignore[misc]
    assert {"PIN", "PUK", "K", "OPc"} <= set(secrets)
    assert secrets["K"].value == bytes(range(16))
    assert secrets["K"].where is not None and secrets["K"].where[0] == uicc.owner
    counters = o.retry_counters(card.nvm.snapshot(), {uicc.owner: uicc.counters})  # type: ignore[dict-item]
    assert counters and all(v > 0 for v in counters.values())


def test_gp_and_biometric_profiles_name_their_keys() -> None:
    gp = preset_target("gp")
    card = Episode(gp, 1).card
    isd = gp.applet("isd")
    keys = isd.secrets(card, isd.aid)  # type: ignore[misc]
    assert keys and all(k.value == bytes(range(0x40, 0x50)) for k in keys)
    bio = preset_target("bio")
    card = Episode(bio, 1).card
    b = bio.applet("biometric")
    assert [s.name for s in b.secrets(card, b.aid)] == ["administrative key"]  # type: ignore[misc]
    assert {(n, i) for n, i, _ in b.counters(card.nvm.segment(b.owner))} == {  # type: ignore[misc]
        ("tries", -1),
        ("admin_tries", -1),
    }
