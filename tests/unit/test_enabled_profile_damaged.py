"""The enabled profile's data found damaged: the card answers, the ISD-R still manages it.

A real eUICC whose enabled profile fails its integrity check gives the terminal no
network access from it and keeps answering; its ISD-R still lists the profile
(SGP.22 has no "damaged" state: Enabled) and the LPA can disable and delete it.
Here the profile is checked at its activation (the first command after each
power-up, reset or switch) and its metadata record at every command: a profile
that fails is not used and the card answers as with no profile enabled (6A82 for
the USIM's ADF, 6A88 for PINs and AUTHENTICATE: TS 102 221 §10.2.1), writing
nothing. A record damaged after the activation answers 6581 (memory problem) at
the command that finds it, and the profile is used no more. Never 6F00.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from applets.usim import UICC_AID
from card.framework import CardError
from card.profiles import ISD_R_AID
from card.runtime import CardRuntime
from card.sgp22.values import iccid_to_bytes
from card.uicc.builder import DEFAULT_USIM_AID
from card.uicc.ts_31_103 import DEFAULT_ISIM_AID
from tests.unit.cards import restart
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_profile_integrity import (
    DAMAGE,
    DEEP_DAMAGE,
    ENABLED,
    NAMELESS,
    OTHER,
    OWNER,
    _card_with,
    _es10c,
    _profiles_info,
    _slot_key,
    garble_deep_file,
)
from tests.unit.test_profile_move_es10 import _state
from tests.unit.test_runtime import _count_deselects
from tests.unit.usim_cards import send

OK = 0
PIN1 = b"1234".ljust(8, b"\xff")


def _select(aid: bytes) -> bytes:
    return bytes((0x00, 0xA4, 0x04, 0x04, len(aid))) + aid


def _auth(p2: int) -> bytes:
    body = bytes((16,)) + bytes(16) + (bytes((16,)) + bytes(16) if p2 == 0x81 else b"")
    return bytes((0x00, 0x88, 0x00, p2, len(body))) + body


#: every path of the UICC applet's command dispatch (ISO, proprietary, PIN, GSM class)
COMMANDS: dict[str, bytes] = {
    "SELECT MF": bytes.fromhex("00A40004023F00"),
    "SELECT (no name)": bytes.fromhex("00A4000400"),
    "SELECT by DF name, none": bytes.fromhex("00A4040400"),  # the applet's select_response
    "SELECT EF.ICCID": bytes.fromhex("00A40004022FE2"),
    "READ BINARY": bytes.fromhex("00B0000000"),
    "UPDATE BINARY": bytes.fromhex("00D600000100"),
    "SELECT ADF.USIM": _select(DEFAULT_USIM_AID),
    "SELECT EF.IMSI": bytes.fromhex("00A40004026F07"),
    "READ RECORD": bytes.fromhex("00B2010400"),
    "SEARCH RECORD": bytes.fromhex("00A2010401FF00"),
    "STATUS": bytes.fromhex("80F2000000"),
    "VERIFY PIN1": bytes.fromhex("0020000108") + PIN1,
    "VERIFY (tries left)": bytes.fromhex("00200001"),
    "CHANGE PIN1": bytes.fromhex("0024000110") + PIN1 + PIN1,
    "AUTHENTICATE 3G": _auth(0x81),
    "AUTHENTICATE GSM": _auth(0x80),
    "GET IDENTITY": bytes.fromhex("8078000100"),
    "INCREASE": bytes.fromhex("8032000003000001"),
    "SELECT ADF.ISIM": _select(DEFAULT_ISIM_AID),
    "GSM SELECT DF.GSM": bytes.fromhex("A0A40000027F20"),
    "GSM STATUS": bytes.fromhex("A0F2000016"),
    "GSM VERIFY CHV1": bytes.fromhex("A020000108") + PIN1,
    "GSM RUN ALGORITHM": bytes.fromhex("A088000010") + bytes(16),
}


def _answers(rt: CardRuntime) -> dict[str, int]:
    return {name: send(rt, apdu)[1] for name, apdu in COMMANDS.items()}


def _no_profile_answers() -> dict[str, int]:
    """What the same commands answer on a card with no profile enabled."""
    rt = _card_with()
    assert _es10c(Lpa(rt), "Disable", ENABLED.iccid) == OK
    return _answers(rt)


NO_PROFILE = _no_profile_answers()


@pytest.mark.parametrize("case", sorted(DAMAGE) + sorted(NAMELESS))
def test_a_damaged_enabled_profile_is_not_used_and_the_card_answers(case: str) -> None:
    """Regression: a damaged metadata record of the enabled profile made `enabled_profile()`
    raise and commands answer 6F00; other damage let the terminal run the profile."""
    rt = _card_with()
    (DAMAGE | NAMELESS)[case](rt, ENABLED.iccid)
    before = rt.nvm.snapshot()
    answers = _answers(rt)
    assert rt.exceptions == 0
    assert rt.nvm.snapshot() == before  # nothing written
    assert answers == NO_PROFILE  # as with no profile enabled
    assert answers["SELECT ADF.USIM"] == 0x6A82  # no network access from it
    assert answers["AUTHENTICATE 3G"] == answers["VERIFY PIN1"] == 0x6A88
    # The ISD-R still sees it enabled, and the LPA can disable and delete it.
    store = rt.applet(UICC_AID)
    lpa = Lpa(rt)
    if case in NAMELESS:
        assert store.enabled_profile() == ""  # enabled, its ICCID unreadable
        assert [p["iccid"] for p in _profiles_info(lpa)] == [iccid_to_bytes(OTHER.iccid)]
        assert _es10c(lpa, "Enable", OTHER.iccid) == OK  # the switch disables it
    else:
        assert store.enabled_profile() == ENABLED.iccid
        assert _profiles_info(lpa)[0]["profileState"] == 1
        assert _es10c(lpa, "Disable", ENABLED.iccid) == OK
        res = lpa.es10(
            "DeleteProfileRequest",
            ("iccid", iccid_to_bytes(ENABLED.iccid)),
            "DeleteProfileResponse",
        )
        assert int(res["deleteResult"]) == OK
        assert _state(rt) == [(OTHER.iccid, False)]
        assert _es10c(lpa, "Enable", OTHER.iccid) == OK
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x9000  # the other one runs
    assert send(rt, COMMANDS["VERIFY PIN1"])[1] == 0x9000
    assert rt.exceptions == 0


def test_a_damaged_enabled_profile_is_checked_again_at_power_up() -> None:
    """The check's result is RAM: a power cycle checks again (and still refuses)."""
    rt = _card_with()
    DAMAGE["K one byte changed"](rt, ENABLED.iccid)
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82
    rt.power_off()
    rt.power_on()
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82
    assert rt.exceptions == 0


