"""Access conditions enforced by the file system: per file, per operation, per channel,
compact/expanded/EF.ARR-referenced (ISO 7816-4 §7.4.3; TS 102 221 §9.2; TS 31.102 §4.2.55)."""

from __future__ import annotations

from typing import Any

import pytest

from card.fs import (
    ADM1,
    ALW,
    NEV,
    PIN1,
    PIN2,
    FileSystem,
    Referenced,
    StaticEnvironment,
    Structure,
    any_of,
    rules,
)
from card.fs.fcp import Compact
from card.fs.security import UNIVERSAL_PIN, encode_rules
from card.sw import SW, CardError

USIM = bytes.fromhex("A0000000871002FFFFFFFF8907090000")

NOBODY = StaticEnvironment()
USER = StaticEnvironment(frozenset({PIN1}))
USER2 = StaticEnvironment(frozenset({PIN1, PIN2}))
ADMIN = StaticEnvironment(frozenset({ADM1}))

ARR_MF = [
    encode_rules(read=ALW, update=ADM1, activate=ADM1, deactivate=ADM1),  # 1
    encode_rules(read=PIN1, update=PIN1, activate=ADM1, deactivate=ADM1),  # 2
    encode_rules(read=ALW, update=PIN2, increase=PIN1),  # 3
    encode_rules(read=NEV, update=NEV),  # 4
]


class DictStore(dict):
    def set(self, key: str, value: Any) -> None:
        self[key] = value


def build() -> FileSystem:
    fs = FileSystem(DictStore())
    fs.create_mf(security=Referenced(0x2F06, 1), pins=(PIN1, PIN2, ADM1))
    fs.create_ef(
        "3F00",
        0x2F06,
        Structure.LINEAR_FIXED,
        record_length=48,
        data=ARR_MF,
        security=Referenced(0x2F06, 1),
    )
    fs.create_ef("3F00", 0x2FE2, size=10, sfi=2, security=Referenced(0x2F06, 1))
    fs.create_ef("3F00", 0x2F07, size=4, security=Referenced(0x2F06, 4))
    fs.create_ef("3F00", 0x2F08, size=4, security=Referenced(0x2F06, 9))  # no such record
    fs.create_ef("3F00", 0x2F09, size=4, security=Referenced(0x2F99, 1))  # no such EF.ARR
    # compact: AM 03 = UPDATE (b2), READ (b1); SC bytes in bit order b2 then b1:
    # UPDATE needs user authentication with SE/key 01, READ always.
    fs.create_ef("3F00", 0x2F0A, size=4, security=Compact(0x03, (0x11, 0x00)))
    # SE-dependent: SE 01 -> record 3, SE 00 -> record 2 (TS 102 221 Annex G.2)
    fs.create_ef("3F00", 0x2F0B, size=4, security=bytes.fromhex("8B062F0601030002"))
    tel = fs.create_df("3F00", 0x7F10, security=Referenced(0x2F06, 1))
    fs.create_ef(
        tel,
        0x6F3A,
        Structure.LINEAR_FIXED,
        record_length=4,
        records=3,
        sfi=1,
        security=Referenced(0x2F06, 2),
    )
    fs.create_ef(
        tel,
        0x6F3B,
        Structure.CYCLIC,
        record_length=3,
        records=2,
        data=[b"\x00\x00\x01"],
        increase=True,
        security=Referenced(0x2F06, 3),
    )
    fs.create_ef(
        tel,
        0x6F3C,
        size=4,
        security=rules(read=any_of(PIN1, UNIVERSAL_PIN), update=ADM1),
    )
    adf = fs.create_adf(USIM, security=Referenced(0x6F06, 1))
    fs.create_ef(
        adf,
        0x6F06,
        Structure.LINEAR_FIXED,
        record_length=32,
        data=[encode_rules(read=PIN1, update=ADM1, activate=ADM1, deactivate=ADM1)],
        security=Referenced(0x6F06, 1),
    )
    fs.create_ef(adf, 0x6F07, size=9, security=Referenced(0x6F06, 1))
    fs.create_ef(adf, 0x6F08, size=4, security=Referenced(0x2F06, 3))  # found in the MF
    return fs


@pytest.fixture
def fs() -> FileSystem:
    return build()


