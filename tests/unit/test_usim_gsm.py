"""The GSM class (CLA A0) of the UICC: DF.GSM (TS 51.011 §10.3, §10.7) and the files it
shares with ADF.USIM, VERIFY / CHANGE / DISABLE / ENABLE / UNBLOCK CHV (§9.2.9-13) on the
UICC's PIN1/PIN2, RUN GSM ALGORITHM (§9.2.16) through c2/c3, and the apdu_specs vectors
of apdu_specs.ts_102_221 replayed on the "usim" preset."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu_specs import ts_102_221 as specs
from card.crypto.milenage import Milenage, XorTestAlgorithm, c2, c3
from card.runtime import CardRuntime, CardTorn
from card.uicc import ts_31_102 as u
from card.uicc import ts_51_011 as g
from card.uicc.builder import DEFAULT_USIM_AID, TEST_IMSI, sample_profile
from card.uicc.profile import Profile
from host.presets import new_card
from tests.unit.test_usim_auth import (
    OSMO_CK,
    OSMO_IK,
    OSMO_K,
    OSMO_KC,
    OSMO_OPC,
    OSMO_RAND,
    OSMO_RES,
    OSMO_SRES,
)
from tests.unit.usim_cards import authenticate, select_usim, send, uicc, usim_card

PIN1, PUK1, PIN2, PUK2, ADM1 = "1234", "11111111", "5678", "22222222", "12345678"
GSM_EFS = (0x6F07, 0x6F20, 0x6F30, 0x6F31, 0x6F38, 0x6F46, 0x6F74, 0x6F78, 0x6F7B, 0x6F7E)
GSM_EFS += (0x6FAD, 0x6FAE)


def chv(value: str) -> str:
    return value.encode().ljust(8, b"\xff").hex()


def sw(rt: CardRuntime, apdu: str) -> int:
    return send(rt, apdu)[1]


def select_gsm(rt: CardRuntime, *path: int) -> bytes:
    """SELECT (GSM) 7F20 then each FID; the last GSM response."""
    data = b""
    for fid in (g.DF_GSM, *path):
        data, status = send(rt, f"A0A4000002{fid:04X}")
        assert status == 0x9000, f"{fid:04X}: {status:04X}"
    return data


def read_gsm(rt: CardRuntime, fid: int) -> bytes:
    info = select_gsm(rt, fid)
    size = int.from_bytes(info[2:4], "big")
    data, status = send(rt, f"A0B00000{size:02X}")
    assert status == 0x9000, f"{fid:04X}: {status:04X}"
    return data


def read_usim(rt: CardRuntime, fid: int) -> bytes:
    select_usim(rt)
    data, status = send(rt, f"00A4000C02{fid:04X}")
    assert status == 0x9000
    data, status = send(rt, "00B0000000")
    assert status == 0x9000
    return data


def clean(rt: CardRuntime) -> None:
    assert rt.exceptions == 0
    assert rt.nvm_violations == 0


# -- the apdu_specs vectors, on the preset they name -------------------------------------------


PRESET_VECTORS = [
    (spec, v) for spec in specs.SPECS for v in spec.vectors if "usim preset" in v.source
]


@pytest.mark.parametrize(
    ("spec", "vector"),
    PRESET_VECTORS,
    ids=[f"{s.name}({s.variant}):{v.command}" for s, v in PRESET_VECTORS],
)
def test_spec_vectors_are_what_the_preset_answers(spec, vector) -> None:  # noqa: ANN001
    rt = new_card("usim")
    rt.power_on()
    for before in re.findall(r"after ([0-9A-F]+)", vector.source):
        assert rt.process(bytes.fromhex(before))[-2:] in (b"\x90\x00", b"\x9f\x16", b"\x9f\x0f")
    assert rt.process(vector.command_bytes).hex().upper() == vector.response
    clean(rt)


def test_gsm_specs_cover_the_new_commands() -> None:
    gsm = {s.name for s in specs.SPECS if s.cla == specs.GSM_CLA}
    assert {"VERIFY CHV", "CHANGE CHV", "DISABLE CHV", "ENABLE CHV", "UNBLOCK CHV"} <= gsm
    assert {"RUN GSM ALGORITHM", "GET RESPONSE", "STATUS", "SELECT"} <= gsm


# -- DF.GSM ----------------------------------------------------------------------------------


def test_df_gsm_is_selectable_and_answers_the_gsm_df_response() -> None:
    rt = usim_card()
    resp = rt.process(bytes.fromhex("A0A40000027F20"))
    assert resp == b"\x9f\x16"  # TS 51.011 §9.2.1: 22 bytes for a DF
    data, status = send(rt, "A0C0000016")
    assert status == 0x9000
    assert data[4:7] == b"\x7f\x20\x02"  # FID 7F20, type DF
    assert data[14:16] == bytes((0, len(GSM_EFS)))  # no DF, twelve EFs
    assert data[13] & 0x80  # CHV1 disabled on the test profile
    assert data[18:22] == bytes((0x83, 0x8A, 0x83, 0x8A))  # CHV1/PUK1/CHV2/PUK2 tries
    # STATUS (GSM) answers the same for the current DF, also with an EF selected under it.
    select_gsm(rt, 0x6F07)
    assert send(rt, "A0F2000016") == (data, 0x9000)
    # The UICC commands see it too.
    assert sw(rt, "00A4000C023F00") == 0x9000
    assert sw(rt, "00A4000C027F20") == 0x9000
    clean(rt)


@pytest.mark.parametrize("fid", GSM_EFS, ids=[f"{f:04X}" for f in GSM_EFS])
def test_every_df_gsm_ef_has_the_ts_51_011_shape(fid: int) -> None:
    rt = usim_card()
    info = select_gsm(rt, fid)
    size = int.from_bytes(info[2:4], "big")
    assert info[4:6] == fid.to_bytes(2, "big") and info[6] == g.TYPE_EF
    assert info[13] == g.STRUCT_TRANSPARENT
    expected_size = {
        0x6F07: 9, 0x6F20: 9, 0x6F30: 24, 0x6F31: 1, 0x6F38: 5, 0x6F46: 17, 0x6F74: 16,
        0x6F78: 2, 0x6F7B: 12, 0x6F7E: 11, 0x6FAD: 4, 0x6FAE: 1,
    }  # fmt: skip
    assert size == expected_size[fid]
    # TS 51.011 §10.3: READ / UPDATE access conditions (0 ALW, 1 CHV1, A ADM).
    access = {
        0x6F07: 0x1A, 0x6F20: 0x11, 0x6F30: 0x11, 0x6F31: 0x1A, 0x6F38: 0x1A, 0x6F46: 0x0A,
        0x6F74: 0x11, 0x6F78: 0x1A, 0x6F7B: 0x11, 0x6F7E: 0x11, 0x6FAD: 0x0A, 0x6FAE: 0x0A,
    }  # fmt: skip
    assert info[8] == access[fid]
    if fid in g.SHARED_WITH_USIM:
        assert read_gsm(rt, fid) == read_usim(rt, fid)
    clean(rt)


def test_df_gsm_contents() -> None:
    rt = usim_card()
    assert u.decode_imsi(read_gsm(rt, g.EF_IMSI)) == TEST_IMSI
    # CHV1 disable, ADN, SMS, PLMN selector, MSISDN, EXT1, SMSP, SPN (DF.TELECOM's files).
    assert g.decode_sst(read_gsm(rt, g.EF_SST)) == {1, 2, 4, 7, 9, 10, 12, 17}
    assert read_gsm(rt, g.EF_KC) == b"\xff" * 8 + b"\x07"  # no key, CKSN 7
    assert read_gsm(rt, g.EF_PLMNSEL)[:3] == u.encode_plmn(u.Plmn.from_imsi(TEST_IMSI, 2))
    assert read_gsm(rt, g.EF_PHASE) == b"\x02"
    assert u.decode_spn(read_gsm(rt, g.EF_SPN)).name == "cardemu"
    assert u.decode_ad(read_gsm(rt, g.EF_AD)).mnc_length == 2
    clean(rt)


def test_sst_codec() -> None:
    assert g.encode_sst({1}, 2) == b"\x03\x00"
    assert g.encode_sst({4, 5}, 2) == b"\xc0\x03"
    assert g.decode_sst(b"\x01\x02\x03") == {9}  # allocated-only / activated-only are off
    with pytest.raises(ValueError):
        g.encode_sst({9}, 2)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, 20)))
def test_sst_round_trip(services: set[int]) -> None:
    assert g.decode_sst(g.encode_sst(services, 5)) == services


# -- files shared with ADF.USIM -----------------------------------------------------------------


def test_a_gsm_write_reaches_the_usim_file_and_back() -> None:
    rt = usim_card()
    loci = bytes.fromhex("11223344 00F110 1234 FF 00")
    select_gsm(rt, g.EF_LOCI)
    assert sw(rt, "A0D600000B" + loci.hex()) == 0x9000  # CHV1 disabled: the condition holds
    assert read_usim(rt, g.EF_LOCI) == loci
    # ... and a USIM write, by SFI (0B, TS 31.102 §4.2.17), reaches DF.GSM.
    select_usim(rt)
    other = bytes.fromhex("55667788 00F110 4321 FF 01")
    assert sw(rt, "00D68B000B" + other.hex()) == 0x9000
    assert read_gsm(rt, g.EF_LOCI) == other
    clean(rt)


def test_imsi_changed_through_gsm_is_the_profiles_imsi() -> None:
    rt = usim_card()
    new_imsi = u.encode_imsi("001019999999999")
    select_gsm(rt, g.EF_IMSI)
    assert sw(rt, "A0D6000009" + new_imsi.hex()) == 0x9804  # update needs ADM
    assert sw(rt, "0020000A08" + chv(ADM1)) == 0x9000
    assert sw(rt, "A0D6000009" + new_imsi.hex()) == 0x9000
    assert read_usim(rt, g.EF_IMSI) == new_imsi
    assert uicc(rt).list_profiles()[0].imsi == "001019999999999"
    clean(rt)


def test_gsm_only_files_are_not_mirrored() -> None:
    rt = usim_card()
    ust = read_usim(rt, 0x6F38)
    assert sw(rt, "0020000A08" + chv(ADM1)) == 0x9000
    select_gsm(rt, g.EF_SST)
    assert sw(rt, "A0D6000005" + g.encode_sst({1, 2}, 5).hex()) == 0x9000
    assert read_usim(rt, 0x6F38) == ust  # EF.UST codes services otherwise (TS 31.102 §4.2.8)
    assert g.decode_sst(read_gsm(rt, g.EF_SST)) == {1, 2}
    clean(rt)


def test_a_shared_write_is_all_or_nothing_under_tears() -> None:
    before = u.encode_loci(u.Loci(plmn=u.encode_plmn(u.Plmn.from_imsi(TEST_IMSI, 2))))
    after = bytes.fromhex("11223344 00F110 1234 FF 00")
    n = 0
    while True:
        rt = usim_card()
        select_gsm(rt, g.EF_LOCI)
        rt.nvm.tear_after(n)
        try:
            status = sw(rt, "A0D600000B" + after.hex())
        except CardTorn:
            rt.power_on()
            gsm, usim = read_gsm(rt, g.EF_LOCI), read_usim(rt, g.EF_LOCI)
            assert gsm == usim and gsm in (before, after), n
            n += 1
            continue
        rt.nvm.tear_after(None)
        assert status == 0x9000
        assert read_gsm(rt, g.EF_LOCI) == read_usim(rt, g.EF_LOCI) == after
        break
    assert n >= 2  # both copies, then the commit


def test_profile_without_df_gsm_still_imports_and_round_trips() -> None:
    old = sample_profile(df_gsm=False)
    assert not any("7F20" in f.handle for f in old.files)
    again = Profile.from_bytes(old.to_bytes())
    assert again == old
    rt = usim_card(again)
    assert sw(rt, "A0A40000027F20") == 0x9404
    assert sw(rt, "A08800001000000000000000000000000000000000") == 0x9804
    assert sw(rt, "A020000208" + chv(PIN2)) == 0x9000  # CHVs belong to the card, not to DF.GSM
    # The USIM's own files are written as before, with no twin to keep.
    select_usim(rt)
    assert sw(rt, "00D68B000B" + "11" * 11) == 0x9000
    assert read_usim(rt, g.EF_LOCI) == b"\x11" * 11
    new = sample_profile()
    assert Profile.from_bytes(new.to_bytes()) == new
    assert {f.handle for f in new.files} - {f.handle for f in old.files} == {
        "3F00/7F20",
        *(f"3F00/7F20/{fid:04X}" for fid in GSM_EFS),
    }
    clean(rt)


# -- CHV commands (TS 51.011 §9.2.9-13) ------------------------------------------------------


def test_verify_chv_counts_down_blocks_and_shares_the_pin_state() -> None:
    rt = usim_card(pin1_enabled=True)
    select_gsm(rt)
    assert sw(rt, "A0B0000009") == 0x9400  # a DF selected: no current EF
    select_gsm(rt, g.EF_IMSI)
    assert sw(rt, "A0B0000009") == 0x9804  # CHV1 not verified
    assert sw(rt, "A020000108" + chv("0000")) == 0x9804
    assert sw(rt, "0020000100") == 0x63C2  # the UICC command sees the same counter
    assert sw(rt, "A020000108" + chv("0000")) == 0x9804
    assert sw(rt, "A020000108" + chv(PIN1)) == 0x9000  # the right CHV restores the counter
    assert sw(rt, "0020000100") == 0x9000  # and PIN1 counts as verified
    assert sw(rt, "A0B0000009") == 0x9000
    for expected in (0x9804, 0x9804, 0x9840):
        assert sw(rt, "A020000108" + chv("0000")) == expected
    assert sw(rt, "A020000108" + chv(PIN1)) == 0x9840  # blocked: even the right one
    assert sw(rt, "0020000100") == 0x6983
    assert sw(rt, "A0B0000009") == 0x9804
    data, status = send(rt, "A0A40000023F00")
    assert status == 0x9000 and data[18] == 0x80  # CHV1 initialised, 0 tries
    clean(rt)


def test_verify_chv_errors() -> None:
    rt = usim_card(pin1_enabled=True)
    assert sw(rt, "A020000108" + chv(PIN1)) == 0x9000
    assert sw(rt, "A020000308" + chv(PIN1)) == 0x6B00  # no CHV3
    assert sw(rt, "A020010108" + chv(PIN1)) == 0x6B00
    assert sw(rt, "A020000104" + "31323334") == 0x6700
    assert sw(rt, "A0200001") == 0x6700
    disabled = usim_card()
    assert sw(disabled, "A020000108" + chv(PIN1)) == 0x9808  # CHV1 disabled
    assert sw(disabled, "0020000100") == 0x9000  # nothing counted
    assert sw(disabled, "A020000208" + chv(PIN2)) == 0x9000
    clean(rt)
    clean(disabled)


def test_gsm_chv_on_a_card_with_no_profile_is_no_chv() -> None:
    from tests.unit.usim_cards import empty_card

    rt = empty_card()
    assert sw(rt, "A020000108" + chv(PIN1)) == 0x9802
    assert sw(rt, "A02C000010" + chv(PUK1) + chv(PIN1)) == 0x9802
    assert sw(rt, "A08800001000000000000000000000000000000000") == 0x9804
    clean(rt)


def test_change_chv() -> None:
    rt = usim_card(pin1_enabled=True)
    assert sw(rt, "A024000110" + chv("0000") + chv("4321")) == 0x9804
    assert sw(rt, "0020000100") == 0x63C2
    assert sw(rt, "A024000110" + chv(PIN1) + chv("4321")) == 0x9000
    assert sw(rt, "0020000100") == 0x9000  # verified by the change
    assert sw(rt, "0020000108" + chv("4321")) == 0x9000  # the UICC command takes the new one
    assert sw(rt, "0020000108" + chv(PIN1)) == 0x63C2
    assert sw(rt, "A024000110" + chv("4321") + chv("12")) == 0x6B00  # too short a CHV
    assert sw(rt, "A024000110" + chv("4321") + "41414141FFFFFFFF") == 0x6B00  # not digits
    assert sw(rt, "A024000108" + chv("4321")) == 0x6700
    assert sw(rt, "A024000210" + chv(PIN2) + chv("8765")) == 0x9000  # CHV2
    assert sw(rt, "0020008108" + chv("8765")) == 0x9000
    disabled = usim_card()
    assert sw(disabled, "A024000110" + chv(PIN1) + chv("4321")) == 0x9808
    clean(rt)
    clean(disabled)


def test_disable_and_enable_chv() -> None:
    rt = usim_card(pin1_enabled=True)
    assert sw(rt, "A028000108" + chv(PIN1)) == 0x9808  # enabled already
    assert sw(rt, "A026000208" + chv(PIN2)) == 0x6B00  # only CHV1 can be disabled
    assert sw(rt, "A026000108" + chv("0000")) == 0x9804
    assert sw(rt, "A026000108" + chv(PIN1)) == 0x9000
    data, _ = send(rt, "A0A40000023F00")
    assert data[13] & 0x80  # file characteristics: CHV1 disabled
    assert sw(rt, "A026000108" + chv(PIN1)) == 0x9808  # disabled already
    assert sw(rt, "A020000108" + chv(PIN1)) == 0x9808  # nothing to verify
    # ENABLE counts wrong values while disabled; at zero the CHV is blocked.
    for expected in (0x9804, 0x9804, 0x9840):
        assert sw(rt, "A028000108" + chv("0000")) == expected
    assert sw(rt, "A028000108" + chv(PIN1)) == 0x9840
    assert sw(rt, "A02C000010" + chv(PUK1) + chv(PIN1)) == 0x9000
    assert sw(rt, "A028000108" + chv(PIN1)) == 0x9000
    data, _ = send(rt, "A0A40000023F00")
    assert not data[13] & 0x80 and data[18] == 0x83
    clean(rt)


@pytest.mark.parametrize("p2", [0x00, 0x01])
def test_unblock_chv1(p2: int) -> None:
    rt = usim_card(pin1_enabled=True)
    for _ in range(3):
        send(rt, "A020000108" + chv("0000"))
    assert sw(rt, "0020000100") == 0x6983
    assert sw(rt, f"A02C00{p2:02X}10" + chv("99999999") + chv("4321")) == 0x9804
    assert sw(rt, "002C000100") == 0x63C9  # the PUK counter, through the UICC command
    assert sw(rt, f"A02C00{p2:02X}10" + chv(PUK1) + chv("4321")) == 0x9000
    assert sw(rt, "002C000100") == 0x63CA  # PUK counter restored
    assert sw(rt, "0020000100") == 0x9000  # verified
    rt.power_off()
    rt.power_on()
    assert sw(rt, "0020000100") == 0x63C3  # new CHV1 with a full counter
    assert sw(rt, "A020000108" + chv("4321")) == 0x9000
    clean(rt)


def test_unblock_chv_errors_and_puk_blocking() -> None:
    rt = usim_card()
    assert sw(rt, "A02C000310" + chv(PUK2) + chv(PIN2)) == 0x6B00
    assert sw(rt, "A02C000208" + chv(PUK2)) == 0x6700
    assert sw(rt, "A02C000210" + chv(PUK2) + chv("1")) == 0x6B00
    for left in range(9, 0, -1):
        assert sw(rt, "A02C000210" + chv("99999999") + chv(PIN2)) == 0x9804
        assert sw(rt, "002C008100") == 0x63C0 | left
    assert sw(rt, "A02C000210" + chv("99999999") + chv(PIN2)) == 0x9840
    assert sw(rt, "A02C000210" + chv(PUK2) + chv(PIN2)) == 0x9840  # blocked for good
    assert sw(rt, "A020000208" + chv(PIN2)) == 0x9000  # CHV2 itself still works
    data, _ = send(rt, "A0A40000023F00")
    assert data[21] == 0x80  # UNBLOCK CHV2: initialised, 0 tries
    clean(rt)


def test_adm_is_not_a_gsm_chv() -> None:
    rt = usim_card()
    assert sw(rt, "A02000" + "0A" + "08" + chv(ADM1)) == 0x6B00
    clean(rt)


# -- RUN GSM ALGORITHM (TS 51.011 §9.2.16) -----------------------------------------------------


def run_gsm(rt: CardRuntime, rand: bytes) -> tuple[bytes, int]:
    return send(rt, "A088000010" + rand.hex())


def test_run_gsm_algorithm_osmocom_vector() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    select_gsm(rt)
    resp = rt.process(bytes.fromhex("A088000010") + OSMO_RAND)
    assert resp == b"\x9f\x0c"
    data, status = send(rt, "A0C000000C")
    assert status == 0x9000
    assert data == OSMO_SRES + OSMO_KC
    assert data == c2(OSMO_RES) + c3(OSMO_CK, OSMO_IK)
    # The same as AUTHENTICATE in the GSM context on the USIM (TS 31.102 §7.1.2.1).
    select_usim(rt)
    assert authenticate(rt, OSMO_RAND) == (b"\x04" + OSMO_SRES + b"\x08" + OSMO_KC, 0x9000)
    clean(rt)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_run_gsm_algorithm_is_c2_c3_of_milenage(rand: bytes) -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    select_gsm(rt, g.EF_KC)  # an EF under DF.GSM: DF.GSM stays the current directory
    res, ck, ik, _ak = Milenage(OSMO_K, OSMO_OPC).f2345(rand)
    assert run_gsm(rt, rand) == (c2(res) + c3(ck, ik), 0x9000)


def test_run_gsm_algorithm_with_the_xor_test_algorithm() -> None:
    rt = usim_card(k=OSMO_K, opc=None, algorithm="xor")
    select_gsm(rt)
    res, ck, ik, _ak = XorTestAlgorithm(OSMO_K, 8).f2345(OSMO_RAND)
    assert run_gsm(rt, OSMO_RAND) == (c2(res) + c3(ck, ik), 0x9000)
    clean(rt)


def test_run_gsm_algorithm_needs_df_gsm_and_chv1() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC, pin1_enabled=True)
    assert run_gsm(rt, OSMO_RAND)[1] == 0x9804  # the MF is current
    select_gsm(rt)
    assert run_gsm(rt, OSMO_RAND)[1] == 0x9804  # CHV1 not verified
    assert sw(rt, "A020000108" + chv(PIN1)) == 0x9000
    assert run_gsm(rt, OSMO_RAND) == (OSMO_SRES + OSMO_KC, 0x9000)
    select_usim(rt)
    assert run_gsm(rt, OSMO_RAND)[1] == 0x9804  # ADF.USIM is current
    assert sw(rt, "A0A40000027F10") == 0x9000  # DF.TELECOM: not under DF.GSM
    assert run_gsm(rt, OSMO_RAND)[1] == 0x9804
    rt.power_off()
    rt.power_on()
    select_gsm(rt)
    assert run_gsm(rt, OSMO_RAND)[1] == 0x9804  # a reset forgets CHV1
    assert sw(rt, "A088000008" + "00" * 8) == 0x6700
    assert sw(rt, "A088010010" + "00" * 16) == 0x6B00
    clean(rt)


def test_run_gsm_algorithm_leaves_the_sqn_alone() -> None:
    rt = usim_card(k=OSMO_K, opc=OSMO_OPC)
    before = rt.nvm.snapshot()
    select_gsm(rt)
    assert run_gsm(rt, OSMO_RAND)[1] == 0x9000
    assert rt.nvm.snapshot() == before
    clean(rt)


def test_default_usim_aid_is_unchanged() -> None:
    # DF.GSM sits beside the USIM; EF.DIR still lists the USIM alone.
    assert sample_profile().applications() == (DEFAULT_USIM_AID,)