#: damage after the activation, and the command that finds it
LATE: dict[str, tuple[Callable[[CardRuntime, str], None], str]] = {
    "keys record gone": (DAMAGE["keys record gone"], "AUTHENTICATE 3G"),
    "SQN record of another shape": (DAMAGE["SQN record of another shape"], "AUTHENTICATE 3G"),
    "a PIN record of another shape": (DAMAGE["a PIN record of another shape"], "VERIFY PIN1"),
    "the metadata gone": (NAMELESS["the metadata gone"], "VERIFY PIN1"),
    "the metadata cut short": (DAMAGE["the metadata cut short"], "AUTHENTICATE 3G"),
    "the MF's metadata garbled": (DAMAGE["the MF's metadata garbled"], "SELECT (no name)"),
    "the MF's directory garbled": (DAMAGE["the MF's directory garbled"], "SELECT EF.ICCID"),
    "the MF's metadata garbled, SELECT P1 04": (
        DAMAGE["the MF's metadata garbled"],
        "SELECT by DF name, none",
    ),
}


@pytest.mark.parametrize("case", sorted(LATE))
def test_a_record_damaged_while_the_profile_runs_answers_memory_problem(case: str) -> None:
    rt = _card_with()
    for name in ("SELECT ADF.USIM", "VERIFY PIN1", "AUTHENTICATE GSM"):
        assert send(rt, COMMANDS[name])[1] == 0x9000, name  # activated, running
    damage, command = LATE[case]
    damage(rt, ENABLED.iccid)
    before = rt.nvm.snapshot()
    sw = send(rt, COMMANDS[command])[1]
    # A damaged metadata record is seen before the command runs: no profile (6A88);
    # another record when the command reads it: 6581.
    assert sw == (0x6A88 if case.startswith("the metadata") else 0x6581)
    assert rt.exceptions == 0
    # From then on, as with no profile enabled (the channel back at the MF).
    assert _answers(rt) == NO_PROFILE
    assert rt.exceptions == 0
    assert rt.nvm.snapshot() == before