def path(fs: FileSystem, st: dict, hexpath: str) -> None:
    fs.select(st, 0x08, 0x0C, bytes.fromhex(hexpath))


def denied(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except CardError as e:
        if e.sw == SW.SECURITY_STATUS_NOT_SATISFIED:
            return True
        raise
    return False


def test_arr_record_rules_for_read_and_update(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "2FE2")
    assert fs.read_binary(st, NOBODY, 0, 0, 10) == b"\xff" * 10
    assert denied(fs.update_binary, st, USER, 0, 0, b"\x00")
    fs.update_binary(st, ADMIN, 0, 0, b"\x00")
    path(fs, st, "2F07")  # NEVER either way, whoever asks
    assert denied(fs.read_binary, st, StaticEnvironment(frozenset(range(256))), 0, 0, 4)


def test_pin_protected_records(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "7F106F3A")
    assert denied(fs.read_record, st, NOBODY, 1, 0x04, 4)
    assert denied(fs.read_record, st, ADMIN, 1, 0x04, 4)
    assert fs.read_record(st, USER, 1, 0x04, 4) == b"\xff" * 4
    assert denied(fs.search_record, st, NOBODY, 1, 0x04, b"\xff")  # SEARCH needs READ
    assert fs.search_record(st, USER, 1, 0x04, b"\xff") == b"\x01\x02\x03"
    assert denied(fs.update_record, st, NOBODY, 1, 0x04, b"abcd")
    fs.update_record(st, USER, 1, 0x04, b"abcd")
    # by SFI too: the rule of the EF named is checked
    st2: dict = {}
    path(fs, st2, "7F10")
    assert denied(fs.read_record, st2, NOBODY, 1, (1 << 3) | 0x04, 4)
    assert fs.read_record(st2, USER, 1, (1 << 3) | 0x04, 4) == b"abcd"


def test_failed_access_leaves_pointer_and_content(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "7F106F3A")
    fs.read_record(st, USER, 0, 0x02, 4)
    assert denied(fs.read_record, st, NOBODY, 0, 0x02, 4)
    assert fs.current_record(st) == 1
    assert denied(fs.update_record, st, NOBODY, 0, 0x02, b"zzzz")
    assert fs.read("3F00/7F10/6F3A") == (b"\xff" * 4,) * 3


def test_access_is_per_channel(fs: FileSystem) -> None:
    # the applet supplies one environment per logical channel: PIN1 verified on
    # channel 0 opens nothing on channel 1
    ch0: dict = {}
    ch1: dict = {}
    envs = {0: USER, 1: NOBODY}
    path(fs, ch0, "7F106F3A")
    path(fs, ch1, "7F106F3A")
    assert fs.read_record(ch0, envs[0], 1, 0x04, 4) == b"\xff" * 4
    assert denied(fs.read_record, ch1, envs[1], 1, 0x04, 4)


def test_compact_attributes(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "2F0A")
    assert fs.read_binary(st, NOBODY, 0, 0, 4) == b"\xff" * 4
    assert denied(fs.update_binary, st, ADMIN, 0, 0, b"\x01")
    fs.update_binary(st, USER, 0, 0, b"\x01")


def test_expanded_attributes_with_or(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "7F106F3C")
    assert denied(fs.read_binary, st, ADMIN, 0, 0, 4)
    fs.read_binary(st, USER, 0, 0, 4)
    fs.read_binary(st, StaticEnvironment(frozenset({UNIVERSAL_PIN})), 0, 0, 4)
    assert denied(fs.update_binary, st, USER, 0, 0, b"\x00")
    fs.update_binary(st, ADMIN, 0, 0, b"\x00")


def test_se_dependent_reference(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "2F0B")
    # SE 00: record 2, READ needs PIN1; SE 01: record 3, READ always
    assert denied(fs.read_binary, st, StaticEnvironment(se=0), 0, 0, 4)
    assert fs.read_binary(st, StaticEnvironment(se=1), 0, 0, 4) == b"\xff" * 4


def test_missing_arr_or_record_denies(fs: FileSystem) -> None:
    everyone = StaticEnvironment(frozenset(range(256)))
    st: dict = {}
    path(fs, st, "2F08")
    assert denied(fs.read_binary, st, everyone, 0, 0, 4)
    path(fs, st, "2F09")
    assert denied(fs.read_binary, st, everyone, 0, 0, 4)


def test_arr_search_prefers_the_adf_then_the_mf(fs: FileSystem) -> None:
    st: dict = {}
    fs.select(st, 0x04, 0x0C, USIM)
    fs.select(st, 0x00, 0x0C, b"\x6f\x07")
    assert denied(fs.read_binary, st, NOBODY, 0, 0, 9)  # ADF-level 6F06 record 1: PIN1
    fs.read_binary(st, USER, 0, 0, 9)
    fs.select(st, 0x00, 0x0C, b"\x6f\x08")  # 8B 2F06: not in the ADF, found in the MF
    fs.read_binary(st, NOBODY, 0, 0, 4)
    assert denied(fs.update_binary, st, USER, 0, 0, b"\x00")
    fs.update_binary(st, USER2, 0, 0, b"\x00")


def test_changing_an_arr_record_changes_the_rule(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "7F106F3A")
    assert denied(fs.read_record, st, NOBODY, 1, 0x04, 4)
    # ADM updates record 2 of EF.ARR through UPDATE RECORD: READ becomes ALW
    arr: dict = {}
    path(fs, arr, "2F06")
    new = encode_rules(read=ALW, update=PIN1).ljust(48, b"\xff")
    assert denied(fs.update_record, arr, USER, 2, 0x04, new)
    fs.update_record(arr, ADMIN, 2, 0x04, new)
    assert fs.read_record(st, NOBODY, 1, 0x04, 4) == b"\xff" * 4
    # and back: the cached rule of the old record bytes is not reused wrongly
    fs.update_record(arr, ADMIN, 2, 0x04, ARR_MF[1].ljust(48, b"\xff"))
    assert denied(fs.read_record, st, NOBODY, 1, 0x04, 4)


def test_resolved_rule_follows_files_created_and_deleted_on_the_way(fs: FileSystem) -> None:
    # The rule of ADF/6F08 (8B 2F06 03) is resolved once and kept; an EF.ARR 2F06
    # created in the ADF afterwards is nearer and must win, and deleting it again
    # must bring back the MF's record 3 (READ ALW).
    st: dict = {}
    fs.select(st, 0x04, 0x0C, USIM)
    fs.select(st, 0x00, 0x0C, b"\x6f\x08")
    for _ in range(2):
        assert fs.read_binary(st, NOBODY, 0, 0, 4) == b"\xff" * 4
    adf = fs.current_df(st).handle
    near = fs.create_ef(
        adf,
        0x2F06,
        Structure.LINEAR_FIXED,
        record_length=16,
        data=[encode_rules(read=ALW), encode_rules(read=ALW), encode_rules(read=NEV)],
    )
    assert denied(fs.read_binary, st, ADMIN, 0, 0, 4)
    fs.delete(near)
    assert fs.read_binary(st, NOBODY, 0, 0, 4) == b"\xff" * 4
    # a change of the MF's record 3 is seen too (and on the way back)
    arr: dict = {}
    path(fs, arr, "2F06")
    fs.update_record(arr, ADMIN, 3, 0x04, encode_rules(read=NEV).ljust(48, b"\xff"))
    assert denied(fs.read_binary, st, ADMIN, 0, 0, 4)
    fs.update_record(arr, ADMIN, 3, 0x04, ARR_MF[2].ljust(48, b"\xff"))
    assert fs.read_binary(st, NOBODY, 0, 0, 4) == b"\xff" * 4


def test_increase_rule(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "7F106F3B")
    # INCREASE has its own rule (AM DO 84 32: PIN1) -- not UPDATE's PIN2
    assert denied(fs.increase, st, NOBODY, 0, 0, b"\x01")
    assert fs.increase(st, USER, 0, 0, b"\x01") == b"\x00\x00\x02\x01"
    assert denied(fs.update_record, st, USER, 0, 0x03, b"\x00\x00\x00")
    fs.update_record(st, USER2, 0, 0x03, b"\x00\x00\x00")
    assert fs.increase(st, USER, 0, 0, b"\x05") == b"\x00\x00\x05\x05"


def test_increase_falls_back_to_update_rule() -> None:
    fs = FileSystem(DictStore())
    fs.create_mf()
    fs.create_ef(
        "3F00",
        0x6F01,
        Structure.CYCLIC,
        record_length=2,
        records=2,
        data=[b"\x00\x01"],
        increase=True,
        security=rules(read=ALW, update=PIN1),
    )
    st: dict = {}
    fs.select(st, 0, 0x0C, b"\x6f\x01")
    assert denied(fs.increase, st, NOBODY, 0, 0, b"\x01")
    assert fs.increase(st, USER, 0, 0, b"\x01") == b"\x00\x02\x01"


def test_deactivate_and_activate(fs: FileSystem) -> None:
    st: dict = {}
    path(fs, st, "2FE2")
    assert denied(fs.set_activation, st, USER, 0, 0, b"", False)
    fs.set_activation(st, ADMIN, 0, 0, b"", False)
    assert fs.info("3F00/2FE2").lcs == 0x04  # type: ignore[union-attr]
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ADMIN, 0, 0, 1)
    assert e.value.sw == SW.FILE_DEACTIVATED
    with pytest.raises(CardError) as e:
        fs.update_binary(st, ADMIN, 0, 0, b"\x01")
    assert e.value.sw == SW.FILE_DEACTIVATED
    with pytest.raises(CardError) as e:
        fs.select(st, 0, 0x04, b"\x2f\xe2")
    assert e.value.sw == SW.FILE_DEACTIVATED
    # ACTIVATE naming the file by path, from elsewhere: it becomes current
    path(fs, st, "7F10")
    fs.set_activation(st, ADMIN, 0x08, 0, b"\x2f\xe2", True)
    assert fs.current_ef(st).fid == 0x2FE2
    assert fs.read_binary(st, NOBODY, 0, 0, 1) == b"\xff"


