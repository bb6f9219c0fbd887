"""The LPA (host.lpa) with the emulated eUICC and the built-in SM-DP+: full downloads in-process.

Each download goes LPA → ES10 (STORE DATA on a logical channel) → the
emulated ISD-R, and LPA → ES9+ (HTTPS, CERT.DPtls checked against the CI) →
the SM-DP+ on a loopback port. Refusals assert the SGP.22 status code and
that the eUICC holds no new profile.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.milenage import Milenage, generate_auth_vector
from card.uicc.builder import IsimSetup, SuciSetup
from card.uicc.profile import AuthSpec
from card.uicc.ts_31_102 import SuciCalcInfo
from card.uicc.ts_31_103 import DEFAULT_ISIM_AID
from host.cli import main
from host.es9plus import SC_EID_REFUSED, SC_MATCHING_ID_REFUSED, SC_SMDP_CERT_UNAVAILABLE, Es9Error
from host.lpa import ActivationCode, Es9TransportError, Es10Client, Es10Error, Lpa, Step
from host.lpa.demo import demo_order, run_demo
from host.lpa.es10 import bpp_segments, iccid_from_ef, iccid_to_ef, split_tlvs
from host.pki import create_pki, default_pki, make_eid
from host.presets import PRESETS, install_euicc, new_card
from host.readers.base import Reader
from host.readers.inprocess import InProcessReader
from host.servers.smdpp.saip import ProfileOrder
from host.servers.smdpp.server import OrderState, SmdpPlus
from host.usim import UsimSession, check_auth

pytestmark = pytest.mark.skipif(
    "euicc" not in PRESETS, reason="no euicc preset (applets.isdr) here"
)

K = bytes(range(16))
OPC = bytes(range(16, 32))


class Recorder(Reader):
    """A reader that remembers every command APDU."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.inner.transmit(apdu)


@pytest.fixture(scope="module")
def pki():
    return default_pki()


@pytest.fixture()
def smdp(pki):
    s = SmdpPlus(pki, address="localhost")
    s.add_order(demo_order())
    s.add_order(
        ProfileOrder(
            "XOR-1",
            "8988211000000000032",
            "001010000000003",
            K,
            algorithm="xor",
            name="xor profile",
        )
    )
    s.add_order(
        ProfileOrder(
            "TUAK-1",
            "8988211000000000073",
            "001010000000007",
            TUAK_K,
            TUAK_TOPC,
            algorithm="tuak",
            name="tuak profile",
        )
    )
    s.add_order(
        ProfileOrder(
            "TUAK-2",
            "8988211000000000099",
            "001010000000009",
            TUAK_K,
            TUAK_TOPC,
            algorithm="tuak",
            keccak_iterations=2,
            name="tuak profile, 2 Keccak iterations",
        )
    )
    s.add_order(
        ProfileOrder(
            "5G-1",
            "8988211000000000081",
            "274012001002086",
            K,
            OPC,
            name="5g profile",
            suci=SuciSetup(SuciCalcInfo(((1, 1), (0, 0)), ((27, HN_PUB_A),)), "678"),
            isim=IsimSetup.for_imsi("274012001002086", 3),
        )
    )
    s.add_order(
        ProfileOrder(
            "ISIM-OWN",
            "8988211000000000107",
            "001010000000010",
            K,
            OPC,
            name="isim with its own TUAK keys",
            isim=replace(
                IsimSetup.for_imsi("001010000000010"),
                auth=AuthSpec(k=TUAK_K, opc=TUAK_TOPC, algorithm="tuak"),
            ),
        )
    )
    with s.serve() as server:
        s.address = f"localhost:{server.port}"
        yield s


@pytest.fixture()
def card():
    return InProcessReader(new_card("euicc"))


def lpa_for(reader: Reader, pki, steps: list[Step] | None = None) -> tuple[Es10Client, Lpa]:
    es10 = Es10Client(reader).open()
    return es10, Lpa(es10, ca_pem=pki.ci.pem, on_step=None if steps is None else steps.append)


# -- Pure pieces ---------------------------------------------------------------------------