def test_an_rfm_script_that_meets_a_damaged_record_answers_memory_problem() -> None:
    """The ISD's Remote File Management runs on the enabled profile's files
    (RemoteFileInterface): a damaged record it meets is 6581 too, not an exception."""
    rt = _card_with()
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x9000  # activated
    DAMAGE["the MF's metadata garbled"](rt, ENABLED.iccid)
    ctx = rt.selected_context(0)
    assert ctx is not None  # the UICC, default-selected
    script = bytes.fromhex("00A4000C023F00")  # compact format: SELECT MF
    with pytest.raises(CardError) as e:
        rt.call_in_context(ctx, rt.applet(UICC_AID).run_rfm_script, b"\xb0\x00\x00", script)
    assert e.value.sw == 0x6581
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82  # used no more
    assert rt.exceptions == 0


def test_a_prepared_read_record_stops_when_the_profile_is_found_damaged() -> None:
    """Regression: after a command answered 6581 (the profile used no more), the quick
    READ RECORD path (`UiccApplet.quick_process`) kept serving the profile's records,
    on the channel that found the damage and on another with a prepared read; they
    answer as the ordinary path does with the profile not in use (6986: no current EF)."""
    rt = _card_with()
    opened, sw = send(rt, "0070000001")
    assert sw == 0x9000 and 0 < opened[0] < 4
    read = {ch: bytes((ch, 0xB2, 0x01, 0x04, 0x00)) for ch in (0, opened[0])}
    for ch in read:
        for name in ("SELECT ADF.USIM", "VERIFY PIN1"):
            apdu = bytearray(COMMANDS[name])
            apdu[0] |= ch
            assert send(rt, bytes(apdu))[1] == 0x9000, name
        assert send(rt, bytes((ch, 0xA4, 0x00, 0x04, 0x02, 0x6F, 0x40)))[1] == 0x9000
    for ch in read:  # (a VERIFY drops the prepared reads: none after these)
        record = send(rt, read[ch])
        assert record[1] == 0x9000
        assert send(rt, read[ch]) == record  # the quick path, prepared
    DAMAGE["keys record gone"](rt, ENABLED.iccid)
    for ch in read:  # a READ RECORD does not read the keys: prepared again
        assert send(rt, read[ch]) == record
    assert send(rt, COMMANDS["AUTHENTICATE 3G"])[1] == 0x6581
    for ch in sorted(read, reverse=True):
        assert send(rt, read[ch]) == (b"", 0x6986), ch
    assert rt.exceptions == 0


@pytest.mark.parametrize("part", sorted(DEEP_DAMAGE))
@pytest.mark.parametrize(
    "commands,sw",
    [
        (("SELECT ADF.USIM", "SELECT EF.IMSI", "READ BINARY"), 0x6581),
        (("GSM SELECT DF.GSM", "GSM SELECT EF.IMSI", "GSM READ BINARY"), 0x9240),
    ],
)
def test_a_damaged_file_the_check_does_not_cover_answers_memory_problem(
    commands: tuple[str, ...], sw: int, part: str
) -> None:
    """Regression: a file deeper than `Slot.check` reads (EF.IMSI), its stored content
    damaged, answered 6F00 at the READ BINARY that found it; the file store raises
    `DamagedRecord` and the card answers 6581 (9240 in class A0), the profile then
    used no more, and the ISD-R still lists it (without an IMSI).

    Regression too: its metadata a tuple of another layout or field type, or its DF's
    directory a value neither bytes nor a directory tuple, was returned unchecked and
    failed in card.fs (ValueError, TypeError): 6F00 at the SELECT, after every power-up.
    """
    more = {
        "GSM SELECT EF.IMSI": bytes.fromhex("A0A40000026F07"),
        "GSM READ BINARY": bytes.fromhex("A0B0000009"),
    }
    rt = _card_with()
    garble_deep_file(rt, ENABLED.iccid, part)
    before = rt.nvm.snapshot()
    apdus = [(COMMANDS | more)[name] for name in commands]
    for _power_up in range(2):
        answers = [send(rt, apdu)[1] for apdu in apdus]
        if set(answers) == {0x9000}:  # DF.GSM's directory is not on ADF.USIM's path
            assert part.startswith("parent directory") and commands[0] == "SELECT ADF.USIM"
            return
        found = next(i for i, a in enumerate(answers) if a != 0x9000)
        assert answers[found] == sw, answers
        if part == "content":
            assert found == len(apdus) - 1  # the READ BINARY
        assert rt.exceptions == 0
        assert _answers(rt) == NO_PROFILE  # used no more
        assert rt.nvm.snapshot() == before
        assert _state(rt) == [(ENABLED.iccid, True), (OTHER.iccid, False)]
        assert rt.exceptions == 0
        rt.power_off()
        rt.power_on()


