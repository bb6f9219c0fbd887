"""Kept access grants (`FileSystem.check_access`) follow every change of security state.

READ BINARY of EF.IMSI needs PIN1 (TS 31.102 §4.2.2); the `usim` preset ships PIN1
disabled, which counts as fulfilled (TS 102 221 §9.5.1). Each step below changes
what decides the access: the verified set (a channel's transient state) or the
stored PIN record (persistent), and each answer must follow at once.
"""

from __future__ import annotations

from card.uicc.builder import DEFAULT_USIM_AID
from host.presets import new_card

SELECT_USIM = bytes.fromhex("00A4040C10") + DEFAULT_USIM_AID
SELECT_IMSI = bytes.fromhex("00A4000C026F07")
READ_IMSI = bytes.fromhex("00B0000009")
PIN1 = bytes.fromhex("31323334FFFFFFFF")
WRONG = bytes.fromhex("31323335FFFFFFFF")


def _cmd(header: str, data: bytes = b"") -> bytes:
    return bytes.fromhex(header) + (bytes((len(data),)) + data if data else b"")


def test_grants_follow_verify_enable_and_reset() -> None:
    card = new_card("usim", None, rng_seed=1)
    card.power_on()
    assert card.process(SELECT_USIM) == b"\x90\x00"
    assert card.process(SELECT_IMSI) == b"\x90\x00"
    imsi = card.process(READ_IMSI)
    assert imsi[-2:] == b"\x90\x00"  # PIN1 disabled: fulfilled
    assert card.process(READ_IMSI) == imsi  # the kept grant
    assert card.process(_cmd("00280001", PIN1)) == b"\x90\x00"  # ENABLE: now verified
    assert card.process(READ_IMSI) == imsi
    assert card.process(_cmd("00200001", WRONG)) == b"\x63\xc2"  # no longer verified
    assert card.process(READ_IMSI) == b"\x69\x82"
    assert card.process(READ_IMSI) == b"\x69\x82"
    assert card.process(_cmd("00200001", PIN1)) == b"\x90\x00"
    assert card.process(READ_IMSI) == imsi
    card.reset()  # PIN1 stays enabled, the verified state is gone
    assert card.process(SELECT_USIM) == b"\x90\x00"
    assert card.process(SELECT_IMSI) == b"\x90\x00"
    assert card.process(READ_IMSI) == b"\x69\x82"
    assert card.process(_cmd("00200001", PIN1)) == b"\x90\x00"
    assert card.process(_cmd("00260001", PIN1)) == b"\x90\x00"  # DISABLE
    card.reset()
    assert card.process(SELECT_USIM) == b"\x90\x00"
    assert card.process(SELECT_IMSI) == b"\x90\x00"
    assert card.process(READ_IMSI) == imsi  # disabled again: fulfilled without VERIFY


def test_read_record_follows_update_and_select() -> None:
    """The kept current EF and records of READ RECORD follow UPDATE RECORD and SELECT."""
    card = new_card("usim", None, rng_seed=1)
    card.power_on()
    card.process(SELECT_USIM)
    assert card.process(bytes.fromhex("00A4000C026F40")) == b"\x90\x00"  # EF.MSISDN
    first = card.process(bytes.fromhex("00B2010400"))
    assert first[-2:] == b"\x90\x00"
    new = bytes(range(len(first) - 2))
    assert card.process(_cmd("00DC0104", new)) == b"\x90\x00"  # UPDATE RECORD 1, absolute
    assert card.process(bytes.fromhex("00B2010400")) == new + b"\x90\x00"
    assert card.process(bytes.fromhex("00A4000C026F07")) == b"\x90\x00"  # a transparent EF
    assert card.process(bytes.fromhex("00B2010400")) == b"\x69\x81"
    assert card.process(bytes.fromhex("00A4000C026F40")) == b"\x90\x00"
    assert card.process(bytes.fromhex("00B2010400")) == new + b"\x90\x00"