def test_activation_codes() -> None:
    ac = ActivationCode.parse("LPA:1$smdp.example.com$ABC-123")
    assert (ac.address, ac.matching_id, ac.smdp_oid, ac.cc_required) == (
        "smdp.example.com",
        "ABC-123",
        None,
        False,
    )
    ac = ActivationCode.parse("1$localhost:8443$M$1.2.3$1")
    assert (ac.address, ac.matching_id, ac.smdp_oid, ac.cc_required) == (
        "localhost:8443",
        "M",
        "1.2.3",
        True,
    )
    assert ActivationCode.parse("lpa:1$h$").matching_id == ""
    for bad in ("LPA:2$h$m", "LPA:1", "LPA:1$$m", "nonsense"):
        with pytest.raises(ValueError):
            ActivationCode.parse(bad)


@settings(max_examples=200, deadline=None)
@given(
    host=st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?(:[0-9]{1,5})?", fullmatch=True),
    # SGP.22 §4.1: a matching ID is made of 0-9, A-Z and '-'.
    mid=st.from_regex(r"[0-9A-Za-z-]{0,40}", fullmatch=True),
)
def test_activation_code_round_trip(host: str, mid: str) -> None:
    ac = ActivationCode(host, mid)
    assert ActivationCode.parse(str(ac)) == ac


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_iccid_coding_round_trip(iccid: str) -> None:
    ef = iccid_to_ef(iccid)
    assert len(ef) == 10 and iccid_from_ef(ef) == iccid
    if len(iccid) == 20:
        # Swapped nibbles: the first digit is the low nibble of the first byte.
        assert ef[0] & 0x0F == int(iccid[0])


def test_bpp_segmentation_follows_sgp22_2_5_5(pki) -> None:
    """Segments in SGP.22 §2.5.5 order; joined again they give back the BPP's contents."""
    import base64
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from rsp_soft_euicc import SoftEuicc

    s = SmdpPlus(pki, address="localhost")
    s.add_order(demo_order())
    e = SoftEuicc(pki)
    r1 = s.initiate_authentication(e.initiate_body("localhost"))
    r2 = s.authenticate_client(
        {
            "transactionId": r1["transactionId"],
            "authenticateServerResponse": base64.b64encode(
                e.authenticate_server(r1, "DEMO-1")
            ).decode(),
        }
    )
    r3 = s.get_bound_profile_package(
        {
            "transactionId": r1["transactionId"],
            "prepareDownloadResponse": base64.b64encode(e.prepare_download(r2)).decode(),
        }
    )
    bpp = base64.b64decode(r3["boundProfilePackage"])
    segs = bpp_segments(bpp)
    assert segs[0][:2] == b"\xbf\x36" and segs[0].find(b"\xbf\x23") > 0
    assert segs[1][0] == 0xA0 and split_tlvs(segs[1])[0][0] == 0xA0
    a1 = next(i for i, sg in enumerate(segs) if sg[0] == 0xA1)
    a3 = next(i for i, sg in enumerate(segs) if sg[0] == 0xA3)
    assert all(sg[0] == 0x88 for sg in segs[a1 + 1 : a3]) and all(
        sg[0] == 0x86 for sg in segs[a3 + 1 :]
    )
    # The headers announce exactly what follows them.
    body = b"".join(segs)
    assert len(body) == len(bpp)
    with pytest.raises(ValueError):
        bpp_segments(b"\x30\x00")
    with pytest.raises(ValueError):
        bpp_segments(bpp[:-1])


# -- Full downloads --------------------------------------------------------------------------


