"""A complete, consistent card: a service of EF.UST is on if and only if its files are there
(card.uicc.ts_31_102.SERVICE_FILES / SERVICE_NEEDS), checked over every preset, the
profiles the builder makes (TUAK, SUCI by the USIM or the ME, ISIM), the packages the
SM-DP+ builds, and the imported GSMA TS.48 test profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from applets.usim import UiccApplet
from card.uicc import ts_31_102 as u
from card.uicc.builder import TEST_IMSI, IsimSetup, SuciSetup, sample_profile
from card.uicc.profile import Profile
from card.uicc.saip import profile_from_package
from host.presets import PRESETS, new_card
from host.servers.smdpp.saip import ProfileOrder, build_upp

DATA = Path(__file__).parent / "data" / "sgp22"
_INFO = u.SuciCalcInfo(((0, 0),))


def _card_profiles(rt) -> list[Profile]:
    out = []
    for aid, *_ in rt.applets():
        applet = rt.applet(aid)
        if isinstance(applet, UiccApplet):
            for s in applet.list_profiles():
                out.append(Profile.from_bytes(applet.export_profile(s.iccid)))
    return out


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_consistent(name: str) -> None:
    for p in _card_profiles(new_card(name)):
        assert p.service_file_mismatches() == [], p.iccid


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"services": ()},
        {"algorithm": "tuak", "opc": bytes(32)},
        {"suci": SuciSetup(_INFO)},
        {"suci": SuciSetup(_INFO, by_usim=False)},
        {"isim": IsimSetup.for_imsi(TEST_IMSI)},
    ],
    ids=["default", "no-services", "tuak", "suci-usim", "suci-me", "isim"],
)
def test_built_profiles_are_consistent(kwargs: dict) -> None:
    assert sample_profile(**kwargs).service_file_mismatches() == []


@pytest.mark.parametrize(
    "order",
    [
        ProfileOrder("M", "898821000000000003", "001010000000003", bytes(16), bytes(16)),
        ProfileOrder("X", "898821000000000004", "001010000000004", bytes(16), algorithm="xor"),
        ProfileOrder(
            "T", "898821000000000005", "001010000000005", bytes(32), bytes(32), algorithm="tuak"
        ),
        ProfileOrder(
            "G",
            "898821000000000006",
            "001010000000006",
            bytes(16),
            bytes(16),
            suci=SuciSetup(_INFO),
        ),
    ],
    ids=["milenage", "xor", "tuak", "5g"],
)
def test_smdpp_packages_import_consistent(order: ProfileOrder) -> None:
    assert profile_from_package(build_upp(order)).profile.service_file_mismatches() == []


def test_ts48_profile_is_consistent() -> None:
    p = profile_from_package((DATA / "TS48V2-SAIP2-1-BERTLV-UNIQUE.der").read_bytes()).profile
    assert {27, 124} <= p.services()
    assert p.service_file_mismatches() == []


def test_the_check_finds_both_directions() -> None:
    assert u.service_file_mismatches({10}, []) == ["service 10 on, 6F3C, 6F43 missing"]
    assert u.service_file_mismatches((), ["6F3C"]) == ["service 10 off, 6F3C present"]
    assert u.service_file_mismatches({125}, []) == ["service 125 on, 5FD0, 5FD0/4F01 missing"]
    assert u.service_file_mismatches({124}, ["5FC0", "5FC0/4F0A"]) == [
        "service 124 on without 125, 5FC0/4F07 (EF.SUCI_Calc_Info) missing"
    ]
    assert u.service_file_mismatches((), ["5FD0", "5FD0/4F01"]) == []


def test_usim_preset_has_the_telecom_and_5gs_file_sets() -> None:
    """Issue 16: DF.TELECOM with the phonebook/SMS files and DF.5GS with the EFs of the 5G
    services EF.UST switches on (TS 51.011 §10.5; TS 31.102 §4.4.11)."""
    (p,) = _card_profiles(new_card("usim"))
    have = {f.handle for f in p.files}
    for fid in ("6F3A", "6F3C", "6F40", "6F42", "6F43", "6F4A"):
        assert f"3F00/7F10/{fid}" in have, fid
    adf = p.usim_adf()
    assert adf is not None
    assert {122, 123, 126, 129} <= p.services() and not {124, 125} & p.services()
    for fid in ("4F01", "4F02", "4F03", "4F04", "4F05", "4F06", "4F08"):
        assert f"{adf.handle}/5FC0/{fid}" in have, fid
    loci = p.file(f"{adf.handle}/5FC0/4F01")
    assert (
        loci is not None and loci.content == b"\xff" * 13 + bytes.fromhex("00F110000000") + b"\x01"
    )
    nsc = p.file(f"{adf.handle}/5FC0/4F03")
    assert (
        nsc is not None
        and isinstance(nsc.content, tuple)
        and nsc.content[0][:5] == bytes.fromhex("A003800107")
    )
    assert u.encode_5g_auth_keys()[:2] == b"\x80\x20" and len(u.encode_5g_auth_keys()) == 68