def test_activation_errors(fs: FileSystem) -> None:
    st: dict = {}
    with pytest.raises(CardError) as e:
        fs.set_activation(st, ADMIN, 0, 0, b"", False)
    assert e.value.sw == SW.COMMAND_NOT_ALLOWED_NO_EF
    with pytest.raises(CardError) as e:
        fs.set_activation(st, ADMIN, 0, 1, b"", False)
    assert e.value.sw == SW.INCORRECT_P1P2
    with pytest.raises(CardError) as e:
        fs.set_activation(st, ADMIN, 0x04, 0, USIM, False)
    assert e.value.sw == SW.INCORRECT_P1P2
    fs.create_ef("3F00", 0x2F0F, size=1, lcs=0x0C)
    with pytest.raises(CardError) as e:
        fs.set_activation(st, ADMIN, 0, 0, b"\x2f\x0f", True)
    assert e.value.sw == SW.FILE_TERMINATED
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ADMIN, 0, 0, 1)
    assert e.value.sw == SW.FILE_TERMINATED


def test_usable_when_deactivated() -> None:
    fs = FileSystem(DictStore())
    fs.create_mf()
    fs.create_ef("3F00", 0x2F01, size=2, lcs=0x04, usable_deactivated=True)
    st: dict = {}
    with pytest.raises(CardError):
        fs.select(st, 0, 0x04, b"\x2f\x01")
    assert fs.read_binary(st, NOBODY, 0, 0, 2) == b"\xff\xff"


def test_unrestricted_without_attributes() -> None:
    fs = FileSystem(DictStore())
    fs.create_mf()
    fs.create_ef("3F00", 0x2F01, size=2)
    st: dict = {}
    fs.select(st, 0, 0x0C, b"\x2f\x01")
    fs.update_binary(st, NOBODY, 0, 0, b"\x01\x02")
    fs.set_activation(st, NOBODY, 0, 0, b"", False)
    fs.set_activation(st, NOBODY, 0, 0, b"", True)
    assert fs.read_binary(st, NOBODY, 0, 0, 2) == b"\x01\x02"


def test_access_rules_view(fs: FileSystem) -> None:
    info = fs.info("3F00/7F10/6F3A")
    assert info is not None and info.rules is None and info.reference == Referenced(0x2F06, 2)
    r = fs.access_rules(info)
    assert r.alternatives(0x01) == (frozenset({PIN1}),)
    mf = fs.info("3F00")
    assert mf is not None and fs.access_rules(mf).alternatives(0x08) == (frozenset({ADM1}),)
