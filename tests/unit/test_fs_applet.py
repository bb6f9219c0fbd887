"""The ISO 7816-4 file-system card applet on the card runtime, driven by APDUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from applets.iso7816 import (
    BENCH_EF_FID,
    DEMO_DF_NAME,
    FS_APPLET_AID,
    FileSystemApplet,
)
from applets.iso7816.demo import iccid_bytes
from card.framework.catalogue import Catalogue
from card.fs import parse_fcp
from card.runtime import CardRuntime, CardTorn
from card.sw import SW, CardError


def new_card(image: Path | None = None, params: bytes = b"") -> CardRuntime:
    rt = CardRuntime(image, rng_seed=1, catalogue=Catalogue([FileSystemApplet]))
    rt.install(FileSystemApplet, FS_APPLET_AID, params, default=True)
    rt.power_on()
    return rt


@pytest.fixture
def card() -> CardRuntime:
    return new_card()


def tx(card: CardRuntime, apdu: str, sw: str = "9000") -> bytes:
    resp = card.process(bytes.fromhex(apdu.replace(" ", "")))
    assert resp[-2:].hex().upper() == sw, f"{apdu} -> {resp.hex().upper()}"
    return resp[:-2]


def test_default_selected_and_mf(card: CardRuntime) -> None:
    fcp = parse_fcp(tx(card, "00A40004 02 3F00 00"))
    assert fcp.fid == 0x3F00 and fcp.descriptor == 0x78
    assert fcp.pin_status is not None
    assert [r.key_ref for r in fcp.pin_status.refs] == [0x01, 0x81, 0x0A]
    assert card.exceptions == 0


def test_select_applet_by_aid(card: CardRuntime) -> None:
    resp = tx(card, "00A40400" + f"{len(FS_APPLET_AID):02X}" + FS_APPLET_AID.hex() + "00")
    assert resp == bytes((0x6F, len(FS_APPLET_AID) + 2, 0x84, len(FS_APPLET_AID))) + FS_APPLET_AID
    # the file system starts again at the MF
    tx(card, "00A4020C02" + BENCH_EF_FID.hex())
    assert tx(card, "00B0000080") == bytes(range(128))


def test_demo_files(card: CardRuntime) -> None:
    tx(card, "00A4000C022FE2")
    assert tx(card, "00B000000A") == iccid_bytes("8949000000000000017")
    # by SFI: EF.ICCID (02) with Le = 00, then EF.DATA (10) from offset 1
    assert tx(card, "00B0820000") == tx(card, "00B000000A")
    assert tx(card, "00B09001FF") == bytes(range(1, 256))
    # EF.DATA is current now: 32 bytes asked at offset 504, 8 left
    assert tx(card, "00B001F820", "6282") == bytes(range(248, 256))

    rec = tx(card, "00B201F420")  # EF.DIR by SFI 1E
    assert rec[:2] == bytes((0x61, 4 + len(DEMO_DF_NAME) + 4)) and DEMO_DF_NAME in rec
    tx(card, "00B2030400", "6A83")  # EF.DIR, current since the SFI read, has 2 records
    tx(card, "00A4000C022F20")
    assert tx(card, "00B2010410").startswith(b"first note")
    tx(card, "00B2060410", "6A83")


def test_select_by_df_name_passes_through_the_runtime(card: CardRuntime) -> None:
    fcp = parse_fcp(tx(card, "00A40404" + f"{len(DEMO_DF_NAME):02X}" + DEMO_DF_NAME.hex() + "00"))
    assert fcp.fid == 0x7F10 and fcp.df_name == DEMO_DF_NAME
    tx(card, "00A4000C026F01")


def test_verify(card: CardRuntime) -> None:
    tx(card, "0020000100", "63C3")  # status: not verified, 3 tries
    tx(card, "002000010439393939", "63C2")
    tx(card, "0020000100", "63C2")
    tx(card, "002000010431323334")
    tx(card, "0020000100")  # verified now
    tx(card, "0020000108 31323334FFFFFFFF")  # the TS 102 221 8-byte form
    tx(card, "00200081083536373839", "6700")  # 9 bytes
    tx(card, "0020000200", "6A88")  # no such key reference
    tx(card, "0020010100", "6A86")


def test_pin_blocks(card: CardRuntime) -> None:
    tx(card, "002000810430303030", "63C2")
    tx(card, "002000810430303030", "63C1")
    tx(card, "002000810430303030", "63C0")
    tx(card, "002000810435363738", "6983")  # even the right PIN
    tx(card, "0020008100", "6983")
    # UNBLOCK with PUK2, then verify the new PIN2
    tx(card, "002C008100", "63CA")
    tx(card, "002C008110 3232323232323232 39393939FFFFFFFF")
    tx(card, "0020008100", "63C3")
    tx(card, "002000810439393939")
    tx(card, "002C008110 3030303030303030 39393939FFFFFFFF", "63C9")
    tx(card, "002C000A00", "6A88")  # no PUK for ADM1


def test_change_pin(card: CardRuntime) -> None:
    tx(card, "0024000110 31323334FFFFFFFF 35353535FFFFFFFF")
    tx(card, "002000010431323334", "63C2")
    tx(card, "002000010435353535")
    tx(card, "0024000110 31323334FFFFFFFF 35353535FFFFFFFF", "63C2")
    tx(card, "002400010831323334", "6700")


def test_pin_protected_files(card: CardRuntime) -> None:
    tx(card, "00A4080C047F106F01")
    tx(card, "00B0000010", "6982")
    tx(card, "00D6000001AA", "6982")
    tx(card, "002000810435363738")  # PIN2 is not PIN1
    tx(card, "00B0000010", "6982")
    tx(card, "002000010431323334")
    assert tx(card, "00B0000010") == b"secret for PIN1!"
    tx(card, "00A4000C026F02")
    assert tx(card, "00B2010414").startswith(b"Alice")
    tx(card, "00DC0104 14" + "42" * 20)  # update needs PIN2 (verified above)
    tx(card, "00A4000C026F03")
    assert tx(card, "00B0000009") == b"PIN2 only"


def test_pin2_file_needs_pin2(card: CardRuntime) -> None:
    tx(card, "002000010431323334")
    tx(card, "00A4080C047F106F03")
    tx(card, "00B0000009", "6982")
    tx(card, "00A4000C026F02")
    tx(card, "00DC0104 14" + "42" * 20, "6982")  # read PIN1, update PIN2


def test_verification_is_per_channel_and_lost_on_reset(card: CardRuntime) -> None:
    tx(card, "002000010431323334")
    assert tx(card, "0070000001") == b"\x01"
    tx(card, "01A4080C047F106F01")  # the default applet on the new channel
    tx(card, "01B0000010", "6982")
    tx(card, "00A4080C047F106F01")
    tx(card, "00B0000010")
    card.reset()
    tx(card, "00A4080C047F106F01")
    tx(card, "00B0000010", "6982")


def test_channels_have_their_own_current_file(card: CardRuntime) -> None:
    tx(card, "0070000001")
    tx(card, "00A4000C022FE2")
    tx(card, "01A4000C02" + BENCH_EF_FID.hex())
    assert tx(card, "00B0000001") == iccid_bytes("8949000000000000017")[:1]
    assert tx(card, "01B0000401") == b"\x04"


def test_counter_and_records(card: CardRuntime) -> None:
    tx(card, "00A4000C022F30")
    tx(card, "803200000101", "6982")  # INCREASE needs PIN1
    tx(card, "002000010431323334")
    assert tx(card, "80320000010100") == b"\x00\x00\x01\x01"
    assert tx(card, "80320000010200") == b"\x00\x00\x03\x02"
    assert tx(card, "00B2010403") == b"\x00\x00\x03"
    assert tx(card, "00B2020403") == b"\x00\x00\x01"
    tx(card, "00DC000303000009", "6982")  # UPDATE RECORD needs ADM1
    tx(card, "0020000A083132333435363738")
    tx(card, "00DC000303000009")
    assert tx(card, "00B2010403") == b"\x00\x00\x09"
    assert tx(card, "00A2010401 00 00") == bytes((1, 2, 3, 4))  # every record holds a 00
    tx(card, "00A20104010700", "6282")


def test_activate_deactivate_need_adm(card: CardRuntime) -> None:
    tx(card, "00A4000C022F20")
    tx(card, "0004000000", "6982")
    tx(card, "0020000A083132333435363738")
    tx(card, "0004000000")
    fcp = parse_fcp(tx(card, "00A40004022F2000", "6283"))
    assert fcp.lcs == 0x04
    tx(card, "00B2010410", "6283")
    tx(card, "0044000000")
    tx(card, "00B2010410")


def test_install_parameters_set_the_pins() -> None:
    card = new_card(params=bytes.fromhex("0104 39383736 8102 3030"))
    tx(card, "002000010431323334", "63C2")
    tx(card, "002000010439383736")
    tx(card, "00200081023030")
    with pytest.raises(CardError) as e:  # 02 is no key reference of this card
        new_card(params=bytes.fromhex("020439383736"))
    assert e.value.sw == SW.WRONG_DATA


def test_state_survives_reopening_the_image(tmp_path: Path) -> None:
    image = tmp_path / "card.db"
    card = new_card(image)
    tx(card, "002000010431323334")
    tx(card, "00A4000C022F20")
    tx(card, "00DC0104 10" + "61" * 16)
    card.close()
    again = CardRuntime(image, catalogue=Catalogue([FileSystemApplet]))
    again.power_on()
    tx(again, "00A4000C022F20")
    assert tx(again, "00B2010410") == b"a" * 16
    tx(again, "0020000100", "63C3")  # verification does not survive


def test_a_torn_update_leaves_the_old_content(card: CardRuntime) -> None:
    tx(card, "00A4000C02" + BENCH_EF_FID.hex())
    tx(card, "002000010431323334")
    card.nvm.tear_after(0)
    with pytest.raises(CardTorn):
        card.process(bytes.fromhex("00D6000004DEADBEEF"))
    card.power_on()
    tx(card, "00A4000C02" + BENCH_EF_FID.hex())
    assert tx(card, "00B0000004") == bytes(range(4))
    assert card.exceptions == 0 and card.nvm_violations == 0


def test_unknown_instruction(card: CardRuntime) -> None:
    tx(card, "00CA000000", "6D00")
