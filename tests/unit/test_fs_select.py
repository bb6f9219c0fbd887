"""SELECT and STATUS over the file system (ISO 7816-4 §7.1, §11.2.2; TS 102 221 §8.4, §11.1.1-2)."""

from __future__ import annotations

from typing import Any

import pytest

from card.fs import (
    ADM1,
    ALW,
    PIN1,
    PIN2,
    FileSystem,
    Referenced,
    StaticEnvironment,
    Structure,
    parse_fcp,
    rules,
)
from card.fs.fcp import PinRef, PinStatus
from card.fs.security import encode_rules
from card.sw import SW, CardError

USIM = bytes.fromhex("A0000000871002FFFFFFFF8907090000")
ISIM = bytes.fromhex("A0000000871004FFFFFFFF8907090000")
USIM2 = bytes.fromhex("A0000000871002FF49FF0589")


class DictStore(dict):
    """The store contract: get(key, default) and set(key, value)."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value


def build(store: DictStore | None = None) -> FileSystem:
    fs = FileSystem(store if store is not None else DictStore())
    fs.create_mf(pins=(PIN1, PIN2, ADM1), proprietary=bytes.fromhex("800171"))
    fs.create_ef("3F00", 0x2FE2, size=10, sfi=2, security=rules(read=ALW, update=ADM1))
    fs.create_ef(
        "3F00",
        0x2F06,
        Structure.LINEAR_FIXED,
        record_length=32,
        records=2,
        data=[encode_rules(read=ALW, update=ADM1), encode_rules(read=PIN1, update=PIN1)],
    )
    fs.create_ef("3F00", 0x2F00, Structure.LINEAR_FIXED, record_length=38, records=2, sfi=30)
    telecom = fs.create_df("3F00", 0x7F10, security=Referenced(0x2F06, 1), pins=(PIN1, ADM1))
    fs.create_ef(telecom, 0x6F3A, Structure.LINEAR_FIXED, record_length=30, records=3)
    pb = fs.create_df(telecom, 0x5F3A)
    fs.create_ef(pb, 0x4F30, size=4)
    fs.create_df("3F00", 0x7F20)
    adf = fs.create_adf(USIM, pins=(PIN1, PIN2))
    fs.create_ef(adf, 0x6F07, size=9, data=bytes.fromhex("080910101032547698"), sfi=7)
    fs.create_df(adf, 0x5F3B)
    fs.create_adf(ISIM)
    fs.create_adf(USIM2)
    return fs


@pytest.fixture
def fs() -> FileSystem:
    return build()


ENV = StaticEnvironment()


def sel(fs: FileSystem, st: dict, p1: int, data: str | bytes, p2: int = 0x04) -> bytes:
    raw = bytes.fromhex(data) if isinstance(data, str) else data
    return fs.select(st, p1, p2, raw, ENV)


def fid_of(resp: bytes) -> int | None:
    return parse_fcp(resp).fid


def sw_of(excinfo: pytest.ExceptionInfo[CardError]) -> int:
    return excinfo.value.sw


def test_mf_after_reset_and_by_fid_or_empty(fs: FileSystem) -> None:
    st: dict = {}
    assert fs.current_df(st).handle == "3F00"  # implicitly selected (ISO 7816-4 §7.1.1)
    assert fid_of(sel(fs, st, 0, "3F00")) == 0x3F00
    sel(fs, st, 0, "7F10")
    assert fid_of(sel(fs, st, 0, "")) == 0x3F00  # P1 = 00, no data: the MF
    with pytest.raises(CardError) as e:
        sel(fs, st, 0, "3F")
    assert sw_of(e) == SW.WRONG_LENGTH


def test_mf_fcp_as_ts_102_221(fs: FileSystem) -> None:
    fcp = parse_fcp(sel(fs, {}, 0, "3F00"))
    assert fcp.descriptor == 0x78 and fcp.data_coding == 0x21 and fcp.lcs == 0x05
    assert fcp.proprietary == bytes.fromhex("800171")
    assert fcp.pin_status == PinStatus((PinRef(PIN1), PinRef(PIN2), PinRef(ADM1)))
    # the PIN status template follows the security environment's enabled flags
    env = StaticEnvironment(disabled=frozenset({PIN1}))
    fcp = parse_fcp(fs.select({}, 0, 0x04, b"\x3f\x00", env))
    assert fcp.pin_status is not None and not fcp.pin_status.refs[0].enabled
    assert fcp.pin_status.refs[1].enabled


def test_ef_fcp(fs: FileSystem) -> None:
    fcp = parse_fcp(sel(fs, {}, 0, "2FE2"))
    assert (fcp.descriptor, fcp.fid, fcp.file_size, fcp.sfi) == (0x41, 0x2FE2, 10, 2)
    assert fcp.security == rules(read=ALW, update=ADM1)
    rec = parse_fcp(sel(fs, {}, 0, "2F00"))
    assert (rec.descriptor, rec.record_length, rec.record_count, rec.file_size) == (
        0x42,
        38,
        2,
        76,
    )
    assert rec.sfi == 30
    no_sfi = parse_fcp(sel(fs, {}, 0, "2F06"))
    assert no_sfi.sfi == 0  # an empty 88: the EF has no SFI (TS 102 221 §11.1.1.4.8)


def test_p1_00_children_parent_siblings_and_self(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 0, "7F10")
    sel(fs, st, 0, "5F3A")  # child DF
    assert fs.current_df(st).handle == "3F00/7F10/5F3A"
    assert fid_of(sel(fs, st, 0, "5F3A")) == 0x5F3A  # the current DF itself
    assert fid_of(sel(fs, st, 0, "7F10")) == 0x7F10  # the parent
    sel(fs, st, 0, "5F3A")
    with pytest.raises(CardError) as e:  # 7F20 is no sibling of 5F3A, nor its parent
        sel(fs, st, 0, "7F20")
    assert sw_of(e) == SW.FILE_NOT_FOUND
    sel(fs, st, 0, "7F10")
    assert fid_of(sel(fs, st, 0, "7F20")) == 0x7F20  # a sibling DF
    sel(fs, st, 0, "7F10")
    with pytest.raises(CardError) as e:  # an EF of the parent is not selectable from 7F10
        sel(fs, st, 0, "2FE2")
    assert sw_of(e) == SW.FILE_NOT_FOUND
    assert fid_of(sel(fs, st, 0, "3F00")) == 0x3F00  # the MF from anywhere


def test_selecting_an_ef_keeps_its_parent_current(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 0, "7F10")
    sel(fs, st, 0, "6F3A")
    assert fs.current_ef(st).handle == "3F00/7F10/6F3A"
    assert fs.current_df(st).handle == "3F00/7F10"
    # with an EF current, the reference point is still its DF: a sibling DF works
    sel(fs, st, 0, "5F3A")
    assert fs.current_df(st).handle == "3F00/7F10/5F3A"
    with pytest.raises(CardError) as e:
        fs.current_ef(st)
    assert sw_of(e) == SW.COMMAND_NOT_ALLOWED_NO_EF


def test_p1_01_child_df_and_p1_02_ef(fs: FileSystem) -> None:
    st: dict = {}
    assert fid_of(sel(fs, st, 1, "7F10")) == 0x7F10
    with pytest.raises(CardError) as e:
        sel(fs, st, 1, "6F3A")  # an EF, not a DF
    assert sw_of(e) == SW.FILE_NOT_FOUND
    assert fid_of(sel(fs, st, 2, "6F3A")) == 0x6F3A
    with pytest.raises(CardError) as e:
        sel(fs, st, 2, "5F3A")  # a DF, not an EF
    assert sw_of(e) == SW.FILE_NOT_FOUND
    with pytest.raises(CardError) as e:
        sel(fs, st, 1, "7F")
    assert sw_of(e) == SW.WRONG_LENGTH


def test_p1_03_parent(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 8, "7F105F3A4F30")
    assert fid_of(sel(fs, st, 3, "")) == 0x7F10  # parent of the current DF 5F3A
    assert fid_of(sel(fs, st, 3, "")) == 0x3F00
    with pytest.raises(CardError) as e:
        sel(fs, st, 3, "")  # the MF has no parent
    assert sw_of(e) == SW.FILE_NOT_FOUND
    with pytest.raises(CardError) as e:
        sel(fs, st, 3, "3F00")
    assert sw_of(e) == SW.WRONG_LENGTH


def test_p1_08_path_from_mf_and_p1_09_from_current(fs: FileSystem) -> None:
    st: dict = {}
    assert fid_of(sel(fs, st, 8, "7F105F3A4F30")) == 0x4F30
    assert fs.current_df(st).handle == "3F00/7F10/5F3A"
    assert fid_of(sel(fs, st, 8, "2FE2")) == 0x2FE2
    sel(fs, st, 0, "7F10")
    assert fid_of(sel(fs, st, 9, "5F3A4F30")) == 0x4F30
    sel(fs, st, 0, "7F10")
    with pytest.raises(CardError) as e:
        sel(fs, st, 9, "7F10")  # a path from the current DF names children only
    assert sw_of(e) == SW.FILE_NOT_FOUND
    with pytest.raises(CardError) as e:
        sel(fs, st, 8, "2FE26F07")  # through an EF
    assert sw_of(e) == SW.FILE_NOT_FOUND
    for bad in (b"", b"\x7f\x10\x5f"):
        with pytest.raises(CardError) as e:
            sel(fs, st, 8, bad)
        assert sw_of(e) == SW.WRONG_LENGTH


def test_p1_04_by_df_name_full_partial_and_occurrences(fs: FileSystem) -> None:
    st: dict = {}
    fcp = parse_fcp(sel(fs, st, 4, USIM))
    assert fcp.df_name == USIM and fcp.fid is None
    assert fs.current_application(st).name == USIM  # type: ignore[union-attr]
    # right-truncated: A0000000871002 matches both USIM ADFs; first, next, last, previous
    partial = bytes.fromhex("A0000000871002")
    assert parse_fcp(sel(fs, st, 4, partial, 0x04)).df_name == USIM
    assert parse_fcp(sel(fs, st, 4, partial, 0x06)).df_name == USIM2  # next
    with pytest.raises(CardError) as e:
        sel(fs, st, 4, partial, 0x06)  # no further occurrence
    assert sw_of(e) == SW.FILE_NOT_FOUND
    assert parse_fcp(sel(fs, st, 4, partial, 0x07)).df_name == USIM  # previous
    assert parse_fcp(sel(fs, st, 4, partial, 0x05)).df_name == USIM2  # last
    with pytest.raises(CardError) as e:
        sel(fs, st, 4, bytes.fromhex("A0000000871003"))
    assert sw_of(e) == SW.FILE_NOT_FOUND
    with pytest.raises(CardError) as e:
        sel(fs, st, 4, b"")
    assert sw_of(e) == SW.WRONG_LENGTH
    # next from a DF that does not match starts at the first match
    sel(fs, st, 0, "3F00")
    assert parse_fcp(sel(fs, st, 4, partial, 0x06)).df_name == USIM


def test_named_df_under_mf_is_selectable_by_name_and_fid() -> None:
    fs = build()
    fs.create_df("3F00", 0x7F30, name=b"DEMO.APP")
    st: dict = {}
    assert fid_of(sel(fs, st, 4, b"DEMO")) == 0x7F30
    assert fs.current_application(st) is None  # a named DF is not an ADF
    assert fid_of(sel(fs, st, 0, "3F00")) == 0x3F00
    assert fid_of(sel(fs, st, 0, "7F30")) == 0x7F30


def test_7fff_is_the_current_adf(fs: FileSystem) -> None:
    st: dict = {}
    with pytest.raises(CardError) as e:
        sel(fs, st, 0, "7FFF")  # no application selected yet
    assert sw_of(e) == SW.FILE_NOT_FOUND
    sel(fs, st, 4, USIM)
    sel(fs, st, 0, "3F00")
    assert parse_fcp(sel(fs, st, 0, "7FFF")).df_name == USIM
    assert fid_of(sel(fs, st, 8, "7FFF6F07")) == 0x6F07  # TS 102 221 §8.4.2 path via 7FFF
    sel(fs, st, 0, "3F00")
    assert fid_of(sel(fs, st, 9, "7FFF5F3B")) == 0x5F3B
    # the application stays current while the MF side is visited
    sel(fs, st, 8, "7F10")
    assert fs.current_application(st).name == USIM  # type: ignore[union-attr]


def test_adf_parent_is_mf(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 4, USIM)
    assert fid_of(sel(fs, st, 3, "")) == 0x3F00
    sel(fs, st, 4, USIM)
    assert fid_of(sel(fs, st, 0, "7F10")) == 0x7F10  # a DF of the MF is a sibling


def test_p2_response_kinds(fs: FileSystem) -> None:
    st: dict = {}
    fcp = sel(fs, st, 0, "2FE2", 0x04)
    fci = sel(fs, st, 0, "2FE2", 0x00)
    assert fcp[0] == 0x62 and fci[0] == 0x6F and fci[1:] == fcp[1:]
    assert sel(fs, st, 0, "2FE2", 0x0C) == b""
    assert sel(fs, st, 0, "2FE2", 0x08) == bytes.fromhex("6400")
    assert sel(fs, st, 4, USIM, 0x08) == bytes.fromhex("6412") + bytes.fromhex("8410") + USIM
    with pytest.raises(CardError) as e:
        sel(fs, st, 0, "2FE2", 0x14)
    assert sw_of(e) == SW.INCORRECT_P1P2
    with pytest.raises(CardError) as e:  # occurrence bits only with P1 = 04
        sel(fs, st, 0, "2FE2", 0x06)
    assert sw_of(e) == SW.INCORRECT_P1P2
    with pytest.raises(CardError) as e:
        sel(fs, st, 0x05, "2FE2")
    assert sw_of(e) == SW.INCORRECT_P1P2


def test_failed_select_keeps_the_selection(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 8, "7F106F3A")
    before = dict(st)
    with pytest.raises(CardError):
        sel(fs, st, 0, "ABCD")
    assert st == before


def test_channels_are_independent(fs: FileSystem) -> None:
    ch0: dict = {}
    ch1: dict = {}
    sel(fs, ch0, 8, "7F106F3A")
    sel(fs, ch1, 4, USIM)
    assert fs.current_ef(ch0).handle == "3F00/7F10/6F3A"
    assert fs.current_df(ch1).handle.startswith("ADF.")
    with pytest.raises(CardError):
        fs.current_ef(ch1)


def test_status(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 4, USIM)
    sel(fs, st, 0, "6F07")
    assert parse_fcp(fs.status(st, 0x00)).df_name == USIM  # the current DF, not the EF
    assert fs.status(st, 0x01) == bytes((0x84, len(USIM))) + USIM
    assert fs.status(st, 0x0C) == b""
    with pytest.raises(CardError) as e:
        fs.status({}, 0x01)
    assert sw_of(e) == SW.REFERENCED_DATA_NOT_FOUND
    with pytest.raises(CardError) as e:
        fs.status(st, 0x02)
    assert sw_of(e) == SW.INCORRECT_P1P2


def test_deactivated_and_terminated_files_select_with_a_warning() -> None:
    fs = build()
    fs.create_ef("3F00", 0x2F10, size=2, lcs=0x04)
    fs.create_ef("3F00", 0x2F11, size=2, lcs=0x0C)
    st: dict = {}
    with pytest.raises(CardError) as e:
        sel(fs, st, 0, "2F10")
    assert e.value.sw == SW.FILE_DEACTIVATED and parse_fcp(e.value.data).lcs == 0x04
    assert fs.current_ef(st).fid == 0x2F10  # selected all the same
    with pytest.raises(CardError) as e:
        sel(fs, st, 0, "2F11")
    assert e.value.sw == SW.FILE_TERMINATED and parse_fcp(e.value.data).lcs == 0x0C


def test_builder_rejects_duplicates_and_reserved_ids(fs: FileSystem) -> None:
    with pytest.raises(CardError) as e:
        fs.create_ef("3F00", 0x2FE2, size=1)
    assert sw_of(e) == SW.FILE_ALREADY_EXISTS
    with pytest.raises(CardError) as e:
        fs.create_df("3F00/7F10", 0x7F10)  # the parent's own FID
    assert sw_of(e) == SW.FILE_ALREADY_EXISTS
    with pytest.raises(CardError) as e:
        fs.create_ef("3F00", 0x2F99, size=1, sfi=2)  # SFI 2 is EF.ICCID's
    assert sw_of(e) == SW.FILE_ALREADY_EXISTS
    with pytest.raises(CardError) as e:
        fs.create_adf(USIM)
    assert sw_of(e) == SW.DF_NAME_ALREADY_EXISTS
    with pytest.raises(CardError) as e:
        fs.create_mf()
    assert sw_of(e) == SW.FILE_ALREADY_EXISTS
    for fid in (0x3F00, 0x3FFF, 0x7FFF, 0xFFFF):
        with pytest.raises(ValueError):
            fs.create_ef("3F00", fid, size=1)
    with pytest.raises(ValueError):
        fs.create_ef("3F00", 0x2F98, size=1, sfi=31)
    with pytest.raises(CardError) as e:
        fs.create_ef("3F00/2FE2", 0x0001, size=1)  # an EF has no children
    assert sw_of(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE
    with pytest.raises(CardError) as e:
        fs.create_ef("3F00/1234", 0x0001, size=1)
    assert sw_of(e) == SW.FILE_NOT_FOUND


def test_delete_subtree(fs: FileSystem) -> None:
    st: dict = {}
    sel(fs, st, 8, "7F105F3A4F30")
    fs.delete("3F00/7F10")
    assert fs.info("3F00/7F10/5F3A/4F30") is None and fs.child("3F00", 0x7F10) is None
    assert fs.current_df(st).handle == "3F00"  # a vanished current DF falls back to the MF
    with pytest.raises(CardError):
        sel(fs, st, 0, "7F10")
    fs.create_df("3F00", 0x7F10)  # the FID is free again
    fs.delete("ADF." + USIM.hex().upper())
    with pytest.raises(CardError):
        sel(fs, st, 4, USIM)
    with pytest.raises(CardError):
        fs.delete("3F00")
    assert not any(v is not None and "7F10/5F3A" in k for k, v in fs.store.items())  # type: ignore[attr-defined]


def test_lookup_helpers(fs: FileSystem) -> None:
    assert fs.find([0x7F10, 0x5F3A, 0x4F30]) == "3F00/7F10/5F3A/4F30"
    assert fs.find([0x7F10, 0x1234]) is None
    assert fs.children("3F00/7F10") == ("3F00/7F10/6F3A", "3F00/7F10/5F3A")
    assert [n for n, _ in fs.applications()] == [USIM, ISIM, USIM2]
    assert fs.exists() and not FileSystem(DictStore()).exists()
    st: dict = {}
    info = fs.select_file(st, "3F00/7F10/6F3A")
    assert info.is_record and fs.current_df(st).fid == 0x7F10