def test_download_enable_authenticate(smdp, card, pki) -> None:
    steps: list[Step] = []
    es10, lpa = lpa_for(card, pki, steps)
    order = demo_order()
    result = lpa.download(f"LPA:1${smdp.address}${order.matching_id}")
    assert result.installed and result.notified and result.iccid == order.full_iccid
    assert result.isdp_aid is not None and len(result.isdp_aid) == 16
    names = [f"{s.interface}.{s.function}" for s in steps]
    assert names == [
        "ES10b.GetEUICCChallenge",
        "ES10b.GetEUICCInfo1",
        "ES9+.InitiateAuthentication",
        "ES10b.AuthenticateServer",
        "ES9+.AuthenticateClient",
        "ES10b.PrepareDownload",
        "ES9+.GetBoundProfilePackage",
        "ES10b.LoadBoundProfilePackage",
        "ES9+.HandleNotification",
        "ES10b.RemoveNotificationFromList",
    ]
    assert smdp.order_state(order.matching_id) == OrderState.INSTALLED
    (profile,) = lpa.profiles()
    assert profile["iccid"] == order.full_iccid and profile["state"] == "disabled"
    assert (
        profile["profileName"] == "cardemu demo profile"
        and profile["serviceProviderName"] == "cardemu"
    )
    # The installation result was delivered and removed: nothing pending.
    assert lpa.notifications() == []
    lpa.enable(result.iccid)
    assert lpa.profiles()[0]["state"] == "enabled"
    es10.close()

    usim = UsimSession(card)
    usim.select_usim()
    alg = Milenage(order.k, order.opc)
    rand = os.urandom(16)
    res = usim.authenticate(
        rand, generate_auth_vector(alg, rand, (0x20).to_bytes(6, "big"), b"\x80\x00").autn
    )
    assert check_auth(res, alg, rand).ok

    # The enable notification goes to the SM-DP+ named in the metadata, then leaves the list.
    es10, lpa = lpa_for(card, pki)
    (pending,) = lpa.notifications()
    assert (pending["operation"], pending["iccid"], pending["address"]) == (
        "enable",
        order.full_iccid,
        smdp.address,
    )
    sent = lpa.send_notifications()
    assert [r["result"] for r in sent] == ["sent"] and lpa.notifications() == []
    assert [n["operation"] for n in smdp.notifications()] == ["install", "enable"]


def test_xor_profile_and_management(smdp, card, pki) -> None:
    es10, lpa = lpa_for(card, pki)
    r = lpa.download(f"LPA:1${smdp.address}$XOR-1")
    assert r.installed
    lpa.nickname(r.iccid, "test sim")
    assert lpa.profiles()[0]["nickname"] == "test sim"
    with pytest.raises(Es10Error) as e:
        lpa.disable(r.iccid)  # not enabled
    assert e.value.code == 2
    with pytest.raises(Es10Error) as e:
        lpa.enable("8988211000000000099")
    assert e.value.code == 1 and e.value.name == "iccidOrAidNotFound"
    lpa.enable(r.iccid)
    with pytest.raises(Es10Error):
        lpa.delete(r.iccid)  # enabled: disable first
    lpa.disable(r.iccid)
    lpa.delete(r.iccid)
    assert lpa.profiles() == []
    ops = [n["operation"] for n in lpa.notifications()]
    assert ops == ["enable", "disable", "delete"]
    assert lpa.eid() == pki.eid
    info = lpa.info()
    assert info["eid"] == pki.eid and info["svn"].startswith("2.")
    assert info["ciKeysForVerification"] == [pki.ci.ski.hex().upper()]


def test_5g_profile_downloads_and_conceals_its_supi(smdp, card, pki) -> None:
    """DF.5GS and DF.SAIP travel in the package (PE-DF-5GS, PE-DF-SAIP); the installed USIM
    answers GET IDENTITY and the SIDF recovers the IMSI."""
    from host.usim import UsimSession, supi_from_suci

    es10, lpa = lpa_for(card, pki)
    r = lpa.download(f"LPA:1${smdp.address}$5G-1")
    assert r.installed
    lpa.enable(r.iccid)
    es10.close()
    session = UsimSession(card)
    session.select_usim()
    suci = session.get_suci()
    assert (suci.routing_indicator, suci.scheme, suci.key_id) == ("678", 1, 27)
    assert supi_from_suci(suci, HN_PRIV_A) == "imsi-274012001002086"
    # The ISIM came along (PE-ISIM, PE-OPT-ISIM): IMS AKA on a logical channel of its own.
    isim = UsimSession(card, channel=1)
    assert card.transmit(bytes.fromhex("0070000001"))[-2:] == b"\x90\x00"
    isim.select_aid(DEFAULT_ISIM_AID)
    alg = Milenage(K, OPC)
    v = generate_auth_vector(alg, bytes(16), (0x40).to_bytes(6, "big"), b"\x80\x00")
    result = isim.authenticate(bytes(16), v.autn)
    assert (result.res, result.ck, result.ik, result.kc) == (v.xres, v.ck, v.ik, None)


