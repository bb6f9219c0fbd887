"""The profile store: install, enable, disable, delete, export/import, the terminal's view
after a switch, applications of a profile, the Shareable interface, and tears."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from applets.usim import UICC_AID, UiccApplet
from card.crypto.milenage import Milenage, generate_auth_vector
from card.framework import APDU, Applet, CardError
from card.nvm import PowerLoss
from card.profiles import ISD_R_AID, ProfileStoreError, ProfileStoreReason
from card.runtime import CardRuntime
from card.uicc import ts_31_102 as u
from card.uicc.builder import sample_profile
from card.uicc.profile import AppSpec, Profile, ProfileFormatError
from tests.unit.usim_cards import authenticate, empty_card, select_usim, send, uicc

A = sample_profile(iccid="8900000000000000011", imsi="001010000000011", spn="Alpha")
B = sample_profile(
    iccid="8900000000000000022", imsi="001010000000022", spn="Beta", pin1_enabled=True
)
ECHO_REF = "applets.sample.echo:EchoApplet"
APP_AID = bytes.fromhex("F043415244454D550A01")


def two_profiles(image: str | None = None) -> CardRuntime:
    rt = empty_card(image)
    store = uicc(rt)
    store.install_profile(A.to_bytes())
    store.install_profile(B.to_bytes())
    store.enable_profile(A.iccid)
    rt.reset()
    return rt


def imsi_seen(rt: CardRuntime) -> str | None:
    select_usim(rt)
    send(rt, "00A4000C026F07")
    data, sw = send(rt, "00B0000000")
    return u.decode_imsi(data) if sw == 0x9000 else None


def test_install_list_enable() -> None:
    rt = two_profiles()
    store = uicc(rt)
    infos = store.list_profiles()
    assert [(p.iccid, p.enabled, p.imsi) for p in infos] == [
        (A.iccid, True, "001010000000011"),
        (B.iccid, False, "001010000000022"),
    ]
    assert store.enabled_profile() == A.iccid
    assert imsi_seen(rt) == "001010000000011"


def test_switch_resets_the_terminals_view() -> None:
    rt = two_profiles()
    select_usim(rt)
    assert send(rt, "00A4000C026F07")[1] == 0x9000
    uicc(rt).enable_profile(B.iccid)
    # No reset: the next command already sees B, from its MF (a relative SELECT of an EF
    # of the ADF fails), and no PIN verified.
    assert send(rt, "00B0000000")[1] == 0x6986
    assert send(rt, "00A4000C026F07")[1] == 0x6A82
    assert send(rt, "00200001")[1] == 0x63C3  # B has PIN1 enabled, not verified
    assert send(rt, "0020000108" + b"1234".hex() + "ffffffff")[1] == 0x9000
    assert imsi_seen(rt) == "001010000000022"
    uicc(rt).enable_profile(A.iccid)
    assert imsi_seen(rt) == "001010000000011"
    assert rt.exceptions == 0


def test_disable_leaves_no_profile() -> None:
    rt = two_profiles()
    uicc(rt).disable_profile(A.iccid)
    assert uicc(rt).enabled_profile() is None
    assert send(rt, "00A40004023F00")[1] == 0x9000
    assert send(rt, "00A4040C07A0000000871002")[1] == 0x6A82
    with pytest.raises(ProfileStoreError) as e:
        uicc(rt).disable_profile(A.iccid)
    assert e.value.reason is ProfileStoreReason.NOT_ENABLED


def test_refusals() -> None:
    rt = two_profiles()
    store = uicc(rt)
    with pytest.raises(ProfileStoreError) as e:
        store.delete_profile(A.iccid)
    assert e.value.reason is ProfileStoreReason.NOT_DISABLED
    with pytest.raises(ProfileStoreError) as e:
        store.enable_profile(A.iccid)
    assert e.value.reason is ProfileStoreReason.NOT_DISABLED
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile(A.to_bytes())
    assert e.value.reason is ProfileStoreReason.ICCID_EXISTS
    with pytest.raises(ProfileStoreError) as e:
        store.enable_profile("1234")
    assert e.value.reason is ProfileStoreReason.ICCID_NOT_FOUND
    used = rt.nvm.used
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile(b'{"format":"cardemu-profile","version":1,"profile":{}}')
    assert e.value.reason is ProfileStoreReason.BAD_FORMAT
    assert rt.nvm.used == used


def test_delete_frees_everything() -> None:
    rt = empty_card()
    before = dict(rt.nvm.segment(UICC_AID.hex()))
    store = uicc(rt)
    store.install_profile(A.to_bytes())
    store.delete_profile(A.iccid)
    after = {k: v for k, v in rt.nvm.segment(UICC_AID.hex()).items() if not k.startswith("next")}
    assert after == {k: v for k, v in before.items() if not k.startswith("next")}
    assert store.list_profiles() == ()


def test_export_carries_the_current_state() -> None:
    rt = two_profiles()
    select_usim(rt)
    av = generate_auth_vector(
        Milenage(A.auth.k, A.auth.opc), bytes(16), (0x42).to_bytes(6, "big"), b"\0\0"
    )
    assert authenticate(rt, bytes(16), av.autn)[0][0] == 0xDB
    assert send(rt, "0020008108" + b"0000".hex() + "ffffffff")[1] == 0x63C2
    exported = Profile.from_bytes(uicc(rt).export_profile(A.iccid))
    assert exported.auth.sqn_ms == 0x42
    assert {p.ref: p.tries_left for p in exported.pins}[0x81] == 2
    # moved to another card: the same SQN state, so the replay is caught there too
    other = empty_card()
    uicc(other).install_profile(exported.to_bytes())
    uicc(other).enable_profile(A.iccid)
    select_usim(other)
    assert authenticate(other, bytes(16), av.autn)[0][0] == 0xDC
    assert Profile.from_bytes(uicc(other).export_profile(A.iccid)) == exported


def test_export_without_secrets() -> None:
    rt = two_profiles()
    data = uicc(rt).export_profile(A.iccid, with_secrets=False)
    assert A.auth.k not in data and A.auth.k.hex().encode() not in data
    assert b"31323334" not in data  # PIN1 "1234"
    assert Profile.from_bytes(data).imsi == "001010000000011"


def test_describe_has_no_secrets() -> None:
    d = A.describe()
    assert d["imsi"] == "001010000000011" and d["spn"] == "Alpha"
    assert d["msisdn"] == "+0010100001"
    assert A.auth.k.hex() not in repr(d) and "1234" not in repr(d["pins"])


def test_profile_format_roundtrip_and_errors() -> None:
    assert Profile.from_bytes(A.to_bytes()) == A
    for bad in [
        b"",
        b"\xff",
        b"[]",
        b'{"format":"x"}',
        A.to_bytes().replace(b'"version":1', b'"version":9'),
    ]:
        with pytest.raises(ProfileFormatError):
            Profile.from_bytes(bad)


@given(st.binary(max_size=200))
def test_profile_parser_never_crashes(data: bytes) -> None:
    try:
        Profile.from_bytes(data)
    except ProfileFormatError:
        pass


@given(st.integers(0, len(A.to_bytes()) - 1), st.integers(0, 255))
def test_profile_parser_on_mutations(pos: int, value: int) -> None:
    raw = bytearray(A.to_bytes())
    raw[pos] = value
    try:
        p = Profile.from_bytes(bytes(raw))
    except ProfileFormatError:
        return
    assert isinstance(p, Profile)


def test_card_image_keeps_the_enabled_profile(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "two.card")
    rt = two_profiles(path)
    uicc(rt).enable_profile(B.iccid)
    rt.nvm.flush()
    rt.close()
    again = CardRuntime(path)
    again.power_on()
    assert uicc(again).enabled_profile() == B.iccid
    send(again, "0020000108" + b"1234".hex() + "ffffffff")
    assert imsi_seen(again) == "001010000000022"


def test_applications_follow_their_profile() -> None:
    with_app = sample_profile(iccid="8900000000000000033", apps=[AppSpec(APP_AID, ECHO_REF)])
    rt = two_profiles()
    store = uicc(rt)
    store.install_profile(with_app.to_bytes())
    select_app = "00A4040C" + f"{len(APP_AID):02X}" + APP_AID.hex()
    assert send(rt, select_app)[1] != 0x9000  # installed, not selectable
    store.enable_profile(with_app.iccid)
    rt.reset()
    assert send(rt, select_app)[1] == 0x9000
    rt.reset()
    store.enable_profile(A.iccid)
    assert send(rt, select_app)[1] != 0x9000
    store.delete_profile(with_app.iccid)
    assert all(bytes(aid) != APP_AID for aid, *_ in rt.applets())
    bad = sample_profile(iccid="8900000000000000044", apps=[AppSpec(APP_AID, "os:system")])
    with pytest.raises(ProfileStoreError) as e:
        store.install_profile(bad.to_bytes())
    assert e.value.reason is ProfileStoreReason.APPLICATION
    assert [p.iccid for p in store.list_profiles()] == [A.iccid, B.iccid]


class IsdR(Applet):
    """A stand-in ISD-R: INS 01 lists ICCIDs, INS 02 enables the ICCID in the data."""

    def process(self, apdu: APDU) -> bytes | None:
        store = self.system.get_shareable(UICC_AID)
        if store is None:
            raise CardError(0x6A88)
        if apdu.ins == 0x01:
            return b";".join(p.iccid.encode() for p in store.list_profiles())
        if apdu.ins == 0x02:
            try:
                store.enable_profile(apdu.data.decode())
            except ProfileStoreError:
                raise CardError(0x6985) from None
            return None
        raise CardError(0x6D00)


def test_shareable_interface_for_the_isd_r_only() -> None:
    rt = two_profiles()
    rt.install(IsdR, ISD_R_AID)
    rt.install(IsdR, bytes.fromhex("F043415244454D550B01"))
    assert send(rt, "0070000001")[1] == 0x9000
    assert send(rt, "01A4040C10" + ISD_R_AID.hex())[1] == 0x9000
    data, sw = send(rt, "8101000000")
    assert sw == 0x9000 and data.decode().split(";") == [A.iccid, B.iccid]
    assert send(rt, "8102000013" + B.iccid.encode().hex())[1] == 0x9000
    assert send(rt, "8102000013" + B.iccid.encode().hex())[1] == 0x6985
    assert uicc(rt).enabled_profile() == B.iccid
    assert send(rt, "01A4040C0AF043415244454D550B01")[1] == 0x9000
    assert send(rt, "8101000000")[1] == 0x6A88  # another applet is refused
    assert rt.exceptions == 0


def _tear_every_write(action, check) -> int:  # noqa: ANN001
    """Run `action` on a fresh card with a tear after n writes, for every n until it completes;
    after power-up `check(rt)` must hold. Returns the number of writes."""
    n = 0
    while True:
        rt = two_profiles()
        rt.nvm.tear_after(n)
        try:
            action(rt)
        except PowerLoss:
            rt.power_on()
            check(rt, torn=True)
            n += 1
            continue
        rt.nvm.tear_after(None)
        check(rt, torn=False)
        return n


def test_profile_switch_is_all_or_nothing() -> None:
    with_app = sample_profile(iccid="8900000000000000033", apps=[AppSpec(APP_AID, ECHO_REF)])

    def action(rt: CardRuntime) -> None:
        uicc(rt).enable_profile(with_app.iccid)

    def check(rt: CardRuntime, torn: bool) -> None:
        enabled = uicc(rt).enabled_profile()
        # The registry as persistent memory holds it (what a re-opened card image sees).
        lifecycle = {aid: lc for aid, _, lc, *_ in rt.nvm.read("__card__", "registry")}[APP_AID]
        assert enabled in (A.iccid, with_app.iccid)
        assert (lifecycle == 0x07) == (enabled == with_app.iccid)
        if not torn:
            assert enabled == with_app.iccid

    def setup_and_act(rt: CardRuntime) -> None:
        action(rt)

    # the third profile (with an application) is installed before the tears start
    writes = 0
    n = 0
    while True:
        rt = two_profiles()
        uicc(rt).install_profile(with_app.to_bytes())
        rt.nvm.tear_after(n)
        try:
            setup_and_act(rt)
        except PowerLoss:
            rt.power_on()
            check(rt, torn=True)
            n += 1
            continue
        check(rt, torn=False)
        writes = n
        break
    assert writes >= 2  # the registry and the enabled record at least


def test_profile_install_is_all_or_nothing() -> None:
    data = sample_profile(iccid="8900000000000000055").to_bytes()

    def check(rt: CardRuntime, torn: bool) -> None:
        iccids = [p.iccid for p in uicc(rt).list_profiles()]
        if torn:
            assert iccids in ([A.iccid, B.iccid], [A.iccid, B.iccid, "8900000000000000055"])
            if len(iccids) == 3:
                return
            # nothing of the half-installed profile is left behind
            keys = [k for k in rt.nvm.segment(UICC_AID.hex()) if k.startswith("p2.")]
            assert keys == []
        else:
            assert iccids[-1] == "8900000000000000055"
            assert Profile.from_bytes(uicc(rt).export_profile(iccids[-1])).imsi == "001010000000001"

    assert _tear_every_write(lambda rt: uicc(rt).install_profile(data), check) > 50


def test_uicc_applet_is_a_card_manager_only_for_profiles() -> None:
    assert UiccApplet.card_manager is True
    assert UiccApplet.multiselectable is True
