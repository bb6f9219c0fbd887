"""The UICC applet on the wire: SELECT/FCP, the standard files, EF.ARR access conditions,
PIN1/PIN2/PUK/ADM (TS 102 221 §11.1.9-13), STATUS, classes, logical channels, CLA A0."""

from __future__ import annotations

import pytest

from card.fs import parse_fcp
from card.uicc import ts_31_102 as u
from card.uicc.builder import DEFAULT_USIM_AID, TEST_IMSI, sample_iccid
from card.uicc.ts_102_221 import decode_dir_record, decode_iccid
from tests.unit.usim_cards import empty_card, select_usim, send, usim_card


def pin(value: str) -> str:
    return (value.encode() + b"\xff" * (8 - len(value))).hex()


def read_binary(rt, fid: str) -> bytes:  # noqa: ANN001
    data, sw = send(rt, f"00A4000C02{fid}")
    assert sw == 0x9000, f"select {fid}: {sw:04X}"
    data, sw = send(rt, "00B0000000")
    assert sw == 0x9000, f"read {fid}: {sw:04X}"
    return data


def test_select_mf_fcp() -> None:
    rt = usim_card()
    data, sw = send(rt, "00A40004023F00")
    assert sw == 0x9000
    fcp = parse_fcp(data)
    assert fcp.fid == 0x3F00 and fcp.is_df
    assert fcp.pin_status is not None
    refs = {r.key_ref: r.enabled for r in fcp.pin_status.refs}
    assert refs == {0x01: False, 0x81: True, 0x0A: True}  # PIN1 disabled by default
    # T=0 style: no Le gives 61xx, GET RESPONSE the FCP
    resp = rt.process(bytes.fromhex("00A40004023F00"))
    assert resp == bytes((0x61, len(data)))


def test_ef_dir_iccid_and_usim_files() -> None:
    rt = usim_card()
    send(rt, "00A40004023F00")
    send(rt, "00A4000C022F00")
    rec, sw = send(rt, "00B2010400")
    assert sw == 0x9000
    assert decode_dir_record(rec).aid == DEFAULT_USIM_AID
    assert decode_iccid(read_binary(rt, "2FE2")) == sample_iccid()
    select_usim(rt)
    assert u.decode_imsi(read_binary(rt, "6F07")) == TEST_IMSI
    assert {27, 38, 33} <= u.decode_service_table(read_binary(rt, "6F38"))
    assert u.decode_ad(read_binary(rt, "6FAD")).mnc_length == 2
    assert u.decode_spn(read_binary(rt, "6F46")).name == "cardemu"
    assert u.decode_plmn_act_list(read_binary(rt, "6F62"))[0][0] == u.Plmn("001", "01")
    send(rt, "00A4000C026F40")
    rec, _ = send(rt, "00B2010400")
    assert u.decode_dialling_number(rec).number == "+0010100001"
    # by SFI: EF.IMSI is SFI 07 in the ADF (TS 31.102 Annex H)
    data, sw = send(rt, "00B0870000")
    assert sw == 0x9000 and u.decode_imsi(data) == TEST_IMSI


def test_select_by_partial_aid_and_7fff() -> None:
    rt = usim_card()
    assert send(rt, "00A4040C07A0000000871002")[1] == 0x9000
    data, sw = send(rt, "00A40004027FFF")
    assert sw == 0x9000 and parse_fcp(data).df_name == DEFAULT_USIM_AID
    data, sw = send(rt, "80F2000100")  # STATUS: the DF name of the current application
    assert sw == 0x9000 and data == b"\x84\x10" + DEFAULT_USIM_AID
    assert send(rt, "00A4040C07A0000000871004")[1] == 0x6A82  # no ISIM here