# TS 33.501 Annex C.4.3 Profile A home network key pair.
HN_PRIV_A = bytes.fromhex("c53c22208b61860b06c62e5406a7b330c2b577aa5558981510d128247d38bd1d")
HN_PUB_A = bytes.fromhex("5a8d38864820197c3394b92613b20b91633cbd897119273bf8e4a6f4eec0a650")

# TUAK test set 2 (K of 256 bits, TOPc), tests/unit/data/tuak_vectors.json.
TUAK_K = bytes.fromhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0")
TUAK_TOPC = bytes.fromhex("305425427e18c503c8a4b294ea72c95d0c36c6c6b29d0c65de5974d5977f8524")


@pytest.mark.parametrize(("matching_id", "iterations"), [("TUAK-1", 1), ("TUAK-2", 2)])
def test_tuak_profile_downloads_and_authenticates(
    smdp, card, pki, matching_id: str, iterations: int
) -> None:
    from card.crypto.milenage import generate_auth_vector
    from card.crypto.tuak import Tuak
    from host.usim import UsimSession, check_auth

    es10, lpa = lpa_for(card, pki)
    r = lpa.download(f"LPA:1${smdp.address}${matching_id}")
    assert r.installed
    lpa.enable(r.iccid)
    es10.close()
    # The iteration count travels in the package (numberOfKeccak): with another count
    # the card's RES would not match.
    alg = Tuak(TUAK_K, TUAK_TOPC, iterations=iterations)
    rand = bytes(range(16))
    v = generate_auth_vector(alg, rand, bytes.fromhex("000000000021"), b"\x80\x00")
    session = UsimSession(card)
    session.select_usim()
    result = session.authenticate(rand, v.autn)
    assert check_auth(result, alg, rand).ok
    assert result.res == v.xres


def test_isim_with_its_own_keys_downloads(smdp, card, pki) -> None:
    """The ISIM's own akaParameter (after PE-ISIM) travels in the package: a TUAK ISIM
    beside a Milenage USIM, each with its SQN state."""
    from card.crypto.tuak import Tuak

    es10, lpa = lpa_for(card, pki)
    r = lpa.download(f"LPA:1${smdp.address}$ISIM-OWN")
    assert r.installed
    lpa.enable(r.iccid)
    es10.close()
    rand, sqn = bytes(range(16)), bytes.fromhex("000000000021")
    usim = UsimSession(card)
    usim.select_usim()
    v = generate_auth_vector(Milenage(K, OPC), rand, sqn, b"\x80\x00")
    assert usim.authenticate(rand, v.autn).res == v.xres
    isim = UsimSession(card, channel=1)
    assert card.transmit(bytes.fromhex("0070000001"))[-2:] == b"\x90\x00"
    isim.select_aid(DEFAULT_ISIM_AID)
    alg = Tuak(TUAK_K, TUAK_TOPC)
    w = generate_auth_vector(alg, rand, sqn, b"\x80\x00")  # the same SQN: its own state
    result = isim.authenticate(rand, w.autn)
    assert (result.res, result.ck, result.ik, result.kc) == (w.xres, w.ck, w.ik, None)


def test_es10_on_logical_channel_with_cla_81(smdp, card, pki) -> None:
    rec = Recorder(card)
    with Es10Client(rec) as es10:
        assert es10.channel == 1
        Lpa(es10, ca_pem=pki.ci.pem).download(f"LPA:1${smdp.address}$DEMO-1")
    assert rec.sent[0] == bytes.fromhex("0070000001")
    assert rec.sent[1][:4] == bytes.fromhex("01A40400")
    store_data = [a for a in rec.sent if a[1] == 0xE2]
    assert store_data and all(a[0] == 0x81 for a in store_data)
    # Long requests go in blocks: '11' with more to come, '91' last, block numbers from 0.
    assert any(a[2] == 0x11 for a in store_data)
    assert rec.sent[-1] == bytes.fromhex("00708001")


