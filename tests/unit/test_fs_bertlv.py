"""BER-TLV EFs: RETRIEVE DATA and SET DATA (ETSI TS 102 221 §11.3), in card.fs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card.fs import FileSystem, StaticEnvironment, Structure
from card.sw import SW, CardError
from card.tlv import build

ENV = StaticEnvironment()


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


def _fs(size: int = 600, data: bytes = b"") -> tuple[FileSystem, dict]:
    fs = FileSystem(DictStore())
    fs.create_mf()
    fs.create_ef("3F00", 0x4F02, Structure.BER_TLV, size=size, data=data, sfi=2)
    state: dict = {}
    fs.select(state, 0, 0x0C, b"\x4f\x02")
    return fs, state


def _sw(e: pytest.ExceptionInfo[CardError]) -> int:
    return e.value.sw


def test_set_retrieve_replace_and_delete() -> None:
    fs, s = _fs()
    assert fs.process(s, ENV, Cmd(0xDB, 0, 0x80, build(0x80, b"abc"))) == b""
    assert fs.process(s, ENV, Cmd(0xDB, 0, 0x80, build(0x9F70, b"x"))) == b""
    assert fs.process(s, ENV, Cmd(0xCB, 0, 0x80, b"\x80")) == build(0x80, b"abc")
    assert fs.process(s, ENV, Cmd(0xCB, 0, 0x80, b"\x9f\x70")) == build(0x9F70, b"x")
    fs.process(s, ENV, Cmd(0xDB, 0, 0x80, build(0x80, b"defg")))  # replaces tag 80
    assert fs.read("3F00/4F02") == build(0x9F70, b"x") + build(0x80, b"defg")
    fs.process(s, ENV, Cmd(0xDB, 0, 0x80, b"\x9f\x70"))  # a tag alone deletes the object
    assert fs.read("3F00/4F02") == build(0x80, b"defg")
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xCB, 0, 0x80, b"\x9f\x70"))
    assert _sw(e) == SW.REFERENCED_DATA_NOT_FOUND


def test_blocks_both_ways() -> None:
    fs, s = _fs()
    value = bytes(range(256)) + bytes(44)
    tlv = build(0x81, value)
    fs.process(s, ENV, Cmd(0xDB, 0, 0x80, tlv[:200]))
    assert fs.read("3F00/4F02") == b""  # not whole yet
    fs.process(s, ENV, Cmd(0xDB, 0, 0x00, tlv[200:]))
    assert fs.read("3F00/4F02") == tlv
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xCB, 0, 0x80, b"\x81", ne=256))
    assert _sw(e) == 0x62F1 and e.value.data == tlv[:256]
    assert fs.process(s, ENV, Cmd(0xCB, 0, 0x00, ne=256)) == tlv[256:]
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xCB, 0, 0x00))
    assert _sw(e) == SW.CONDITIONS_NOT_SATISFIED  # nothing left to retrieve


def test_refusals() -> None:
    fs, s = _fs(size=8)
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xDB, 0, 0x80, build(0x80, b"123456789")))
    assert _sw(e) == SW.NOT_ENOUGH_MEMORY
    assert fs.read("3F00/4F02") == b""
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xDB, 0, 0x80, b"\x80\x02abc"))  # more than announced
    assert _sw(e) == SW.WRONG_LENGTH
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xDB, 0, 0x00, b"abc"))  # a next block with no first
    assert _sw(e) == SW.CONDITIONS_NOT_SATISFIED
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xCB, 0, 0x40, b"\x80"))
    assert _sw(e) == SW.INCORRECT_P1P2
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xCB, 0, 0x80, b"\x80\x00"))  # a tag, not a TLV
    assert _sw(e) == SW.WRONG_DATA
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xB0, 0, 0))
    assert _sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE
    fs.create_ef("3F00", 0x2F05, size=4)
    fs.select(s, 0, 0x0C, b"\x2f\x05")
    with pytest.raises(CardError) as e:
        fs.process(s, ENV, Cmd(0xCB, 0, 0x80, b"\x80"))
    assert _sw(e) == SW.COMMAND_INCOMPATIBLE_WITH_FILE
    # By SFI (P1 b8 = 1, b5-b1 the SFI).
    assert fs.process(s, ENV, Cmd(0xDB, 0x82, 0x80, build(0x80, b"ab"))) == b""
    assert fs.process(s, ENV, Cmd(0xCB, 0x82, 0x80, b"\x80")) == build(0x80, b"ab")
    with pytest.raises(ValueError):
        fs.write("3F00/4F02", b"\x80\x05ab")  # not whole data objects


_TAGS = st.sampled_from([0x80, 0x81, 0x9F70, 0xC0, 0x5F20])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_TAGS, st.binary(max_size=300)), max_size=6))
def test_set_then_retrieve_gives_the_last_value_of_each_tag(objects: list) -> None:
    fs, s = _fs(size=4000)
    last: dict[int, bytes] = {}
    for tag, value in objects:
        tlv = build(tag, value)
        fs.process(s, ENV, Cmd(0xDB, 0, 0x80, tlv[:100]))
        for i in range(100, len(tlv), 100):
            fs.process(s, ENV, Cmd(0xDB, 0, 0x00, tlv[i : i + 100]))
        last[tag] = tlv
    for tag, tlv in last.items():
        got, p2 = b"", 0x80
        data = bytes.fromhex(f"{tag:X}".rjust(2 if tag < 0x100 else 4, "0"))
        while True:
            try:
                got += fs.process(s, ENV, Cmd(0xCB, 0, p2, data if p2 else b"", ne=128))
                break
            except CardError as e:
                assert e.sw == 0x62F1
                got += e.data
                p2 = 0x00
        assert got == tlv