def test_access_conditions_from_ef_arr() -> None:
    rt = usim_card(pin1_enabled=True)
    select_usim(rt)
    assert send(rt, "00A4000C026F07")[1] == 0x9000
    assert send(rt, "00B0000000")[1] == 0x6982  # EF.IMSI: read PIN1
    assert send(rt, "00A4000C026FAD")[1] == 0x9000
    assert send(rt, "00B0000000")[1] == 0x9000  # EF.AD: read ALW
    assert send(rt, "00D6000001" + "00")[1] == 0x6982  # update ADM
    assert send(rt, "0020000108" + pin("1234"))[1] == 0x9000
    assert send(rt, "00D6000001" + "00")[1] == 0x6982  # PIN1 is not ADM
    assert send(rt, "0020000A08" + pin("12345678"))[1] == 0x9000
    assert send(rt, "00D6000001" + "01")[1] == 0x9000
    assert read_binary(rt, "6FAD")[0] == 0x01


def test_verify_counters_and_block() -> None:
    rt = usim_card(pin1_enabled=True)
    assert send(rt, "00200001")[1] == 0x63C3
    assert send(rt, "0020000108" + pin("0000"))[1] == 0x63C2
    assert send(rt, "0020000108" + pin("0000"))[1] == 0x63C1
    assert send(rt, "0020000108" + pin("0000"))[1] == 0x63C0
    assert send(rt, "0020000108" + pin("1234"))[1] == 0x6983  # blocked, even with the right PIN
    assert send(rt, "00200001")[1] == 0x6983
    # UNBLOCK with PUK1: wrong PUK counts down, the right one sets a new PIN
    assert send(rt, "002C0001")[1] == 0x63CA
    assert send(rt, "002C000110" + pin("99999999") + pin("4321"))[1] == 0x63C9
    assert send(rt, "002C000110" + pin("11111111") + pin("4321"))[1] == 0x9000
    assert send(rt, "002C0001")[1] == 0x63CA  # PUK counter back to 10
    assert send(rt, "00200001")[1] == 0x9000  # verified by the UNBLOCK
    rt.reset()
    assert send(rt, "00200001")[1] == 0x63C3
    assert send(rt, "0020000108" + pin("4321"))[1] == 0x9000


def test_puk_blocks_for_good() -> None:
    rt = usim_card()
    for left in range(9, -1, -1):
        assert send(rt, "002C008110" + pin("00000000") + pin("1111"))[1] == 0x63C0 | left
    assert send(rt, "002C008110" + pin("22222222") + pin("1111"))[1] == 0x6983


def test_change_disable_enable() -> None:
    rt = usim_card(pin1_enabled=True)
    assert send(rt, "0024000110" + pin("0000") + pin("5555"))[1] == 0x63C2
    assert send(rt, "0024000110" + pin("1234") + pin("5555"))[1] == 0x9000
    assert send(rt, "0020000108" + pin("1234"))[1] == 0x63C2
    assert send(rt, "0020000108" + pin("5555"))[1] == 0x9000
    assert send(rt, "0024000110" + pin("5555") + "41414141ffffffff")[1] == 0x6A80  # not digits
    assert send(rt, "0028000108" + pin("5555"))[1] == 0x6985  # already enabled
    assert send(rt, "0026000108" + pin("5555"))[1] == 0x9000  # disable
    rt.reset()
    select_usim(rt)
    assert send(rt, "00A4000C026F07")[1] == 0x9000
    assert send(rt, "00B0000000")[1] == 0x9000  # PIN1 disabled: condition fulfilled
    assert send(rt, "00200001")[1] == 0x9000
    assert send(rt, "0024000110" + pin("5555") + pin("1234"))[1] == 0x6984  # CHANGE on disabled
    assert send(rt, "0026008108" + pin("5678"))[1] == 0x6985  # PIN2 cannot be disabled here
    assert send(rt, "0028000108" + pin("5555"))[1] == 0x9000  # enable again