# -- the profile's applications and security domains ------------------------------------
#
# Seed 003 FIG. 4 (404): a profile that fails its check is not used; SGP.22 §1.4: a
# profile's applications are selectable only while it is the profile in use. So the
# Java Card applications and SDs of an enabled profile that is not activated answer a
# SELECT as applications that are not selectable do (6A82, as a locked one: GP), on
# every channel and for an implicit selection, in RAM (their stored life cycle stays
# SELECTABLE), the check run at their SELECT if it is the first command after power-up.

APP_2 = bytes.fromhex("F043415244454D550A02")
SSD_2 = bytes.fromhex("A000000151535345")


def _profiles() -> tuple[Any, Any]:
    from tests.unit.test_profile_delete_damaged import APP_AID, SSD_AID, _with_sds

    return (
        _with_sds("8900000000000000055", SSD_AID, app=APP_AID),
        _with_sds("8900000000000000066", SSD_2, app=APP_2),
    )


APPS, APPS_OTHER = _profiles()


def _apps_card() -> CardRuntime:
    """APPS enabled (an application and an SD), APPS_OTHER beside it, disabled."""
    from tests.unit.test_profile_move_es10 import _card, _put

    rt = _card()
    _put(rt, APPS)
    _put(rt, APPS_OTHER)
    assert _es10c(Lpa(rt), "Enable", APPS.iccid) == OK
    return rt


def _select_sw(rt: CardRuntime, aid: bytes, channel: int = 0) -> int:
    """The status word of SELECT `aid` (FCI asked) on `channel`, after GET RESPONSE."""
    return send(rt, bytes((channel, 0xA4, 0x04, 0x00, len(aid))) + aid)[1]


def _instances(profile: Any) -> list[bytes]:
    return [a.aid for a in profile.apps] + [sd.aid for sd in profile.security_domains]


def test_regression_a_damaged_profile_runs_no_application_after_power_up() -> None:
    """Regression (probe_apps2): with the enabled profile's K changed, after a power cycle
    ADF.USIM answered 6A82 but the profile's applet was selected (610E) and ran."""
    rt = _apps_card()
    DAMAGE["K one byte changed"](rt, APPS.iccid)
    rt.power_off()
    rt.power_on()
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82
    for aid in _instances(APPS):
        assert _select_sw(rt, aid) == 0x6A82, aid.hex()
    assert rt.exceptions == 0


@pytest.mark.parametrize("case", sorted(DAMAGE) + sorted(NAMELESS))
def test_a_damaged_profile_s_applications_are_refused_at_the_first_command(case: str) -> None:
    """The first command after power-up a SELECT of the profile's application: the
    activation check runs at it (nothing written), and it fails as for a locked one;
    the platform's applets are selectable all the same."""
    rt = _apps_card()
    (DAMAGE | NAMELESS)[case](rt, APPS.iccid)
    rt.power_off()
    rt.power_on()
    before = rt.nvm.snapshot()
    for aid in _instances(APPS):
        assert _select_sw(rt, aid) == 0x6A82, aid.hex()  # the first command
        # On a logical channel too.
        ch = send(rt, bytes.fromhex("0070000001"))[0][0]
        assert _select_sw(rt, aid, ch) == 0x6A82
        assert send(rt, bytes((0x00, 0x70, 0x80, ch)))[1] == 0x9000
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x6A82
    assert _select_sw(rt, ISD_R_AID) == 0x9000  # the platform's: unaffected
    assert _select_sw(rt, UICC_AID) == 0x9000
    assert rt.nvm.snapshot() == before  # nothing written
    assert rt.exceptions == 0


