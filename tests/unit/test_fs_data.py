"""READ/UPDATE BINARY, READ/UPDATE/SEARCH RECORD, INCREASE.

ISO 7816-4 §11.3-11.4; ETSI TS 102 221 §11.1.3-11.1.8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from card.fs import FileSystem, StaticEnvironment, Structure
from card.sw import SW, CardError

ENV = StaticEnvironment()
CONTENT = bytes((i * 7 + 3) & 0xFF for i in range(300))


class DictStore(dict):
    def set(self, key: str, value: Any) -> None:
        self[key] = value


@dataclass
class Cmd:
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None


def build() -> FileSystem:
    fs = FileSystem(DictStore())
    fs.create_mf()
    fs.create_ef("3F00", 0x2F05, size=300, data=CONTENT, sfi=5)
    fs.create_ef("3F00", 0x2FE2, size=10, sfi=2, data=bytes(range(10)))
    fs.create_ef(
        "3F00",
        0x6F3A,
        Structure.LINEAR_FIXED,
        record_length=4,
        data=[b"\x01\x01\x01\x01", b"ABCD", b"xyAB", b"\x04\x04\x04\x04"],
        sfi=10,
    )
    fs.create_ef(
        "3F00",
        0x6F3B,
        Structure.CYCLIC,
        record_length=3,
        data=[b"\x00\x00\x03", b"\x00\x00\x02", b"\x00\x00\x01"],
        sfi=11,
        increase=True,
    )
    fs.create_df("3F00", 0x7F10)
    return fs


@pytest.fixture
def fs() -> FileSystem:
    return build()


def select(fs: FileSystem, st: dict, fid: int) -> None:
    fs.select(st, 0, 0x0C, fid.to_bytes(2, "big"))


def sw(excinfo: pytest.ExceptionInfo[CardError]) -> int:
    return excinfo.value.sw


# -- Binary ------------------------------------------------------------------------


def test_read_binary_offsets(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x2F05)
    assert fs.read_binary(st, ENV, 0, 0, 128) == CONTENT[:128]
    assert fs.read_binary(st, ENV, 0x01, 0x00, 16) == CONTENT[256:272]  # 15-bit offset
    assert fs.read_binary(st, ENV, 0x00, 0xFF, 1) == CONTENT[255:256]
    # Le = 00: as many as there are, up to 256, no warning
    assert fs.read_binary(st, ENV, 0x01, 0x00, 256) == CONTENT[256:]
    assert fs.read_binary(st, ENV, 0, 0, 256) == CONTENT[:256]


def test_read_binary_end_of_file_and_offset_outside(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x2FE2)
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0, 6, 8)
    assert sw(e) == SW.END_OF_FILE and e.value.data == bytes(range(6, 10))
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0, 10, 1)
    assert sw(e) == SW.WRONG_P1P2
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0x7F, 0xFF, 1)
    assert sw(e) == SW.WRONG_P1P2


def test_read_binary_needs_a_transparent_current_ef(fs: FileSystem) -> None:
    st: dict = {}
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0, 0, 1)
    assert sw(e) == SW.COMMAND_NOT_ALLOWED_NO_EF
    select(fs, st, 0x7F10)
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0, 0, 1)
    assert sw(e) == SW.COMMAND_NOT_ALLOWED_NO_EF
    select(fs, st, 0x3F00)
    select(fs, st, 0x6F3A)
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0, 0, 1)
    assert sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE


def test_binary_by_sfi_makes_the_ef_current(fs: FileSystem) -> None:
    st: dict = {}
    assert fs.read_binary(st, ENV, 0x80 | 2, 3, 4) == bytes(range(3, 7))
    assert fs.current_ef(st).fid == 0x2FE2
    fs.update_binary(st, ENV, 0x80 | 5, 0x10, b"\xaa\xbb")
    assert fs.current_ef(st).fid == 0x2F05
    assert fs.read_binary(st, ENV, 0, 0x0F, 4) == CONTENT[15:16] + b"\xaa\xbb" + CONTENT[18:19]
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0x80 | 9, 0, 1)  # no EF with SFI 9 in the MF
    assert sw(e) == SW.FILE_NOT_FOUND
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0xA2, 0, 1)  # b7-b6 must be 00
    assert sw(e) == SW.INCORRECT_P1P2
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0x8A, 0, 1)  # SFI 10 is a record EF
    assert sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE
    select(fs, st, 0x7F10)
    with pytest.raises(CardError) as e:
        fs.read_binary(st, ENV, 0x82, 0, 1)  # SFIs are looked up in the current DF
    assert sw(e) == SW.FILE_NOT_FOUND


def test_update_binary(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x2FE2)
    fs.update_binary(st, ENV, 0, 8, b"\xee\xff")
    assert fs.read("3F00/2FE2") == bytes(range(8)) + b"\xee\xff"
    with pytest.raises(CardError) as e:
        fs.update_binary(st, ENV, 0, 9, b"\x00\x00")  # runs past the end
    assert sw(e) == SW.WRONG_LENGTH
    with pytest.raises(CardError) as e:
        fs.update_binary(st, ENV, 0, 10, b"\x00")
    assert sw(e) == SW.WRONG_P1P2
    with pytest.raises(CardError) as e:
        fs.update_binary(st, ENV, 0, 0, b"")
    assert sw(e) == SW.WRONG_LENGTH
    assert fs.read("3F00/2FE2") == bytes(range(8)) + b"\xee\xff"  # failures wrote nothing


# -- Records -----------------------------------------------------------------------


def test_read_record_absolute_and_current(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3A)
    assert fs.read_record(st, ENV, 2, 0x04, 4) == b"ABCD"
    assert fs.current_record(st) == 0  # absolute mode does not move the pointer
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 0, 0x04, 4)  # no current record yet
    assert sw(e) == SW.RECORD_NOT_FOUND
    fs.read_record(st, ENV, 0, 0x02, 4)
    assert fs.read_record(st, ENV, 0, 0x04, 4) == b"\x01" * 4  # current
    for bad in (5, 0xFF):
        with pytest.raises(CardError) as e:
            fs.read_record(st, ENV, bad, 0x04, 4)
        assert sw(e) == SW.RECORD_NOT_FOUND


def test_read_record_le(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3A)
    assert fs.read_record(st, ENV, 2, 0x04, 256) == b"ABCD"  # Le = 00
    assert fs.read_record(st, ENV, 2, 0x04, None) == b"ABCD"
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 2, 0x04, 2)
    assert sw(e) == 0x6C04  # Le too short: the exact length
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 2, 0x04, 6)
    assert sw(e) == SW.END_OF_FILE and e.value.data == b"ABCD"


def test_linear_next_previous_stop_at_the_ends(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3A)
    got = [fs.read_record(st, ENV, 0, 0x02, 4) for _ in range(4)]
    assert got == [b"\x01" * 4, b"ABCD", b"xyAB", b"\x04" * 4]
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 0, 0x02, 4)  # no wrap on a linear fixed EF
    assert sw(e) == SW.RECORD_NOT_FOUND
    assert fs.current_record(st) == 4  # unchanged by the failure
    assert fs.read_record(st, ENV, 0, 0x03, 4) == b"xyAB"
    st2: dict = {}
    select(fs, st2, 0x6F3A)
    assert fs.read_record(st2, ENV, 0, 0x03, 4) == b"\x04" * 4  # previous, unset: the last
    fs.read_record(st2, ENV, 1, 0x04, 4)
    for _ in range(3):
        fs.read_record(st2, ENV, 0, 0x03, 4)
    with pytest.raises(CardError) as e:
        fs.read_record(st2, ENV, 0, 0x03, 4)
    assert sw(e) == SW.RECORD_NOT_FOUND and fs.current_record(st2) == 1


def test_cyclic_next_previous_wrap(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3B)
    got = [fs.read_record(st, ENV, 0, 0x02, 3)[2] for _ in range(5)]
    assert got == [3, 2, 1, 3, 2]  # record 1 is the newest; next wraps to record 1
    st2: dict = {}
    select(fs, st2, 0x6F3B)
    got = [fs.read_record(st2, ENV, 0, 0x03, 3)[2] for _ in range(4)]
    assert got == [1, 2, 3, 1]  # previous: from the last (oldest) record, wrapping


def test_record_modes_and_sfi(fs: FileSystem) -> None:
    st: dict = {}
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 1, 0x04, 4)
    assert sw(e) == SW.COMMAND_NOT_ALLOWED_NO_EF
    assert fs.read_record(st, ENV, 3, (10 << 3) | 0x04, 4) == b"xyAB"  # SFI 10
    assert fs.current_ef(st).fid == 0x6F3A
    fs.read_record(st, ENV, 0, 0x02, 4)
    assert fs.current_record(st) == 1
    fs.read_record(st, ENV, 0, (10 << 3) | 0x02, 4)  # same EF by SFI keeps the pointer
    assert fs.current_record(st) == 2
    fs.read_record(st, ENV, 0, (11 << 3) | 0x02, 3)  # another EF by SFI: a fresh pointer
    assert fs.current_ef(st).fid == 0x6F3B and fs.current_record(st) == 1
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 1, 0xF8 | 0x04, 4)  # SFI 11111 is RFU
    assert sw(e) == SW.INCORRECT_P1P2
    for mode in (0x00, 0x01, 0x05, 0x06, 0x07):
        with pytest.raises(CardError) as e:
            fs.read_record(st, ENV, 1, mode, 3)
        assert sw(e) == SW.INCORRECT_P1P2
    with pytest.raises(CardError) as e:
        fs.read_record(st, ENV, 1, (5 << 3) | 0x04, 4)  # SFI 5 is transparent
    assert sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE


def test_update_record_linear(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3A)
    fs.update_record(st, ENV, 2, 0x04, b"WXYZ")
    assert fs.record("3F00/6F3A", 2) == b"WXYZ" and fs.current_record(st) == 0
    fs.update_record(st, ENV, 0, 0x02, b"next")  # unset pointer: record 1
    assert fs.record("3F00/6F3A", 1) == b"next" and fs.current_record(st) == 1
    fs.update_record(st, ENV, 0, 0x04, b"curr")
    assert fs.record("3F00/6F3A", 1) == b"curr"
    with pytest.raises(CardError) as e:
        fs.update_record(st, ENV, 0, 0x03, b"prev")  # before record 1
    assert sw(e) == SW.RECORD_NOT_FOUND
    with pytest.raises(CardError) as e:
        fs.update_record(st, ENV, 1, 0x04, b"toolong")
    assert sw(e) == SW.WRONG_LENGTH
    with pytest.raises(CardError) as e:
        fs.update_record(st, ENV, 1, 0x04, b"abc")
    assert sw(e) == SW.WRONG_LENGTH
    assert fs.read("3F00/6F3A") == (b"curr", b"WXYZ", b"xyAB", b"\x04" * 4)


def test_update_record_cyclic_overwrites_the_oldest(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3B)
    fs.read_record(st, ENV, 0, 0x02, 3)
    fs.read_record(st, ENV, 0, 0x02, 3)
    fs.update_record(st, ENV, 0, 0x03, b"\x00\x00\x04")
    # the oldest (01) is gone, the new record is record 1 and the current record
    assert fs.read("3F00/6F3B") == (b"\x00\x00\x04", b"\x00\x00\x03", b"\x00\x00\x02")
    assert fs.current_record(st) == 1
    assert fs.read_record(st, ENV, 0, 0x04, 3) == b"\x00\x00\x04"
    with pytest.raises(CardError) as e:
        fs.update_record(st, ENV, 1, 0x04, b"\x00\x00\x05")  # only PREVIOUS on cyclic
    assert sw(e) == SW.INCORRECT_P1P2


def test_search_record_simple(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3A)
    assert fs.search_record(st, ENV, 1, 0x04, b"AB") == bytes((2, 3))  # anywhere in the record
    assert fs.current_record(st) == 2  # the first record found
    assert fs.search_record(st, ENV, 3, 0x04, b"AB") == bytes((3,))
    assert fs.search_record(st, ENV, 4, 0x05, b"AB") == bytes((3, 2))  # backward
    assert fs.search_record(st, ENV, 0, 0x04, b"\x04") == bytes((4,))
    with pytest.raises(CardError) as e:
        fs.search_record(st, ENV, 1, 0x04, b"zz")  # nothing found
    assert sw(e) == SW.END_OF_FILE and e.value.data == b""
    with pytest.raises(CardError) as e:
        fs.search_record(st, ENV, 1, 0x04, b"ABCDE")  # longer than a record
    assert sw(e) == SW.WRONG_LENGTH
    with pytest.raises(CardError) as e:
        fs.search_record(st, ENV, 5, 0x04, b"A")
    assert sw(e) == SW.RECORD_NOT_FOUND
    assert fs.search_record({}, ENV, 1, (10 << 3) | 0x04, b"xy") == b"\x03"  # by SFI


def test_search_record_enhanced(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3A)
    # from offset 2 of each record, forward from P1
    assert fs.search_record(st, ENV, 1, 0x06, b"\x00\x02AB") == bytes((3,))
    # from the first occurrence of 'B'
    assert fs.search_record(st, ENV, 1, 0x06, b"\x04BCD") == bytes((2,))
    # backward from P1
    assert fs.search_record(st, ENV, 4, 0x06, b"\x01\x00A") == bytes((3, 2))
    # forward from the record after the current one
    select(fs, st, 0x6F3A)
    fs.read_record(st, ENV, 0, 0x02, 4)  # current record: 1
    assert fs.search_record(st, ENV, 0, 0x06, b"\x02\x00A") == bytes((2, 3))
    with pytest.raises(CardError) as e:
        fs.search_record(st, ENV, 1, 0x06, b"\x00\x00")
    assert sw(e) == SW.WRONG_LENGTH


def test_increase(fs: FileSystem) -> None:
    st: dict = {}
    select(fs, st, 0x6F3B)
    assert fs.increase(st, ENV, 0, 0, b"\x01\x00") == b"\x00\x01\x03" + b"\x01\x00"
    assert fs.read("3F00/6F3B") == (b"\x00\x01\x03", b"\x00\x00\x03", b"\x00\x00\x02")
    assert fs.current_record(st) == 1
    with pytest.raises(CardError) as e:
        fs.increase(st, ENV, 0, 0, b"\xff\xff\xff")
    assert sw(e) == 0x9850  # max value reached
    assert fs.read("3F00/6F3B")[0] == b"\x00\x01\x03"
    with pytest.raises(CardError) as e:
        fs.increase(st, ENV, 0, 0, b"\x00\x00\x00\x01")
    assert sw(e) == SW.WRONG_LENGTH
    with pytest.raises(CardError) as e:
        fs.increase(st, ENV, 0, 1, b"\x01")
    assert sw(e) == SW.INCORRECT_P1P2
    select(fs, st, 0x6F3A)
    with pytest.raises(CardError) as e:
        fs.increase(st, ENV, 0, 0, b"\x01")  # not cyclic
    assert sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE


def test_increase_needs_the_attribute() -> None:
    fs = build()
    fs.create_ef("3F00", 0x6F3C, Structure.CYCLIC, record_length=2, records=2)
    st: dict = {}
    select(fs, st, 0x6F3C)
    with pytest.raises(CardError) as e:
        fs.increase(st, ENV, 0, 0, b"\x01")
    assert sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE
    with pytest.raises(ValueError):
        fs.create_ef(
            "3F00", 0x6F3D, Structure.LINEAR_FIXED, record_length=2, records=2, increase=True
        )


def test_process_dispatch(fs: FileSystem) -> None:
    st: dict = {}
    assert fs.process(st, ENV, Cmd(0xA4, 0x00, 0x0C, b"\x2f\xe2")) == b""
    assert fs.process(st, ENV, Cmd(0xB0, 0, 0, ne=4)) == bytes(range(4))
    assert fs.process(st, ENV, Cmd(0xD6, 0, 0, b"\x09")) == b""
    assert fs.process(st, ENV, Cmd(0xB2, 2, (10 << 3) | 4, ne=4)) == b"ABCD"
    assert fs.process(st, ENV, Cmd(0xDC, 2, 4, b"1234")) == b""
    assert fs.process(st, ENV, Cmd(0xA2, 1, 4, b"12")) == b"\x02"
    fs.process(st, ENV, Cmd(0xA4, 0x00, 0x0C, b"\x6f\x3b"))
    assert fs.process(st, ENV, Cmd(0x32, 0, 0, b"\x01")) == b"\x00\x00\x04\x01"
    assert fs.process(st, ENV, Cmd(0xF2, 0, 0x0C)) == b""
    assert fs.process(st, ENV, Cmd(0x04, 0, 0)) == b""
    assert fs.info("3F00/6F3B").lcs == 0x04  # type: ignore[union-attr]
    assert fs.process(st, ENV, Cmd(0x44, 0, 0)) == b""
    with pytest.raises(CardError) as e:
        fs.process(st, ENV, Cmd(0xCE, 0, 0))
    assert sw(e) == SW.INS_NOT_SUPPORTED
    assert fs.INSTRUCTIONS == frozenset(fs._handlers)


def test_builder_content_forms() -> None:
    fs = build()
    fs.create_ef("3F00", 0x4F01, size=4, data=b"\x01")
    assert fs.read("3F00/4F01") == b"\x01\xff\xff\xff"
    fs.create_ef("3F00", 0x4F02, Structure.LINEAR_FIXED, data=[b"ab", b"abcd"], records=3)
    assert fs.read("3F00/4F02") == (b"ab\xff\xff", b"abcd", b"\xff" * 4)
    fs.create_ef("3F00", 0x4F03, data=b"xyz")
    assert fs.info("3F00/4F03").size == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        fs.create_ef("3F00", 0x4F04, size=2, data=b"abc")
    with pytest.raises(ValueError):
        fs.create_ef("3F00", 0x4F05, Structure.LINEAR_FIXED)
    with pytest.raises(ValueError):
        fs.create_ef("3F00", 0x4F06, Structure.BER_TLV, size=3, data=b"\x80\x05ab")
    with pytest.raises(ValueError):
        fs.create_ef("3F00", 0x4F06, Structure.BER_TLV, size=2, data=b"\x80\x01a")
    fs.create_ef("3F00", 0x4F06, Structure.BER_TLV, size=3)  # TS 102 221 §11.3: BER-TLV EF
    assert fs.read("3F00/4F06") == b""
    fs.write("3F00/4F02", [b"1111", b"2222", b"3333"])
    assert fs.record("3F00/4F02", 3) == b"3333"
    with pytest.raises(ValueError):
        fs.write("3F00/4F02", [b"1111"])
    with pytest.raises(ValueError):
        fs.write("3F00/4F01", b"\x00")
    with pytest.raises(CardError):
        fs.record("3F00/4F02", 4)
    with pytest.raises(CardError):
        fs.read("3F00/7F10")


# -- Stateful: record navigation and writes against a model -------------------------


class RecordMachine(RuleBasedStateMachine):
    """READ/UPDATE RECORD on a linear fixed and a cyclic EF, checked against a list model."""

    @initialize(n=st.integers(1, 6), cyclic=st.booleans())
    def setup(self, n: int, cyclic: bool) -> None:
        self.fs = FileSystem(DictStore())
        self.fs.create_mf()
        self.cyclic = cyclic
        self.model = [bytes((i, i)) for i in range(1, n + 1)]
        self.fs.create_ef(
            "3F00",
            0x6F01,
            Structure.CYCLIC if cyclic else Structure.LINEAR_FIXED,
            data=list(self.model),
        )
        self.st: dict = {}
        self.fs.select(self.st, 0, 0x0C, b"\x6f\x01")
        self.ptr = 0

    def _expect(self, mode: int, p1: int) -> int | None:
        n = len(self.model)
        if mode == 4:
            num = p1 or self.ptr
            return num if 1 <= num <= n else None
        if mode == 2:
            if self.ptr == 0:
                return 1
            if self.ptr == n:
                return 1 if self.cyclic else None
            return self.ptr + 1
        if self.ptr == 0:
            return n
        if self.ptr == 1:
            return n if self.cyclic else None
        return self.ptr - 1

    @rule(mode=st.sampled_from([2, 3, 4]), p1=st.integers(0, 7))
    def read(self, mode: int, p1: int) -> None:
        expected = self._expect(mode, p1)
        if expected is None:
            with pytest.raises(CardError) as e:
                self.fs.read_record(self.st, ENV, p1, mode, 2)
            assert e.value.sw == SW.RECORD_NOT_FOUND
            return
        assert self.fs.read_record(self.st, ENV, p1, mode, 2) == self.model[expected - 1]
        if mode != 4:
            self.ptr = expected

    @rule(
        mode=st.sampled_from([2, 3, 4]),
        p1=st.integers(0, 7),
        value=st.binary(min_size=2, max_size=2),
    )
    def update(self, mode: int, p1: int, value: bytes) -> None:
        if self.cyclic:
            if mode != 3:
                with pytest.raises(CardError):
                    self.fs.update_record(self.st, ENV, p1, mode, value)
                return
            self.fs.update_record(self.st, ENV, p1, mode, value)
            self.model = [value] + self.model[:-1]
            self.ptr = 1
            return
        expected = self._expect(mode, p1)
        if expected is None:
            with pytest.raises(CardError):
                self.fs.update_record(self.st, ENV, p1, mode, value)
            return
        self.fs.update_record(self.st, ENV, p1, mode, value)
        self.model[expected - 1] = value
        if mode != 4:
            self.ptr = expected

    @invariant()
    def agrees(self) -> None:
        if hasattr(self, "fs"):
            assert list(self.fs.read("3F00/6F01")) == self.model
            assert self.fs.current_record(self.st) == self.ptr


TestRecordMachine = RecordMachine.TestCase
TestRecordMachine.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