def test_pin_command_errors() -> None:
    rt = usim_card()
    assert send(rt, "0020000208" + pin("1234"))[1] == 0x6A88  # no such key reference
    assert send(rt, "0020010108" + pin("1234"))[1] == 0x6B00
    assert send(rt, "0020000104" + b"1234".hex())[1] == 0x6700
    assert send(rt, "8020000108" + pin("1234"))[1] == 0x6E00  # ISO command in class 80
    assert send(rt, "00F2000000")[1] == 0x6E00  # STATUS in class 00
    assert send(rt, "00CA000000")[1] == 0x6D00
    assert send(rt, "9020000108" + pin("1234"))[1] == 0x6E00


def test_adm_has_no_puk() -> None:
    rt = usim_card()
    assert send(rt, "002C000A10" + pin("12345678") * 2)[1] == 0x6A88
    assert send(rt, "0026000A08" + pin("12345678"))[1] == 0x6985


def test_verification_shared_by_channels_and_kept_per_reset() -> None:
    rt = usim_card(pin1_enabled=True)
    assert send(rt, "0020000108" + pin("1234"))[1] == 0x9000
    data, sw = send(rt, "0070000001")
    assert sw == 0x9000 and data == b"\x01"
    select_usim(rt, channel=1)
    assert send(rt, "01A4000C026F07")[1] == 0x9000
    assert send(rt, "01B0000000")[1] == 0x9000  # PIN1 verified on channel 0 counts here
    # the new channel starts at the MF of its own
    assert send(rt, "00A4000C026F07")[1] == 0x6A82


def test_terminal_profile_accepted() -> None:
    rt = usim_card()
    assert send(rt, "8010000003FFFFFF")[1] == 0x9000
    assert send(rt, "80AA000003A90100")[1] == 0x9000
    assert send(rt, "0010000003FFFFFF")[1] == 0x6E00


def test_gsm_class_select_and_get_response() -> None:
    rt = usim_card()
    resp = rt.process(bytes.fromhex("A0A40000023F00"))
    assert resp[0] == 0x9F
    data, sw = send(rt, f"A0C00000{resp[1]:02X}")
    assert sw == 0x9000
    assert data[4:7] == b"\x3f\x00\x01"  # FID, type MF (TS 51.011 §9.2.1)
    assert data[14] == 2 and data[15] == 4  # two child DFs (DF.TELECOM, DF.GSM), four EFs
    assert data[18] == 0x83  # CHV1 initialised, 3 tries
    data, sw = send(rt, "A0A40000022FE2")
    assert sw == 0x9000 and data[6] == 0x04 and data[13] == 0x00  # an EF, transparent
    assert data[2:4] == b"\x00\x0a"
    data, sw = send(rt, "A0B000000A")
    assert sw == 0x9000 and decode_iccid(data) == sample_iccid()
    assert send(rt, "A0A40000026F07")[1] == 0x9404  # not in the MF
    assert send(rt, "A0A40000027F10")[1] == 0x9000
    assert send(rt, "A0A40000026F3A")[1] == 0x9000
    data, sw = send(rt, "A0B201041C")
    assert sw == 0x9000 and data == b"\xff" * 28
    assert send(rt, "A0C0000010")[1] == 0x6700  # nothing to get: incorrect P3


def test_empty_euicc_has_an_mf_only() -> None:
    rt = empty_card()
    data, sw = send(rt, "00A40004023F00")
    assert sw == 0x9000 and parse_fcp(data).fid == 0x3F00
    assert send(rt, "00A4000C022FE2")[1] == 0x6A82
    assert send(rt, "0020000108" + pin("1234"))[1] == 0x6A88
    assert rt.exceptions == 0


@pytest.mark.parametrize("apdu", ["00A40000", "00B0000000", "00B2010400", "80F20000", "0070800100"])
def test_no_exceptions_on_odd_commands(apdu: str) -> None:
    rt = usim_card()
    send(rt, apdu)
    assert rt.exceptions == 0