# -- Refusals: the SGP.22 code, and nothing installed -----------------------------------------


def test_smdp_under_another_ci(card) -> None:
    """The eUICC trusts no CI the SM-DP+ holds certificates under: 8.8.4 / 3.7."""
    stranger = create_pki(seed=b"stranger CI")
    s = SmdpPlus(stranger, address="localhost")
    s.add_order(demo_order())
    with s.serve() as server:
        s.address = f"localhost:{server.port}"
        es10, lpa = lpa_for(card, stranger)
        with pytest.raises(Es9Error) as e:
            lpa.download(f"LPA:1${s.address}$DEMO-1")
        assert e.value.code == SC_SMDP_CERT_UNAVAILABLE
        assert lpa.profiles() == []
        # TLS: an LPA trusting only our default CI refuses that server outright.
        es10, lpa = lpa_for(card, default_pki())
        with pytest.raises(Es9TransportError, match="certificate"):
            lpa.download(f"LPA:1${s.address}$DEMO-1")


def test_unknown_matching_id_and_eid_bound_order(smdp, card, pki) -> None:
    es10, lpa = lpa_for(card, pki)
    with pytest.raises(Es9Error) as e:
        lpa.download(f"LPA:1${smdp.address}$NO-SUCH")
    assert e.value.code == SC_MATCHING_ID_REFUSED
    smdp.add_order(
        ProfileOrder(
            "OTHER-EID",
            "8988211000000000040",
            "001010000000004",
            K,
            OPC,
            eid=make_eid("89049032", 42),
        )
    )
    with pytest.raises(Es9Error) as e:
        lpa.download(f"LPA:1${smdp.address}$OTHER-EID")
    assert e.value.code == SC_EID_REFUSED
    assert lpa.profiles() == []
    assert smdp.order_state("OTHER-EID") == OrderState.RELEASED


def test_eid_outside_the_eum_range(smdp, pki) -> None:
    """An eUICC certificate with an EID its EUM may not issue: 8.1.3 / 6.1, nothing installed."""
    from dataclasses import replace

    outside_eid = make_eid("89049099", 5)
    bad = replace(pki, euiccs={outside_eid: pki.issue_euicc(outside_eid, seed=5)})
    from card.runtime import CardRuntime

    rt = CardRuntime()
    install_euicc(rt, pki=bad)
    reader = InProcessReader(rt)
    es10, lpa = lpa_for(reader, pki)
    with pytest.raises(Es9Error) as e:
        lpa.download(f"LPA:1${smdp.address}$DEMO-1")
    assert e.value.code == ("8.1.3", "6.1")
    assert lpa.profiles() == []
    assert smdp.order_state("DEMO-1") == OrderState.RELEASED


def test_iccid_already_installed(smdp, card, pki) -> None:
    """The same ICCID from a second SM-DP+: the eUICC refuses it and reports why."""
    es10, lpa = lpa_for(card, pki)
    assert lpa.download(f"LPA:1${smdp.address}$DEMO-1").installed
    other = SmdpPlus(pki, address="localhost")
    other.add_order(demo_order("AGAIN"))
    with other.serve() as server:
        other.address = f"localhost:{server.port}"
        result = lpa.download(f"LPA:1${other.address}$AGAIN")
    assert not result.installed
    assert result.error == (
        "loadProfileElements",
        "installFailedDueToIccidAlreadyExistsOnEuicc",
    ) or (
        result.error is not None
        and result.error[1] == "installFailedDueToIccidAlreadyExistsOnEuicc"
    )
    assert result.notified
    # The failed order is downloadable again; the eUICC still holds one profile.
    assert other.order_state("AGAIN") == OrderState.RELEASED
    assert len(lpa.profiles()) == 1