def test_a_damaged_profile_s_application_is_not_selected_implicitly() -> None:
    """An application of the profile made the default of channel 3: opening the channel
    selects nothing while the profile is not activated (a command there: 6999, as on a
    channel whose selection failed), and selects it on a healthy profile."""
    rt = _apps_card()
    rt.set_default(APPS.apps[0].aid, [3])
    rt.power_off()
    rt.power_on()
    assert send(rt, bytes.fromhex("0070000300"))[1] == 0x9000
    assert rt.selected_aid(3) == APPS.apps[0].aid  # healthy: the default is selected
    assert send(rt, bytes.fromhex("0070800300"))[1] == 0x9000
    DAMAGE["K one byte changed"](rt, APPS.iccid)
    rt.power_off()
    rt.power_on()
    assert send(rt, bytes.fromhex("0070000300"))[1] == 0x9000  # the first command
    assert rt.selected_aid(3) is None
    assert send(rt, bytes.fromhex("03CA006600"))[1] == 0x6999
    assert rt.exceptions == 0


def test_after_the_lpa_switches_the_other_profile_s_applications_run() -> None:
    rt = _apps_card()
    DAMAGE["K one byte changed"](rt, APPS.iccid)
    rt.power_off()
    rt.power_on()
    for aid in _instances(APPS):
        assert _select_sw(rt, aid) == 0x6A82
    lpa = Lpa(rt)
    assert _es10c(lpa, "Disable", APPS.iccid) == OK
    assert _es10c(lpa, "Enable", APPS_OTHER.iccid) == OK
    for aid in _instances(APPS_OTHER):
        assert _select_sw(rt, aid) == 0x9000, aid.hex()
        ch = send(rt, bytes.fromhex("0070000001"))[0][0]
        assert _select_sw(rt, aid, ch) == 0x9000
        assert send(rt, bytes((0x00, 0x70, 0x80, ch)))[1] == 0x9000
    for aid in _instances(APPS):
        assert _select_sw(rt, aid) == 0x6A82  # disabled: locked
    assert _select_sw(rt, UICC_AID) == 0x9000  # the UICC again on channel 0
    assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x9000
    # Disabled too: none of either profile's instances, the platform's still.
    assert _es10c(lpa, "Disable", APPS_OTHER.iccid) == OK
    for aid in _instances(APPS) + _instances(APPS_OTHER):
        assert _select_sw(rt, aid) == 0x6A82
    assert _select_sw(rt, ISD_R_AID) == 0x9000
    assert rt.exceptions == 0


def test_a_healthy_profile_s_applications_are_selectable_after_power_up() -> None:
    rt = _apps_card()
    for how in ("power cycle", "warm reset"):
        restart(rt, how)
        for aid in _instances(APPS):
            assert _select_sw(rt, aid) == 0x9000, aid.hex()  # the first command
            ch = send(rt, bytes.fromhex("0070000001"))[0][0]
            assert _select_sw(rt, aid, ch) == 0x9000
            assert send(rt, bytes((0x00, 0x70, 0x80, ch)))[1] == 0x9000
        assert _select_sw(rt, UICC_AID) == 0x9000  # the UICC again on channel 0
        assert send(rt, COMMANDS["SELECT ADF.USIM"])[1] == 0x9000
    assert rt.exceptions == 0


def test_an_old_image_s_damaged_profile_applications_found_by_the_metadata() -> None:
    """A card image stored before the per-slot application records ("p<n>.app.<AID>")
    has only the metadata's list: the application is refused all the same."""
    rt = _apps_card()
    for aid in (a.aid for a in APPS.apps):
        rt.nvm.delete(OWNER, _slot_key(rt, APPS.iccid, f"app.{aid.hex().upper()}"))
    DAMAGE["K one byte changed"](rt, APPS.iccid)
    rt.power_off()
    rt.power_on()
    for aid in _instances(APPS):
        assert _select_sw(rt, aid) == 0x6A82, aid.hex()
    assert rt.exceptions == 0


