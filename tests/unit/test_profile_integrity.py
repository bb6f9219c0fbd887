"""A damaged stored profile is not enabled (ES10c EnableProfile, SGP.22 §5.7.16).

The profile store seals the records written at install and never again (the
metadata, the AKA keys, RFM, CDMA) with a check value in the metadata, and checks
the shape of the records commands change (SQN, PINs, security domains, the MF's
and ADFs' metadata and directories) before an enable, without reading the profile
back whole. A damaged profile answers undefinedError(127) and nothing changes:
the enabled profile stays enabled, the NVM is as it was. A profile stored before
seals existed is read back whole instead. A damaged profile can still be deleted.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from applets.profile_move.wire import MOVE_AGENT_AID, Ins
from applets.usim import UICC_AID
from applets.usim.store import DamagedProfile, Slot
from card import tlv
from card.framework.system import Store
from card.fs.files import M_FDB
from card.nvm import NVM, stored_form
from card.runtime import CardRuntime
from card.sgp22.values import iccid_to_bytes
from card.uicc.builder import sample_profile
from card.uicc.fsstore import _unpack_meta
from card.uicc.profile import AppSpec, Profile
from tests.unit.sgp22_helpers import Lpa
from tests.unit.test_profile_move_es10 import _bound, _card, _put, _state

OK, UNDEFINED_ERROR = 0, 127
ENABLED = sample_profile(iccid="8900000000000000011")
OTHER = sample_profile(iccid="8900000000000000022")
OWNER = UICC_AID.hex()


def _es10c(lpa: Lpa, function: str, iccid: str) -> int:
    res = lpa.es10(
        f"{function}ProfileRequest",
        {"profileIdentifier": ("iccid", iccid_to_bytes(iccid)), "refreshFlag": False},
        f"{function}ProfileResponse",
    )
    return int(res[f"{function.lower()}Result"])


def _slot_key(rt: CardRuntime, iccid: str, name: str) -> str:
    """The store's key `name` of the profile `iccid` (its slot's prefix)."""
    store: Any = rt.applet(UICC_AID)
    slot = next(s for s in store._slots() if s.iccid == iccid)
    return slot.prefix + name


def _card_with(profile: Profile = OTHER, *, agent: bool = False) -> CardRuntime:
    """ENABLED enabled, `profile` installed beside it, disabled."""
    rt = _card(agent=agent)
    _put(rt, ENABLED)
    _put(rt, profile)
    assert _es10c(Lpa(rt), "Enable", ENABLED.iccid) == OK
    return rt


def _rewrite(name: str, change: Callable[[Any], Any]) -> Callable[[CardRuntime, str], None]:
    def damage(rt: CardRuntime, iccid: str) -> None:
        key = _slot_key(rt, iccid, name)
        new = change(rt.nvm.read(OWNER, key))
        if new is None:
            rt.nvm.delete(OWNER, key)
        else:
            rt.nvm.write(OWNER, key, new)

    return damage


DAMAGE: dict[str, Callable[[CardRuntime, str], None]] = {
    # sealed records
    "K one byte changed": _rewrite(
        "auth", lambda a: (a[0], bytes([a[1][0] ^ 1]) + a[1][1:], *a[2:])
    ),
    "K cut short": _rewrite("auth", lambda a: (a[0], a[1][:15], *a[2:])),
    "keys record gone": _rewrite("auth", lambda a: None),
    "the metadata's name changed": _rewrite("meta", lambda m: (m[0], "renamed", *m[2:])),
    "the seal itself changed": _rewrite("meta", lambda m: (*m[:8], bytes(16))),
    # records commands change: their shape
    "SQN record gone": _rewrite("sqn", lambda v: None),
    "SQN record of another shape": _rewrite("sqn", lambda v: (v[0],)),
    "a PIN record gone": _rewrite("pin.01", lambda v: None),
    "a PIN record of another shape": _rewrite("pin.01", lambda v: v[:3]),
    "the MF's metadata garbled": _rewrite("fs.m.3F00", lambda v: b"\x01"),
    "the MF's directory garbled": _rewrite("fs.c.3F00", lambda v: b"\x01"),
    "the MF gone": _rewrite("fs.m.3F00", lambda v: None),
    # the metadata record itself, its ICCID still readable
    "the metadata cut short": _rewrite("meta", lambda m: m[:3]),
    "the metadata's name not a string": _rewrite("meta", lambda m: (m[0], 5, *m[2:])),
    "the metadata's applications garbled": _rewrite("meta", lambda m: (*m[:4], b"x", *m[5:])),
}


#: what `garble_deep_file` damages: (the record's key prefix, the damaged value); "fs.c."
#: is the directory of DF.GSM, EF.IMSI's parent
DEEP_DAMAGE: dict[str, tuple[str, Any]] = {
    "content": ("fs.z.", 7),
    "metadata not decoding": ("fs.m.", b"\x01"),
    "metadata of another layout": ("fs.m.", (1, 2)),
    "metadata with a field of another type": ("fs.m.", None),
    "parent directory not bytes": ("fs.c.", 7),
    "parent directory of another shape": ("fs.c.", ((0x6F07, 0, 7),)),
}


def garble_deep_file(rt: CardRuntime, iccid: str, part: str = "content") -> None:
    """A record of EF.IMSI (under ADF.USIM and DF.GSM) made a value that does not decode
    (`DEEP_DAMAGE[part]`): its content, its metadata or DF.GSM's directory, files
    `Slot.check` does not read (it shows when a command or `Slot.read` reads one)."""
    prefix, value = DEEP_DAMAGE[part]
    metas = _slot_key(rt, iccid, "fs.m.")
    imsi = [
        k[len(metas) :]
        for k in rt.nvm.segment(OWNER)
        if k.startswith(metas) and k.endswith("/6F07")
    ]
    handles = imsi
    if prefix == "fs.c.":  # DF.GSM's: ADF.USIM's directory is read at the activation
        handles = [p for p in (h.rsplit("/", 1)[0] for h in imsi) if "/" in p]
    keys = [_slot_key(rt, iccid, prefix + h) for h in handles]
    assert keys and all(k in rt.nvm.segment(OWNER) for k in keys)
    for handle, key in zip(handles, keys, strict=True):
        if value is None:  # the file's own metadata tuple, its FDB (M_FDB) a string
            meta = _unpack_meta(handle, rt.nvm.segment(OWNER)[key])
            rt.nvm.write(OWNER, key, (*meta[:M_FDB], "01", *meta[M_FDB + 1 :]))
        else:
            rt.nvm.write(OWNER, key, value)


#: the metadata record damaged past naming an ICCID
NAMELESS: dict[str, Callable[[CardRuntime, str], None]] = {
    "the metadata gone": _rewrite("meta", lambda m: None),
    "the metadata garbled": _rewrite("meta", lambda m: b"\x01"),
    "the metadata's ICCID not digits": _rewrite("meta", lambda m: ("89ab", *m[1:])),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_profile_is_refused_and_the_enabled_one_stays(case: str) -> None:
    rt = _card_with()
    lpa = Lpa(rt)
    DAMAGE[case](rt, OTHER.iccid)
    before = rt.nvm.snapshot()
    assert _es10c(lpa, "Enable", OTHER.iccid) == UNDEFINED_ERROR
    assert _state(rt) == [(ENABLED.iccid, True), (OTHER.iccid, False)]
    assert rt.nvm.snapshot() == before  # the notifications written for the switch rolled back
    assert rt.exceptions == 0
    # It can still be deleted (nothing of it needs reading back), and the card goes on.
    assert _es10c(lpa, "Disable", ENABLED.iccid) == OK
    res = lpa.es10(
        "DeleteProfileRequest", ("iccid", iccid_to_bytes(OTHER.iccid)), "DeleteProfileResponse"
    )
    assert int(res["deleteResult"]) == OK
    assert _state(rt) == [(ENABLED.iccid, False)]
    assert _es10c(lpa, "Enable", ENABLED.iccid) == OK


def _profiles_info(lpa: Lpa) -> list[dict[str, Any]]:
    tag, infos = lpa.es10("ProfileInfoListRequest", {}, "ProfileInfoListResponse")
    assert tag == "profileInfoListOk"
    return list(infos)


@pytest.mark.parametrize("case", sorted(DAMAGE) + sorted(NAMELESS))
def test_get_profiles_info_answers_beside_a_damaged_profile(case: str) -> None:
    """Regression: a damaged metadata record made GetProfilesInfo (and every ES10c
    function finding a profile) answer 6F00. The others are listed as before; the
    damaged one is listed, disabled, from what is still known (ProfileInfo has no
    "damaged" state; EnableProfile refuses it, DeleteProfile removes it), unless its
    record names no ICCID any more: then nothing can address it and it is left out."""
    rt = _card_with()
    lpa = Lpa(rt)
    intact = _profiles_info(lpa)
    (DAMAGE | NAMELESS)[case](rt, OTHER.iccid)
    infos = _profiles_info(lpa)
    assert rt.exceptions == 0
    assert infos[0] == intact[0]  # ENABLED, untouched
    if case in NAMELESS:
        assert len(infos) == 1
    else:
        assert infos[1]["iccid"] == intact[1]["iccid"]
        assert infos[1]["isdpAid"] == intact[1]["isdpAid"]
        assert infos[1]["profileState"] == 0
    # The card goes on for the other profile: disable, enable, and a new install.
    assert _es10c(lpa, "Disable", ENABLED.iccid) == OK
    assert _es10c(lpa, "Enable", ENABLED.iccid) == OK
    _put(rt, sample_profile(iccid="8900000000000000033"))
    assert [p["iccid"] for p in _profiles_info(lpa)][-1] == iccid_to_bytes("8900000000000000033")
    assert rt.exceptions == 0


@pytest.mark.parametrize("case", sorted(NAMELESS))
def test_a_profile_whose_record_names_no_iccid_is_not_found(case: str) -> None:
    rt = _card_with()
    NAMELESS[case](rt, OTHER.iccid)
    assert _es10c(Lpa(rt), "Enable", OTHER.iccid) == 1  # iccidOrAidNotFound
    assert _state(rt) == [(ENABLED.iccid, True), ("", False)]
    assert rt.exceptions == 0


def test_an_intact_profile_is_sealed_at_install_and_enables() -> None:
    rt = _card_with()
    meta = rt.nvm.read(OWNER, _slot_key(rt, OTHER.iccid, "meta"))
    assert len(meta) == 9 and isinstance(meta[8], bytes) and len(meta[8]) == 16
    lpa = Lpa(rt)
    for _ in range(2):  # switching back and forth: the commands' writes break no seal
        assert _es10c(lpa, "Enable", OTHER.iccid) == OK
        assert _es10c(lpa, "Enable", ENABLED.iccid) == OK


def test_the_seal_is_made_over_the_metadata_as_stored() -> None:
    """Regression: the seal was computed over the metadata as built and checked over the
    stored one, which NVM normalises (lists to tuples, bytearrays to bytes): a list or a
    bytearray in the metadata made the install fail. Both sides now seal the stored form."""
    listed: Any = (["operator", "cardemu"],)  # as a builder might make them
    params: Any = bytearray(b"\x01\x02")
    app = AppSpec(bytes.fromhex("A0000000871004"), "usim", params)
    built = dataclasses.replace(OTHER, metadata=listed, apps=(app,))
    store = Store(NVM(None), OWNER)
    Slot(store, 1).write(built)
    slot = Slot(store, 1)  # a fresh one: nothing remembered from the write
    meta = slot.meta
    assert meta[3] == (("operator", "cardemu"),) and type(meta[4][0][2]) is bytes
    assert meta == stored_form(meta)
    slot.check()
    in_memory = (built.iccid, built.name, built.provider, built.metadata,
                 tuple((a.aid, a.class_ref, a.params) for a in built.apps), *meta[5:8])  # fmt: skip
    assert meta[8] == slot._seal(meta) == slot._seal(in_memory)
    # and the seal still catches a change of the normalised metadata
    store.set(slot.prefix + "meta", (*meta[:3], (("operator", "other"),), *meta[4:]))
    with pytest.raises(DamagedProfile, match="seal"):
        Slot(store, 1).check()


@pytest.mark.parametrize("damaged", [False, True])
def test_a_profile_stored_before_seals_is_read_back_whole(damaged: bool) -> None:
    """Metadata of eight items (no seal, as images written before it hold): the store reads
    the profile back whole before enabling it; one that does not read back is refused."""
    rt = _card_with()
    key = _slot_key(rt, OTHER.iccid, "meta")
    rt.nvm.write(OWNER, key, rt.nvm.read(OWNER, key)[:8])
    if damaged:
        DAMAGE["K cut short"](rt, OTHER.iccid)
    expected = UNDEFINED_ERROR if damaged else OK
    assert _es10c(Lpa(rt), "Enable", OTHER.iccid) == expected
    assert dict(_state(rt))[OTHER.iccid] is not damaged


@pytest.mark.parametrize("case", ["K one byte changed", *(f"deep: {p}" for p in DEEP_DAMAGE)])
def test_a_damaged_bound_profile_is_refused_and_the_agent_answers_memory_failure(
    case: str,
) -> None:
    """A move-bound profile is exported for its binding check: a damaged one is refused by
    ES10c as well, and the move agent's ACTIVATE answers 6581 (ISO/IEC 7816-4: memory
    failure), not 6A88 (no such profile).

    Regression ("deep: ..."): damage `Slot.check` does not see, found by the export's read
    (`DamagedRecord`), escaped `export_profile`: Enable answered 6F00, not undefinedError,
    and the agent 6F00, not 6581."""
    bound = _bound()
    rt = _card_with(bound, agent=True)
    if case.startswith("deep: "):
        garble_deep_file(rt, bound.iccid, case.removeprefix("deep: "))
    else:
        DAMAGE[case](rt, bound.iccid)
    assert _es10c(Lpa(rt), "Enable", bound.iccid) == UNDEFINED_ERROR
    assert _state(rt) == [(ENABLED.iccid, True), (bound.iccid, False)]
    lpa = Lpa(rt)  # a channel to select the agent on
    ch = lpa.channel
    select = bytes((ch, 0xA4, 0x04, 0x00, len(MOVE_AGENT_AID))) + MOVE_AGENT_AID + b"\x00"
    assert lpa.send(select)[1] == 0x9000
    activate = tlv.build(0x5A, bound.iccid.encode())
    resp = rt.process(bytes((0x80 | ch, Ins.ACTIVATE, 0, 0, len(activate))) + activate)
    assert resp == b"\x65\x81"
    assert rt.exceptions == 0


@pytest.mark.parametrize(
    "case", ["K one byte changed", "the MF gone", "the metadata cut short", "the metadata gone"]
)
def test_card_info_lists_a_damaged_profile_as_damaged(tmp_path: Any, case: str) -> None:
    """Regression: one damaged profile made `cardemu card info` a traceback (and one
    whose metadata record was damaged still did)."""
    from click.testing import CliRunner

    from card.uicc.builder import sample_iccid
    from host.cli import cli
    from host.presets import new_card

    path = str(tmp_path / "u.card")
    new_card("usim", path).close()
    rt = CardRuntime(path, create=False)
    (DAMAGE | NAMELESS)[case](rt, sample_iccid())
    rt.close()
    r = CliRunner().invoke(cli, ["card", "info", "--json", path])
    assert r.exit_code == 0, r.output
    (profile,) = json.loads(r.output)["profiles"]
    iccid = None if case in NAMELESS else sample_iccid()
    assert profile == {"iccid": iccid, "enabled": True, "damaged": True}
    r = CliRunner().invoke(cli, ["card", "info", path])
    assert r.exit_code == 0, r.output
    assert f"profile   {iccid or '(unreadable)':<20} enabled  DAMAGED" in r.output