def test_declined_download_cancels_both_sides(smdp, card, pki) -> None:
    from host.lpa import LpaError

    es10 = Es10Client(card).open()
    steps: list[Step] = []
    lpa = Lpa(es10, ca_pem=pki.ci.pem, confirm=lambda metadata: False, on_step=steps.append)
    with pytest.raises(LpaError, match="declined"):
        lpa.download(f"LPA:1${smdp.address}$DEMO-1")
    assert [f"{s.interface}.{s.function}" for s in steps][-2:] == [
        "ES10b.CancelSession",
        "ES9+.CancelSession",
    ]
    assert lpa.profiles() == []
    assert smdp.order_state("DEMO-1") == OrderState.RELEASED
    # ... and the profile can be downloaded afterwards.
    lpa.confirm = None
    assert lpa.download(f"LPA:1${smdp.address}$DEMO-1").installed


# -- The CLI ---------------------------------------------------------------------------------


def _euicc_in_catalogue() -> bool:
    from card.framework.catalogue import Catalogue

    cat = Catalogue()
    return "applets.isdr.ecasd:Ecasd" in cat and "applets.isdr.applet:IsdR" in cat


@pytest.mark.skipif(
    not _euicc_in_catalogue(),
    reason="the ISD-R/ECASD are not cardemu.applets entry points here "
    "(pyproject.toml, pip install -e)",
)
def test_cli_lpa_on_a_card_image(smdp, tmp_path, capsys) -> None:
    image = str(tmp_path / "e.card")
    new_card("euicc", image).close()
    assert main(["lpa", "eid", "--card", image, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"eid": default_pki().eid}
    code = f"LPA:1${smdp.address}$DEMO-1"
    assert main(["lpa", "download", "--card", image, code, "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["installed"] and doc["iccid"] == demo_order().full_iccid
    assert (
        "ES9+.GetBoundProfilePackage" in captured.err
        and "ES10b.LoadBoundProfilePackage" in captured.err
    )
    # The card image keeps the profile.
    assert main(["lpa", "list", "--card", image, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["iccid"] == doc["iccid"] and row["state"] == "disabled"
    assert main(["lpa", "enable", "--card", image, doc["iccid"]]) == 0
    assert capsys.readouterr().out.strip() == f"enabled {doc['iccid']}"
    assert main(["lpa", "notifications", "--card", image, "--json"]) == 0
    assert [n["operation"] for n in json.loads(capsys.readouterr().out)] == ["enable"]
    assert main(["lpa", "notifications", "--card", image, "--send", "--json"]) == 0
    assert [n["result"] for n in json.loads(capsys.readouterr().out)] == ["sent"]
    # Refusals: the SM-DP+'s status code in a one-line error, exit 1.
    assert main(["lpa", "download", "--card", image, code]) == 1
    captured = capsys.readouterr()
    assert "8.2.6/3.8" in captured.err
    assert "ES10b.GetEUICCChallenge" in captured.err and captured.out == ""  # progress: stderr
    assert main(["lpa", "enable", "--card", image, "8988211000000000099"]) == 1
    assert main(["lpa", "download", "--card", image, "not an activation code"]) == 2
    assert main(["lpa", "info", "--card", image, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["eid"] == default_pki().eid


def test_run_demo_on_a_given_reader(card) -> None:
    result = run_demo(reader=card)
    assert result.download.installed and result.auth_ok and result.auth.res is not None


def test_bpp_cut_off_then_a_new_download_works(smdp, card, pki) -> None:
    """The LPA dies half-way through LoadBoundProfilePackage: no profile; a retry installs it."""
    es10, lpa = lpa_for(card, pki)
    whole = es10.load_bound_profile_package

    def half(bpp: bytes, progress=None) -> bytes:  # noqa: ANN001
        segments = bpp_segments(bpp)
        for segment in segments[: len(segments) // 2]:
            es10.store_data(segment, "LoadBoundProfilePackage")
        raise ConnectionError("the LPA lost the eUICC")

    es10.load_bound_profile_package = half  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        lpa.download(f"LPA:1${smdp.address}$DEMO-1")
    assert smdp.order_state("DEMO-1") == OrderState.DOWNLOADED
    es10.load_bound_profile_package = whole  # type: ignore[method-assign]
    assert lpa.profiles() == []
    result = lpa.download(f"LPA:1${smdp.address}$DEMO-1")
    assert result.installed and [p["iccid"] for p in lpa.profiles()] == [result.iccid]
    assert smdp.order_state("DEMO-1") == OrderState.INSTALLED
