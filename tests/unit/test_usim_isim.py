"""The ISIM (3GPP TS 31.103): ADF.ISIM in EF.DIR with IMPI, DOMAIN, IMPU, AD, ARR, IST,
P-CSCF; AUTHENTICATE in the IMS AKA context; open beside the USIM on another logical
channel; the ISIM's own AKA keys (Profile.app_auth, SAIP akaParameter in its context);
the EF codecs with their vectors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.crypto.milenage import Milenage, generate_auth_vector
from card.uicc import ts_31_103 as i
from card.uicc.builder import (
    DEFAULT_USIM_AID,
    TEST_IMSI,
    TEST_K,
    TEST_OPC,
    IsimSetup,
    sample_profile,
)
from card.uicc.profile import AuthSpec
from card.uicc.ts_102_221 import decode_dir_record
from tests.unit.usim_cards import authenticate, select_usim, send, usim_card

ISIM = IsimSetup.for_imsi(TEST_IMSI)

# -- codecs --------------------------------------------------------------------------------------

URI_VECTORS = [("a@b", 8, "800361406 2FFFFFF".replace(" ", ""))]
PCSCF_VECTORS = [
    (i.PcscfAddress("pcscf.example"), 17, "800E00" + b"pcscf.example".hex() + "FF"),
    (i.PcscfAddress("10.0.0.1", i.ADDR_IPV4), 8, "8005010A000001FF"),
    (i.PcscfAddress("2001:db8::1", i.ADDR_IPV6), 19, "801102" + "20010DB8" + "00" * 11 + "01"),
]


@pytest.mark.parametrize("text, size, enc", URI_VECTORS)
def test_uri_vectors(text: str, size: int, enc: str) -> None:
    assert i.encode_uri(text, size).hex().upper() == enc.upper()
    assert i.decode_uri(bytes.fromhex(enc)) == text


@pytest.mark.parametrize("entry, size, enc", PCSCF_VECTORS)
def test_pcscf_vectors(entry: i.PcscfAddress, size: int, enc: str) -> None:
    assert i.encode_pcscf(entry, size).hex().upper() == enc.upper()
    assert i.decode_pcscf(bytes.fromhex(enc)) == entry


def test_codec_refusals() -> None:
    for bad in ("81016100", "8005616263", "8001FF"):
        with pytest.raises(ValueError):
            i.decode_uri(bytes.fromhex(bad))
    for bad in ("8000", "800201AA", "80020300", "8003000000"[:8] + "FF"):
        with pytest.raises(ValueError):
            i.decode_pcscf(bytes.fromhex(bad))
    with pytest.raises(ValueError):
        i.encode_uri("x" * 20, 8)
    with pytest.raises(ValueError):
        i.encode_uri("", 8)
    with pytest.raises(ValueError):
        i.PcscfAddress("10.0.0.256", i.ADDR_IPV4)
    with pytest.raises(ValueError):
        i.PcscfAddress("x", 7)
    assert i.decode_uri(b"\xff" * 4) is None and i.decode_pcscf(b"\xff" * 4) is None
    assert i.decode_isim_ad(i.encode_isim_ad(1, 0x0203)) == (1, 0x0203)
    with pytest.raises(ValueError):
        i.decode_isim_ad(b"\x00\x00")


@given(st.text(min_size=1, max_size=30).filter(lambda t: len(t.encode()) <= 40))
def test_uri_roundtrip(text: str) -> None:
    assert i.decode_uri(i.encode_uri(text, 64)) == text


@given(st.ip_addresses())
def test_pcscf_ip_roundtrip(addr: object) -> None:
    kind = i.ADDR_IPV4 if addr.version == 4 else i.ADDR_IPV6  # type: ignore[attr-defined]
    entry = i.PcscfAddress(str(addr), kind)
    assert i.decode_pcscf(i.encode_pcscf(entry, 32)) == entry


# -- on the card -------------------------------------------------------------------------------


def card(**kw: object):
    return usim_card(sample_profile(isim=ISIM, **kw))


def read_ef(rt, fid: int, channel: int = 0) -> bytes:
    data, sw = send(rt, bytes((channel, 0xA4, 0x00, 0x04, 2)) + fid.to_bytes(2, "big"))
    assert sw == 0x9000, f"{fid:04X}: {sw:04X}"
    data, sw = send(rt, bytes((channel, 0xB0, 0, 0, 0)))
    assert sw == 0x9000
    return data


def read_record(rt, fid: int, n: int, channel: int = 0) -> bytes:
    send(rt, bytes((channel, 0xA4, 0x00, 0x04, 2)) + fid.to_bytes(2, "big"))
    data, sw = send(rt, bytes((channel, 0xB2, n, 0x04, 0)))
    assert sw == 0x9000
    return data


def test_ef_dir_lists_usim_and_isim() -> None:
    rt = card()
    send(rt, "00A40004023F00")
    aids = [decode_dir_record(read_record(rt, 0x2F00, n)) for n in (1, 2)]
    assert [a.aid for a in aids if a] == [DEFAULT_USIM_AID, i.DEFAULT_ISIM_AID]


def test_isim_files() -> None:
    rt = card()
    select_usim(rt, i.DEFAULT_ISIM_AID)
    domain = "ims.mnc001.mcc001.3gppnetwork.org"
    assert i.decode_uri(read_ef(rt, i.EF_IMPI)) == f"{TEST_IMSI}@{domain}"
    assert i.decode_uri(read_ef(rt, i.EF_DOMAIN)) == domain
    assert i.decode_uri(read_record(rt, i.EF_IMPU, 1)) == f"sip:{TEST_IMSI}@{domain}"
    assert i.decode_pcscf(read_record(rt, i.EF_PCSCF, 1)) == i.PcscfAddress(f"pcscf.{domain}")
    assert read_ef(rt, i.EF_IST)[0] & 0x01  # service n°1, P-CSCF address
    assert i.decode_isim_ad(read_ef(rt, i.EF_AD)) == (0, 0)
    assert read_record(rt, i.EF_ARR, 1)


def test_ims_aka_beside_the_usim_on_another_channel() -> None:
    rt = card()
    select_usim(rt)  # channel 0: the USIM
    data, sw = send(rt, "0070000001")  # MANAGE CHANNEL open
    assert sw == 0x9000
    ch = data[0]
    select_usim(rt, i.DEFAULT_ISIM_AID, channel=ch)
    alg = Milenage(TEST_K, TEST_OPC)
    rand = bytes(range(16))
    v = generate_auth_vector(alg, rand, (0x40).to_bytes(6, "big"), b"\x80\x00")
    data, sw = authenticate(rt, rand, v.autn, channel=ch)
    assert sw == 0x9000
    # 'DB' L RES L CK L IK, no Kc on the ISIM.
    assert data == b"\xdb" + bytes((8,)) + v.xres + b"\x10" + v.ck + b"\x10" + v.ik
    # The SQN state is the profile's: the same AUTN on the USIM is stale now.
    data, sw = authenticate(rt, rand, v.autn)
    assert sw == 0x9000 and data[0] == 0xDC
    # The USIM still answers on channel 0 with its Kc.
    v2 = generate_auth_vector(alg, rand, (0x60).to_bytes(6, "big"), b"\x80\x00")
    data, sw = authenticate(rt, rand, v2.autn)
    assert sw == 0x9000 and len(data) == 1 + 9 + 17 + 17 + 9


def test_isim_refusals() -> None:
    rt = card(pin1_enabled=True)
    select_usim(rt, i.DEFAULT_ISIM_AID)
    assert authenticate(rt, bytes(16))[1] == 0x6A86  # no GSM context on the ISIM
    alg = Milenage(TEST_K, TEST_OPC)
    v = generate_auth_vector(alg, bytes(16), (0x40).to_bytes(6, "big"), b"\x80\x00")
    assert authenticate(rt, bytes(16), v.autn)[1] == 0x6982  # PIN1 first
    bad = v.autn[:8] + bytes(8)
    send(rt, "0020000108" + b"1234".ljust(8, b"\xff").hex())
    assert authenticate(rt, bytes(16), bad)[1] == 0x9862
    # GET IDENTITY is the USIM's.
    assert send(rt, "8078000100")[1] == 0x6985


def test_euicc_empty_answers_the_euicc_atr() -> None:
    from host.presets import new_card

    atrs = {}
    for name in ("euicc", "euicc-empty", "usim"):
        rt = new_card(name)
        atrs[name] = rt.power_on()
    assert atrs["euicc-empty"] == atrs["euicc"] == atrs["usim"]


# -- the ISIM's own keys ---------------------------------------------------------------------------

# TS 35.208 §4.3 test sets 1 (the USIM's) and 2 (the ISIM's): K, OPc, RAND, SQN, AMF,
# f1 (MAC-A), f2 (RES), f3 (CK), f4 (IK), f5 (AK).
SET_1 = tuple(
    bytes.fromhex(x)
    for x in (
        "465b5ce8b199b49faa5f0a2ee238a6bc",
        "cd63cb71954a9f4e48a5994e37a02baf",
        "23553cbe9637a89d218ae64dae47bf35",
        "ff9bb4d0b607",
        "b9b9",
        "4a9ffac354dfafb3",
        "a54211d5e3ba50bf",
        "b40ba9a3c58b2a05bbf0d987b21bf8cb",
        "f769bcd751044604127672711c6d3441",
        "aa689c648370",
    )
)
SET_2 = tuple(
    bytes.fromhex(x)
    for x in (
        "0396eb317b6d1c36f19c1c84cd6ffd16",
        "53c15671c60a4b731c55b4a441c0bde2",
        "c00d603103dcee52c4478119494202e8",
        "fd8eef40df7d",
        "af17",
        "5df5b31807e258b0",
        "d3a628ed988620f0",
        "58c433ff7a7082acd424220f2b67c556",
        "21a8c1f929702adb3e738488b9f5c5da",
        "c47783995f72",
    )
)


def _autn(s: tuple[bytes, ...]) -> bytes:
    """AUTN = SQN xor AK || AMF || MAC-A (TS 33.102 §6.3.2) from a TS 35.208 set."""
    sqn, amf, mac, ak = s[3], s[4], s[5], s[9]
    return bytes(x ^ y for x, y in zip(sqn, ak, strict=True)) + amf + mac


def _ims_answer(s: tuple[bytes, ...]) -> bytes:
    return b"\xdb\x08" + s[6] + b"\x10" + s[7] + b"\x10" + s[8]


def _own_keys_card():
    isim = replace(ISIM, auth=AuthSpec(k=SET_2[0], opc=SET_2[1], delta=None))
    return usim_card(sample_profile(isim=isim, k=SET_1[0], opc=SET_1[1], delta=None))


def test_isim_with_its_own_keys_reproduces_another_ts_35_208_set() -> None:
    rt = _own_keys_card()
    select_usim(rt)
    ch = send(rt, "0070000001")[0][0]
    select_usim(rt, i.DEFAULT_ISIM_AID, channel=ch)
    # The ISIM answers test set 2 with its K/OPc; the USIM's set 1 fails its MAC.
    assert authenticate(rt, SET_1[2], _autn(SET_1), channel=ch)[1] == 0x9862
    data, sw = authenticate(rt, SET_2[2], _autn(SET_2), channel=ch)
    assert sw == 0x9000 and data == _ims_answer(SET_2)
    # The USIM answers set 1 (with Kc: 3G context, service n°27), and not set 2.
    assert authenticate(rt, SET_2[2], _autn(SET_2))[1] == 0x9862
    data, sw = authenticate(rt, SET_1[2], _autn(SET_1))
    assert sw == 0x9000 and data[:-9] == _ims_answer(SET_1) and data[-9] == 8
    # Separate SQN states: each AUTN was fresh once, for its own application only.
    assert authenticate(rt, SET_2[2], _autn(SET_2), channel=ch)[0][0] == 0xDC
    assert authenticate(rt, SET_1[2], _autn(SET_1))[0][0] == 0xDC


def test_isim_without_keys_of_its_own_runs_the_usims() -> None:
    rt = usim_card(sample_profile(isim=ISIM, k=SET_1[0], opc=SET_1[1], delta=None))
    select_usim(rt, i.DEFAULT_ISIM_AID)
    data, sw = authenticate(rt, SET_1[2], _autn(SET_1))
    assert sw == 0x9000 and data == _ims_answer(SET_1)
    select_usim(rt)
    assert authenticate(rt, SET_1[2], _autn(SET_1))[0][0] == 0xDC  # one SQN state


def test_own_keys_survive_export_and_import() -> None:
    from card.uicc.profile import Profile, ProfileFormatError

    own = AuthSpec(k=SET_2[0], opc=SET_2[1], delta=None)
    p = sample_profile(isim=replace(ISIM, auth=own))
    assert p.app_auth == ((i.DEFAULT_ISIM_AID, own),)
    assert p.auth_for(i.DEFAULT_ISIM_AID) == own and p.auth_for(DEFAULT_USIM_AID) == p.auth
    assert Profile.from_bytes(p.to_bytes()) == p
    assert p.without_secrets().app_auth[0][1].k == bytes(16)
    assert p.describe()["own_keys"] == [
        {"aid": i.DEFAULT_ISIM_AID.hex().upper(), "algorithm": "milenage"}
    ]
    assert own.k.hex() not in repr(p.describe()) and own.k.hex() not in repr(p)
    # The card gives back the ISIM's keys and SQN state with the profile.
    rt = usim_card(p)
    exported = rt_profile(rt)
    assert exported.app_auth[0][0] == i.DEFAULT_ISIM_AID
    assert exported.app_auth[0][1].k == own.k
    # Keys for an application the profile lacks, or for the USIM, are refused.
    with pytest.raises(ProfileFormatError):
        replace(p, app_auth=((bytes.fromhex("A000000087100499"), own),))
    with pytest.raises(ProfileFormatError):
        replace(p, app_auth=((DEFAULT_USIM_AID, own),))
    with pytest.raises(ProfileFormatError):
        replace(p, app_auth=((i.DEFAULT_ISIM_AID, own), (i.DEFAULT_ISIM_AID, own)))


def rt_profile(rt):
    """The enabled profile as the card keeps it now (its slot read back)."""
    from applets.usim import UICC_AID, UiccApplet
    from card.uicc.profile import Profile

    applet = rt.applet(UICC_AID)
    assert isinstance(applet, UiccApplet)
    iccid = applet.enabled_profile()
    assert iccid is not None
    return Profile.from_bytes(applet.export_profile(iccid))


def test_saip_isim_own_aka_parameters() -> None:
    from card.uicc.saip import SaipError, profile_from_package
    from host.servers.smdpp.saip import ProfileOrder, build_upp

    own = AuthSpec(k=SET_2[0], opc=SET_2[1])
    base = dict(
        matching_id="M", iccid="898821000000000009", imsi=TEST_IMSI, k=SET_1[0], opc=SET_1[1]
    )
    # One akaParameter (real profiles): the ISIM shares the USIM's keys.
    shared = profile_from_package(build_upp(ProfileOrder(**base, isim=ISIM))).profile
    assert shared.app_auth == () and shared.auth_for(i.DEFAULT_ISIM_AID) == shared.auth
    # A second one after PE-ISIM: the ISIM's own.
    upp = build_upp(ProfileOrder(**base, isim=replace(ISIM, auth=own)))
    p = profile_from_package(upp).profile
    assert p.auth.k == SET_1[0]
    assert [(aid, a.k, a.opc) for aid, a in p.app_auth] == [
        (i.DEFAULT_ISIM_AID, SET_2[0], SET_2[1])
    ]
    # A second, different set that follows no ISIM's ADF stays refused.
    from card.sgp22 import asn1

    pes = list(asn1.decode_pe_sequence(build_upp(ProfileOrder(**base))))
    aka = next(v for n, v in pes if n == "akaParameter")
    algo = aka["algoConfiguration"][1]
    two = [
        ("akaParameter", {"aka-header": {"identification": 90 + n}, "algoConfiguration": conf})
        for n, conf in enumerate(
            (("algoParameter", algo), ("algoParameter", dict(algo, key=SET_2[0])))
        )
    ]
    pes = [(n, v) for n, v in pes if n not in ("akaParameter", "end")] + two + [pes[-1]]
    with pytest.raises(SaipError, match="second, different"):
        profile_from_package(b"".join(asn1.encode_pe(pe) for pe in pes))


def test_saip_aka_mapping_parameter() -> None:
    from card.sgp22 import asn1
    from card.uicc.saip import PeStatus, SaipError, profile_from_package
    from host.servers.smdpp.saip import ProfileOrder, build_upp

    base = dict(matching_id="M", iccid="898821000000000009", imsi=TEST_IMSI, k=SET_1[0])

    def with_mapping(order: ProfileOrder, source: bytes) -> bytes:
        # asn1tools gives sqnInit's DEFAULT back as a string it cannot encode: drop it.
        pes = [
            (n, {k: x for k, x in v.items() if k != "sqnInit"} if n == "akaParameter" else v)
            for n, v in asn1.decode_pe_sequence(build_upp(order))
        ]
        mapping = ("mappingParameter", {"mappingOptions": b"\x01", "mappingSource": source})
        pe = ("akaParameter", {"aka-header": {"identification": 99}, "algoConfiguration": mapping})
        return b"".join(asn1.encode_pe(x) for x in [*pes[:-1], pe, pes[-1]])

    # An ISIM mapped onto the USIM shares its keys.
    p = profile_from_package(with_mapping(ProfileOrder(**base, isim=ISIM), DEFAULT_USIM_AID))
    assert p.profile.app_auth == ()
    # Any other mapping is refused: onto no USIM, or with no ISIM to map.
    for order, source in (
        (ProfileOrder(**base, isim=ISIM), i.DEFAULT_ISIM_AID),
        (ProfileOrder(**base), DEFAULT_USIM_AID),
    ):
        with pytest.raises(SaipError) as e:
            profile_from_package(with_mapping(order, source))
        assert e.value.status == PeStatus.FEATURE_NOT_SUPPORTED


_OWN = st.one_of(
    st.builds(
        lambda k, opc, sqn: AuthSpec(k=k, opc=opc, sqn_ms=sqn),
        st.binary(min_size=16, max_size=16),
        st.binary(min_size=16, max_size=16),
        st.integers(0, (1 << 48) - 1),
    ),
    st.builds(
        lambda k, topc, n: AuthSpec(k=k, opc=topc, algorithm="tuak", keccak_iterations=n),
        st.sampled_from((16, 32)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.binary(min_size=32, max_size=32),
        st.integers(1, 255),
    ),
)


@settings(max_examples=25, deadline=None)
@given(_OWN)
def test_own_keys_roundtrip_property(own: object) -> None:
    from card.uicc.profile import Profile

    p = replace(_SAMPLE, app_auth=((i.DEFAULT_ISIM_AID, own),))
    assert Profile.from_bytes(p.to_bytes()) == p


_SAMPLE = sample_profile(isim=ISIM)


def test_cli_auth_isim(tmp_path) -> None:  # noqa: ANN001
    """`cardemu usim auth --isim` runs IMS AKA on the ISIM, with its own keys when it has
    some; refused on a card without an ISIM and with --gsm."""
    import json

    from click.testing import CliRunner

    from host.cli import cli

    image = str(tmp_path / "isim.img")
    _own_keys_card_at(image)
    args = ["usim", "auth", "-q", "--json", "--card", image, "--isim", "--rand", SET_2[2].hex()]
    r = CliRunner().invoke(cli, [*args, "--k", SET_2[0].hex(), "--opc", SET_2[1].hex()])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["res"] == SET_2[6].hex().upper() and doc["check"]["ok"] is True
    # The USIM's keys do not pass the ISIM's MAC check (9862: exit 3).
    r = CliRunner().invoke(cli, [*args, "--k", SET_1[0].hex(), "--opc", SET_1[1].hex()])
    assert r.exit_code == 3
    assert CliRunner().invoke(cli, ["usim", "auth", "-q", "--isim"]).exit_code == 2  # no ISIM
    r = CliRunner().invoke(cli, ["usim", "auth", "-q", "--preset", "usim-5g", "--isim", "--gsm"])
    assert r.exit_code == 2


def _own_keys_card_at(image: str) -> None:
    isim = replace(ISIM, auth=AuthSpec(k=SET_2[0], opc=SET_2[1], delta=None))
    rt = usim_card(sample_profile(isim=isim, k=SET_1[0], opc=SET_1[1], delta=None), image=image)
    rt.close()