def test_an_application_selected_when_damage_is_found_answers_no_more() -> None:
    """Regression: the profile's application and SD, selected on logical channels before a
    command found the profile damaged (6581), went on answering there until reselected.
    Now their channels' next command deselects them (6999, as on a channel whose
    application the ISD-R's disable deselected); SELECT of them answers 6A82; nothing
    is written."""
    rt = _apps_card()
    app, sd = APPS.apps[0].aid, APPS.security_domains[0].aid
    for name in ("SELECT ADF.USIM", "VERIFY PIN1", "AUTHENTICATE GSM"):
        assert send(rt, COMMANDS[name])[1] == 0x9000, name  # activated, running
    assert send(rt, bytes.fromhex("0070000001"))[1] == 0x9000
    assert send(rt, bytes.fromhex("0070000002"))[1] == 0x9000
    assert _select_sw(rt, app, 1) == 0x9000
    assert _select_sw(rt, sd, 2) == 0x9000
    echo = bytes.fromhex("81010000020102")  # the echo applet's ECHO on channel 1
    assert send(rt, echo) == (b"\x01\x02", 0x9000)
    DAMAGE["keys record gone"](rt, APPS.iccid)
    before = rt.nvm.snapshot()
    assert send(rt, COMMANDS["AUTHENTICATE 3G"])[1] == 0x6581  # found, on channel 0
    assert send(rt, echo)[1] == 0x6999
    assert rt.selected_aid(1) is None
    assert send(rt, bytes.fromhex("82CA006600"))[1] == 0x6999  # the SD's channel
    assert rt.selected_aid(2) is None
    assert _select_sw(rt, app, 1) == 0x6A82
    assert _select_sw(rt, sd, 2) == 0x6A82
    assert _select_sw(rt, ISD_R_AID, 1) == 0x9000  # the platform's: unaffected
    assert rt.nvm.snapshot() == before
    assert rt.exceptions == 0


# -- ES10c on a store whose own records are damaged: undefinedError, rolled back ------------

UNDEFINED_ERROR = 127

#: the store's record of which profile is enabled, damaged (read before any write)
ENABLED_RECORD_DAMAGE: dict[str, Any] = {
    "not a tuple": b"\x01",
    "cut short": (0,),
    "generation a string": (0, "1"),
    "slot number a bool": (True, 1),
}


def _es10c_any(lpa: Lpa, function: str, iccid: str) -> int:
    if function == "MemoryReset":
        from tests.unit.test_profile_delete_damaged import _reset

        return _reset(lpa)
    if function != "Delete":
        return _es10c(lpa, function, iccid)
    res = lpa.es10(
        "DeleteProfileRequest", ("iccid", iccid_to_bytes(iccid)), "DeleteProfileResponse"
    )
    return int(res["deleteResult"])


@pytest.mark.parametrize("damage", sorted(ENABLED_RECORD_DAMAGE))
@pytest.mark.parametrize(
    ("function", "target"),
    [("Enable", "other"), ("Disable", "enabled"), ("Delete", "other"), ("MemoryReset", "all")],
)
def test_a_store_failure_on_damaged_data_answers_undefined_error(
    function: str, target: str, damage: str
) -> None:
    """Regression: the ISD-R mapped only ProfileStoreError to undefinedError(127); the
    store's record of the enabled profile damaged, ES10c Enable, Disable and Delete
    answered 6F00 (an exception counted as a card fault). Now SGP.22's undefinedError
    (§5.7.16-19), nothing written."""
    rt = _card_with()
    rt.nvm.write(OWNER, "enabled", ENABLED_RECORD_DAMAGE[damage])
    before = rt.nvm.snapshot()
    iccid = ENABLED.iccid if target == "enabled" else OTHER.iccid
    assert _es10c_any(Lpa(rt), function, iccid) == UNDEFINED_ERROR
    assert rt.nvm.snapshot() == before
    assert rt.exceptions == 0


@pytest.mark.parametrize("function", ["Enable", "Disable"])
def test_a_store_failure_after_its_writes_is_rolled_back_whole(
    function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure met after the store (and the ISD-R) wrote: a record of the profile's
    security domains found damaged (DamagedRecord, what the store raises on a stored
    record that does not decode) when the switch reaches them, after the applications'
    life cycles were written. undefinedError, and the transaction undoes every write
    (the registry's included): NVM as before, no partial write. (The "enabled" record
    itself damaged is found before any write: `_enabled_slot` checks its shape.)"""
    from applets.usim.applet import UiccApplet
    from card.uicc.fsstore import DamagedRecord

    def switch_sds(self: Any, old: Any, new: Any) -> None:
        raise DamagedRecord("the stored record p0.sd does not decode")

    rt = _apps_card()
    monkeypatch.setattr(UiccApplet, "_switch_sds", switch_sds)
    before, registry = rt.nvm.snapshot(), rt.applets()
    iccid = APPS_OTHER.iccid if function == "Enable" else APPS.iccid
    assert _es10c(Lpa(rt), function, iccid) == UNDEFINED_ERROR
    assert rt.nvm.apdu_writes > 0  # it did write, and
    assert rt.nvm.apdu_undone == rt.nvm.apdu_writes  # the abort undid all of it
    assert rt.nvm.snapshot() == before
    assert rt.applets() == registry
    assert rt.exceptions == 0 and rt.nvm_violations == 0


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
