"""Status words: members, ranges, and the fallback for unknown values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from card.sw import (
    SW,
    CardError,
    bytes_available,
    describe,
    exact_length,
    is_success,
    nvm_may_change,
    retries_left,
    sw_retries,
)


def test_members_have_descriptions() -> None:
    for member in SW.__members__.values():
        assert member.description, member.name
    assert SW(0x6A82) is SW.FILE_NOT_FOUND
    assert SW.SUCCESS.to_bytes() == b"\x90\x00"


@given(st.integers(0, 0xFFFF))
def test_every_value_converts(value: int) -> None:
    sw = SW(value)
    assert int(sw) == value
    assert sw.description
    assert f"{value:04X}" in str(sw)


def test_ranges() -> None:
    assert bytes_available(0x6110) == 0x10
    assert bytes_available(0x6100) == 256
    assert bytes_available(0x9000) is None
    assert exact_length(0x6C20) == 0x20
    assert retries_left(0x63C2) == 2
    assert retries_left(0x6300) is None
    assert sw_retries(2) == 0x63C2
    assert sw_retries(99) == 0x63CF
    assert "2 tries left" in describe(0x63C2)
    assert "exact length is 16" in describe(0x6C10)
    assert is_success(0x9000) and is_success(0x6105) and not is_success(0x6A82)


def test_nvm_classes_follow_iso7816_4() -> None:
    # 62xx/64xx and checking errors promise unchanged NVM; 63xx/65xx do not.
    assert not nvm_may_change(0x6282)
    assert nvm_may_change(0x63C1)
    assert not nvm_may_change(0x6400)
    assert nvm_may_change(0x6581)
    assert not nvm_may_change(0x6A82)
    assert not nvm_may_change(0x6983)


def test_nvm_gsm_chv_failures_may_follow_a_counter_write() -> None:
    # TS 51.011 §9.4: 9804 / 9840 answer a failed CHV check after the counter went down.
    assert nvm_may_change(0x9804)
    assert nvm_may_change(0x9840)
    assert not nvm_may_change(0x9808)
    assert not nvm_may_change(0x9802)
    assert not nvm_may_change(0x9404)


def test_card_error() -> None:
    e = CardError(SW.WRONG_LENGTH)
    assert e.sw == 0x6700 and "Wrong length" in str(e)


def test_gsm_class_status_words_are_described() -> None:
    assert describe(0x9404).startswith("File ID not found")
    assert "blocked" in describe(0x9840)
    assert describe(0x9202) == "Command successful after 2 internal retries"
    assert "SIM data download error" in describe(0x9E10)
    assert SW(0x9804).description.startswith("Access condition not fulfilled")
