"""The runtime's side of an applet's quick path (`Applet.quick_process`), and its one parse.

The runtime offers a command to the selected applet's `quick_process` only when
nothing of its own has to happen first: CLA 00-03 (no secure messaging, no
chaining, ISO 7816-4 §5.4.1), an INS the applet names in `quick_ins` and not
SELECT / MANAGE CHANNEL / GET RESPONSE, no response data pending, no chain under
way. A None from it is the ordinary path's to answer. The test applet's quick
answer is marked (51) so each test can tell which path answered.

`APDU.parse` (the runtime's parse, no `CommandApdu` made) gives the fields, and
refuses the bytes, exactly as `CommandApdu.from_bytes`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from applets.sample import ECHO_AID, PURSE_AID, EchoApplet, PurseApplet
from card.apdu import ApduFormatError, CommandApdu
from card.framework import APDU, SW, CardError
from card.runtime import CardRuntime
from tests.unit.cards import select, tx

QUICK = "519000"


class _QuickEcho(EchoApplet):
    """The echo applet with a quick path for INS 01 P1 01 (answers 51 9000, marked)."""

    #: A4, 70 and C0 are the runtime's own: never offered, whatever an applet names
    quick_ins = frozenset({0x01, 0xA4, 0x70, 0xC0})

    seen: list[tuple[bytes, int]] = []

    def quick_process(self, command: bytes, channel: int) -> bytes | None:
        type(self).seen.append((bytes(command), channel))
        if command[2] == 0x01:
            return b"\x51\x90\x00"
        if command[2] == 0x02:
            raise RuntimeError("deliberate crash for tests")
        if command[2] == 0x03:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        return None


@pytest.fixture
def card() -> CardRuntime:
    _QuickEcho.seen = []
    rt = CardRuntime(rng_seed=1)
    rt.install(_QuickEcho, ECHO_AID, default=True)
    rt.install(PurseApplet, PURSE_AID, b"1234")
    rt.power_on()
    return rt


def test_offered_and_answered(card: CardRuntime) -> None:
    assert tx(card, "0001010001AA00") == QUICK
    assert _QuickEcho.seen == [(bytes.fromhex("0001010001AA00"), 0)]
    # None from the quick path: the ordinary path answers (the echo).
    assert tx(card, "0001000001AA00") == "AA9000"
    assert len(_QuickEcho.seen) == 2


def test_errors_in_the_quick_path_are_answered_as_anywhere(card: CardRuntime) -> None:
    assert tx(card, "0001020001AA00") == "6F00"
    assert card.exceptions == 1
    assert tx(card, "0001030001AA00") == "6985"
    assert tx(card, "0001010001AA00") == QUICK  # the card carries on


@pytest.mark.parametrize(
    ("apdu", "answer"),
    [
        ("8001010001AA00", "AA9000"),  # a proprietary class
        ("0401010001AA00", "6882"),  # secure messaging: no applet here unwraps it
        ("0002000400", "000102039000"),  # an INS the applet did not name
        ("00010100", "9000"),  # 4 bytes (case 1): not offered, echoes nothing
        ("0070000001", "019000"),  # MANAGE CHANNEL, named but the runtime's
        ("00C0000000", "6985"),  # GET RESPONSE with nothing pending, the same
    ],
)
def test_not_offered(card: CardRuntime, apdu: str, answer: str) -> None:
    assert tx(card, apdu) == answer
    assert _QuickEcho.seen == []


def test_not_offered_with_pending_data_or_a_chain(card: CardRuntime) -> None:
    assert tx(card, "0002000400") == "000102039000"
    assert tx(card, "00020004") == "6104"  # no Le: the data waits for GET RESPONSE
    assert tx(card, "0001010001AA00") == "AA9000"  # the ordinary path drops it, answers
    assert _QuickEcho.seen == []
    assert tx(card, "00C0000004") == "6985"  # dropped
    assert tx(card, "1001010001AA") == "9000"  # a chain begins
    assert tx(card, "0001010001BB00") == "AABB9000"  # its last command: assembled, echoed
    assert _QuickEcho.seen == []
    assert tx(card, "0001010001AA00") == QUICK


def test_offered_per_channel_and_dropped_with_the_selection(card: CardRuntime) -> None:
    assert tx(card, "0070000001") == "019000"  # channel 1: the default, the echo
    assert tx(card, "0101010001AA00") == QUICK
    assert _QuickEcho.seen == [(bytes.fromhex("0101010001AA00"), 1)]
    assert tx(card, select(PURSE_AID, cla=1)) == "9000"
    assert tx(card, "0101010001AA00") == "6D00"  # the purse: no quick path, no INS 01
    assert tx(card, "0001010001AA00") == QUICK  # channel 0 still has the echo
    assert tx(card, "00708001") == "9000"
    assert tx(card, "0101010001AA00") == "6881"
    # Channels 4-19 (further interindustry class) go the ordinary way.
    assert tx(card, "00700004") == "9000"
    assert tx(card, "4001010001AA00") == "AA9000"
    card.reset()
    assert tx(card, "0001010001AA00") == QUICK
    card.power_off()
    card.power_on()
    assert tx(card, "0001010001AA00") == QUICK


# -- APDU.parse: the runtime's parse ---------------------------------------------------------


def _fields(a: APDU) -> tuple[object, ...]:
    return (a.cla, a.ins, a.p1, a.p2, a.data, a.ne, a.extended, a.channel, a.selecting)


@given(
    st.binary(max_size=300) | st.binary(min_size=7, max_size=7).map(lambda b: b[:4] + b"\0" + b[5:])
)
def test_parse_is_from_bytes(raw: bytes) -> None:
    try:
        cmd = CommandApdu.from_bytes(raw)
    except ApduFormatError as e:
        with pytest.raises(ApduFormatError) as got:
            APDU.parse(raw, 3)
        assert (got.value.sw, got.value.reason) == (e.sw, e.reason)
        return
    parsed = APDU.parse(raw, 3)
    assert _fields(parsed) == _fields(APDU(cmd, 3))
    assert parsed.command == cmd and parsed.command.to_bytes() == bytes(raw)
    assert type(parsed.data) is bytes
    assert APDU.parse(bytearray(raw), 3).data == cmd.data


def test_copies_for_a_select_and_an_assembled_chain() -> None:
    a = APDU.parse(bytes.fromhex("10DB0000020102"), 1)
    sel = a.selecting_copy()
    assert sel.selecting and not a.selecting and _fields(sel)[:8] == _fields(a)[:8]
    whole = a.assembled(0x00, bytes(300))
    assert (whole.cla, whole.ins, whole.data, whole.ne, whole.extended, whole.channel) == (
        0x00,
        0xDB,
        bytes(300),
        None,
        True,
        1,
    )
    assert whole.command == CommandApdu(0x00, 0xDB, 0, 0, bytes(300))
    short = APDU.parse(bytes.fromhex("10DB00000201020A"), 0).assembled(0x00, b"\x01\x02\x03")
    assert short.command.to_bytes() == bytes.fromhex("00DB000003010203" + "0A")


def test_a_locked_selected_applet_s_quick_path_is_not_offered(card: CardRuntime) -> None:
    """Regression: the quick path skipped the check of the ordinary path: an applet
    locked while selected answered its quick commands on until reselected."""
    assert tx(card, "0001010001AA00") == QUICK
    card.set_lifecycle(ECHO_AID, 0x87)  # LOCKED (GP SET STATUS 80)
    _QuickEcho.seen = []
    assert tx(card, "0001010001AA00") == "6999"  # as on a channel with nothing selected
    assert _QuickEcho.seen == []
    assert card.selected_aid(0) is None
