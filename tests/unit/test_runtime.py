"""CardRuntime: CLA decoding, SELECT, GET RESPONSE, chaining, channels, errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from applets.sample import (
    COUNTER_CLIENT_AID,
    COUNTER_SERVER_AID,
    ECHO_AID,
    PURSE_AID,
    EchoApplet,
)
from card.framework import APDU, CardError
from card.framework.exceptions import SecurityException
from card.framework.system import Context
from card.nvm import PowerLoss
from card.runtime import CardRuntime, CardStateError
from tests.unit.cards import sample_card, select, tx


@pytest.fixture
def card() -> CardRuntime:
    return sample_card()


def test_power_on_returns_atr_and_selects_default(card: CardRuntime) -> None:
    assert card.reset() == card.atr
    assert card.selected_aid(0) == PURSE_AID
    assert tx(card, "8050000004") == "000000009000"


def test_unpowered_card_refuses() -> None:
    rt = sample_card(power=False)
    with pytest.raises(CardStateError):
        rt.process(bytes.fromhex("8050000004"))


def test_select_full_and_partial_aid(card: CardRuntime) -> None:
    assert tx(card, select(ECHO_AID)) == "9000"
    assert card.selected_aid(0) == ECHO_AID
    # FCI requested with Le: 6F { 84 AID }
    resp = tx(card, f"00A4040009{ECHO_AID.hex()}00")
    assert resp == f"6F0B8409{ECHO_AID.hex().upper()}9000"
    # Right-truncated name: the first matching applet in registry order is the purse.
    assert tx(card, "00A4040C05F043415244") == "9000"
    assert card.selected_aid(0) == PURSE_AID
    # Next occurrence of the same partial name: the echo applet; then the counters; then none.
    assert tx(card, "00A4040E05F043415244") == "9000"
    assert card.selected_aid(0) == ECHO_AID
    tx(card, "00A4040E05F043415244")
    tx(card, "00A4040E05F043415244")
    assert tx(card, "00A4040E05F043415244") == "6A82"
    # Last occurrence
    assert tx(card, "00A4040D05F043415244") == "9000"
    assert card.selected_aid(0).hex().endswith("04")


def test_select_unknown_aid(card: CardRuntime) -> None:
    # With an applet selected the SELECT is forwarded to it; the purse does not know it.
    assert tx(card, "00A4040C05A000000001") == "6D00"
    card.process(bytes.fromhex("0070800100"[:8]) if False else bytes.fromhex("00708001"))
    rt = CardRuntime()
    rt.power_on()
    assert tx(rt, "00A4040C05A000000001") == "6A82"
    assert tx(rt, "80500000") == "6999"


def test_response_without_le_uses_61xx_and_get_response(card: CardRuntime) -> None:
    tx(card, select(ECHO_AID))
    assert tx(card, "8002000A") == "610A"
    assert tx(card, "00C0000005") == "00010203046105"
    assert tx(card, "00C0000007") == "6C05"  # wrong Le: exact length 5
    assert tx(card, "00C0000005") == "05060708099000"
    assert tx(card, "00C0000000") == "6985"  # nothing pending


def test_a_t1_only_card_answers_data_without_le() -> None:
    from card.atr import build_atr

    rt = sample_card()
    rt.set_atr(build_atr((1,)).to_bytes())
    assert rt.t1_only
    tx(rt, select(ECHO_AID))
    assert tx(rt, "8002000A") == "000102030405060708099000"  # no 61xx on T=1
    resp = rt.process(bytes.fromhex("80020258"))  # 600 bytes: 256, then 61xx
    assert resp[:256] == bytes(range(256)) and resp[-2:] == b"\x61\x00"
    rt.set_atr(build_atr((0, 1)).to_bytes())
    assert not rt.t1_only
    assert tx(rt, "8002000A") == "610A"


def test_long_response_chunks(card: CardRuntime) -> None:
    tx(card, select(ECHO_AID))
    expected = bytes(i & 0xFF for i in range(600))
    got = bytearray()
    resp = card.process(bytes.fromhex("8002025800"))
    while True:
        got += resp[:-2]
        if resp[-2] != 0x61:
            break
        resp = card.process(bytes((0, 0xC0, 0, 0, resp[-1])))
    assert resp[-2:] == b"\x90\x00"
    assert bytes(got) == expected


def test_extended_length_response(card: CardRuntime) -> None:
    tx(card, select(ECHO_AID))
    resp = card.process(bytes.fromhex("80020258") + b"\x00\x00\x00")
    assert resp == bytes(i & 0xFF for i in range(600)) + b"\x90\x00"


def test_other_command_discards_pending(card: CardRuntime) -> None:
    tx(card, select(ECHO_AID))
    tx(card, "8002000A")
    assert tx(card, "8001000002AABB00") == "AABB9000"
    assert tx(card, "00C0000000") == "6985"


@given(st.binary(min_size=1, max_size=1500), st.integers(1, 255))
def test_command_chaining_assembles(data: bytes, chunk: int) -> None:
    rt = sample_card()
    tx(rt, select(ECHO_AID))
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for part in parts[:-1]:
        assert rt.process(bytes((0x10, 0x01, 0, 0, len(part))) + part) == b"\x90\x00"
    last = parts[-1]
    resp = rt.process(bytes((0x00, 0x01, 0, 0, len(last))) + last + b"\x00\x00"[:1])
    out = bytearray(resp[:-2])
    while resp[-2] == 0x61:
        resp = rt.process(bytes((0, 0xC0, 0, 0, resp[-1])))
        out += resp[:-2]
    assert bytes(out) == data


def test_chain_interrupted_by_other_header(card: CardRuntime) -> None:
    tx(card, select(ECHO_AID))
    assert tx(card, "1001000002AABB") == "9000"
    assert tx(card, "0002000002") == "6883"
    # the chain was discarded: a fresh command works
    assert tx(card, "0001000001CC00") == "CC9000"


def test_invalid_cla_and_closed_channel(card: CardRuntime) -> None:
    assert tx(card, "FFA4000000") == "6E00"
    assert tx(card, "01A4040C05F043415244") == "6881"  # channel 1 not open
    assert tx(card, "4FA4040C05F043415244") == "6881"


def test_manage_channel_open_close(card: CardRuntime) -> None:
    assert tx(card, "0070000001") == "019000"
    assert tx(card, "0070000001") == "029000"
    assert tx(card, "0070000500") == "9000"  # explicit channel 5 (Le absent)
    assert card.open_channels() == [0, 1, 2, 5]
    assert tx(card, "0070000500") == "6A81"  # already open
    assert tx(card, "0070001400") == "6881"  # 20 is beyond the card's channels
    # Channel 5 is in the further class: CLA C1 (proprietary, as the purse wants).
    assert tx(card, "C150000004") == "000000009000"
    assert tx(card, "00708005") == "9000"
    assert tx(card, "C150000004") == "6881"
    assert tx(card, "01708000") == "9000"  # close the channel the command came on
    assert card.open_channels() == [0, 2]
    assert tx(card, "00708000") == "6A86"  # the basic channel cannot be closed
    assert tx(card, "0070010001") == "6A86"


def test_channel_exhaustion() -> None:
    rt = CardRuntime(max_channels=4)
    rt.power_on()
    for n in (1, 2, 3):
        assert tx(rt, "0070000001") == f"{n:02X}9000"
    assert tx(rt, "0070000001") == "6A81"


def test_new_channel_inherits_applet_from_non_basic_origin(card: CardRuntime) -> None:
    tx(card, "0070000001")
    tx(card, select(ECHO_AID, cla=1))
    assert tx(card, "0170000001") == "029000"
    assert card.selected_aid(2) == ECHO_AID  # inherited from channel 1
    tx(card, "0070000001")
    assert card.selected_aid(3) == PURSE_AID  # from the basic channel: the default


class _CrashApplet(EchoApplet):
    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x03:
            raise RuntimeError("deliberate crash for tests")
        return super().process(apdu)


def test_applet_exception_becomes_6f00_and_is_counted() -> None:
    card = CardRuntime()
    card.install(_CrashApplet, ECHO_AID, default=True)
    card.power_on()
    assert card.exceptions == 0
    assert tx(card, "8003000000") == "6F00"
    assert card.exceptions == 1
    assert "deliberate crash" in (card.last_exception or "")
    assert tx(card, "8001000001AA00") == "AA9000"  # the card carries on


def test_malformed_apdu_answers_6700(card: CardRuntime) -> None:
    assert tx(card, "00A404") == "6700"
    assert tx(card, "00A4040005A000") == "6700"
    assert card.exceptions == 0


def test_gsm_class_get_response_uses_9fxx() -> None:
    rt = sample_card()
    tx(rt, select(ECHO_AID))
    assert tx(rt, "A002000A") == "9F0A"
    assert tx(rt, "A0C000000A") == "000102030405060708099000"


def test_select_with_session_termination(card: CardRuntime) -> None:
    tx(card, select(ECHO_AID))
    assert tx(card, "00A4044C05F043415244") == "9000"
    assert card.selected_aid(0) is None
    assert tx(card, "00A4044C05F043415244") == "6A82"
    assert tx(card, "00A4041C05F043415244") == "6A86"  # undefined P2 bits


def test_default_applet_per_channel(card: CardRuntime) -> None:
    card.set_default(ECHO_AID, channels=[2])
    card.reset()
    assert card.selected_aid(0) == PURSE_AID
    assert tx(card, "0070000200") == "9000"
    assert card.selected_aid(2) == ECHO_AID
    assert tx(card, "0070000001") == "019000"
    assert card.selected_aid(1) == PURSE_AID
    # SELECT with an empty name selects the channel's default applet.
    tx(card, select(PURSE_AID, cla=2))
    assert tx(card, "02A4040C00") == "9000"
    assert card.selected_aid(2) == ECHO_AID


@pytest.mark.parametrize("operation", ["delete", "set_lifecycle", "set_default"])
def test_registry_changes_survive_tears_consistently(operation: str) -> None:
    """A tear at any write of a registry change leaves memory and NVM in one state."""
    n = 0
    while True:
        rt = sample_card()
        before = rt.applets()
        rt.nvm.tear_after(n)
        try:
            rt.nvm.begin()
            if operation == "delete":
                rt.delete(ECHO_AID)
            elif operation == "set_lifecycle":
                rt.set_lifecycle(ECHO_AID, 0x83)
            else:
                rt.set_default(ECHO_AID)
            rt.nvm.commit()
        except PowerLoss:
            rt.power_on()
            assert rt.applets() == before, f"tear after {n} writes"
            # The in-memory view answers like the stored one.
            assert tx(rt, select(ECHO_AID)) == "9000"
            n += 1
            continue
        rt.nvm.tear_after(None)
        break
    assert rt.applets() != before
    rt.reset()
    reopened = rt.applets()
    assert reopened != before


class _WarningApplet(EchoApplet):
    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x04:  # a warning with 12 bytes of data, like GP GET STATUS's 6310
            raise CardError(0x6310, bytes(range(12)))
        return super().process(apdu)


def test_warning_with_data_respects_ne() -> None:
    card = CardRuntime()
    card.install(_WarningApplet, ECHO_AID, default=True)
    card.power_on()
    assert tx(card, "8004000000") == "000102030405060708090A0B6310"
    assert tx(card, "800400000C") == "000102030405060708090A0B6310"
    assert tx(card, "8004000001") == "6C0C"  # Ne too small: the exact length
    assert tx(card, "80040000") == "6310"  # no Le: the warning alone


def _echo_deselected_in_a_transaction() -> tuple[CardRuntime, Context | None]:
    """A card with the echo applet selected on channel 1 (opened by MANAGE CHANNEL), then a
    transaction begun and the applet's deselection ordered in it: (card, channel 1's context)."""
    rt = sample_card()
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, cla=1)) == "9000"
    ctx = rt.selected_context(1)
    rt.nvm.begin()
    assert rt.deselect_everywhere(ECHO_AID) == [1]
    return rt, ctx


@pytest.mark.parametrize("outcome", ["commit", "abort", "tear"])
def test_a_deselection_inside_a_transaction_takes_effect_only_at_commit(outcome: str) -> None:
    """`deselect_everywhere` inside a transaction (a profile disabled and deleted in one) is
    part of the operation: done when it commits, not at all when it rolls back (the echo
    applet stays selected on channel 1, the same instance), lost with the power on a tear.
    A `delete` in the same transaction counts the instance as out of use already."""
    rt, ctx = _echo_deselected_in_a_transaction()
    nvm = rt.nvm
    assert rt.selected_context(1) is ctx  # not yet
    if outcome == "tear":
        nvm.tear_after(0)
        with pytest.raises(PowerLoss):
            rt.delete(ECHO_AID)
        rt.power_on()
        assert ECHO_AID in [bytes(a) for a, *_ in rt.applets()]
        assert rt.selected_context(1) is None  # every channel closed with the power
        return
    rt.delete(ECHO_AID)
    if outcome == "abort":
        nvm.abort()
        assert rt.selected_context(1) is ctx and rt.applet(ECHO_AID) is ctx.applet
        assert tx(rt, "01CA000000")[-4:] != "6999"  # the echo applet answers
        nvm.begin()
        nvm.commit()  # a later commit does not replay the forgotten deselection
        assert rt.selected_context(1) is ctx
    else:
        nvm.commit()
        assert rt.selected_context(1) is None
        assert tx(rt, "01CA000000") == "6999"
        assert ECHO_AID not in [bytes(a) for a, *_ in rt.applets()]


@pytest.mark.parametrize("rounds", [1, 2])
def test_a_rollback_of_delete_then_reinstall_keeps_the_selected_instance(rounds: int) -> None:
    """Regression: deselect, delete, and install of the same class at the same AID in one
    transaction (`rounds` times), then a rollback: the registry gets back the instance
    channel 1 still has selected (the first one deleted), not a reinstalled one."""
    rt, ctx = _echo_deselected_in_a_transaction()
    nvm = rt.nvm
    for _ in range(rounds):
        rt.delete(ECHO_AID)
        rt.install(EchoApplet, ECHO_AID)
    nvm.abort()
    assert rt.selected_context(1) is ctx
    assert rt._entries[ECHO_AID].ctx is ctx and rt.applet(ECHO_AID) is ctx.applet
    assert tx(rt, "01CA000000")[-4:] != "6999"  # the echo applet answers


# -- selection gates (Applet.selection_gate) ------------------------------------------

GATE_AID = bytes.fromhex("F04341524445474154")
_GATE: dict[str, Any] = {}


class _Gate(EchoApplet):
    """Gates the echo applet: `_GATE["open"]` decides, `_GATE["fail"]` raises."""

    selection_gate = True

    def gated_aids(self) -> tuple[bytes, ...]:
        return (ECHO_AID,)

    def may_select(self, aid: bytes) -> bool:
        _GATE["asked"].append(bytes(aid))
        if _GATE["fail"]:
            raise RuntimeError("deliberate failure for tests")
        return bool(_GATE["open"])


def _gated_card() -> CardRuntime:
    _GATE.update(open=False, fail=False, asked=[])
    rt = sample_card(power=False)
    rt.install(_Gate, GATE_AID)
    rt.power_on()
    return rt


def test_a_gated_instance_answers_as_a_locked_one_and_writes_nothing() -> None:
    locked = sample_card()
    locked.set_lifecycle(ECHO_AID, 0x83)  # LOCKED
    rt = _gated_card()
    before = rt.nvm.snapshot()
    for sel in (select(ECHO_AID), f"00A40400{len(ECHO_AID):02X}{ECHO_AID.hex()}00"):
        assert tx(rt, sel) == tx(locked, sel) != "9000"
    assert tx(rt, "0070000001") == tx(locked, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == tx(locked, select(ECHO_AID, 1))
    assert rt.selected_aid(1) != ECHO_AID
    assert rt.nvm.snapshot() == before
    assert set(_GATE["asked"]) == {ECHO_AID}  # only the gated instance is asked
    _GATE["open"] = True
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    assert rt.selected_aid(1) == ECHO_AID
    assert tx(rt, select(PURSE_AID)) == "9000"  # ungated: never asked
    assert set(_GATE["asked"]) == {ECHO_AID}
    assert rt.exceptions == 0


def test_a_gated_instance_is_not_selected_implicitly() -> None:
    rt = _gated_card()
    rt.set_default(ECHO_AID, [2])
    assert tx(rt, "0070000200") == "9000"
    assert rt.selected_aid(2) is None  # the default refused: nothing selected
    assert tx(rt, "02CA000000") == "6999"
    assert tx(rt, "0070800200") == "9000"
    _GATE["open"] = True
    assert tx(rt, "0070000200") == "9000"
    assert rt.selected_aid(2) == ECHO_AID


def test_a_gate_that_fails_refuses_and_is_counted() -> None:
    rt = _gated_card()
    _GATE.update(open=True, fail=True)
    assert tx(rt, f"00A40400{len(ECHO_AID):02X}{ECHO_AID.hex()}") != "9000"
    assert rt.selected_aid(0) != ECHO_AID
    assert rt.exceptions == 1
    assert "deliberate failure" in (rt.last_exception or "")
    _GATE["fail"] = False
    assert tx(rt, select(ECHO_AID)) == "9000"


def _echo(channel: int) -> str:
    return f"{channel:02X}01000002CAFE00"


@pytest.mark.parametrize("how", ["gate closed", "locked"])
def test_a_selected_instance_that_may_no_longer_run_is_deselected_at_its_next_command(
    how: str,
) -> None:
    """Regression: an instance selected while its gate was open (or while SELECTABLE) went
    on answering on its channel after the gate closed (or SET STATUS locked it) until the
    terminal reselected. Now its channel's next command deselects it and is answered as
    on a channel with nothing selected (6999); a SELECT of it answers 6A82; the other
    channels and applets are untouched; nothing is written."""
    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    assert tx(rt, _echo(1)) == "CAFE9000"
    if how == "locked":
        rt.set_lifecycle(ECHO_AID, 0x87)  # LOCKED from SELECTABLE (GP SET STATUS 80)
    else:
        _GATE["open"] = False
    before = rt.nvm.snapshot()
    assert tx(rt, _echo(1)) == "6999"
    assert rt.selected_aid(1) is None
    assert tx(rt, _echo(1)) == "6999"
    assert tx(rt, select(ECHO_AID, 1)) == "6A82"
    assert tx(rt, select(PURSE_AID, 1)) == "9000"  # another application: selectable
    assert tx(rt, "00CA000000") != "6999"  # channel 0's purse: untouched
    assert rt.nvm.snapshot() == before
    assert rt.exceptions == 0


def test_pending_data_of_an_instance_gated_off_is_not_handed_out() -> None:
    """Data the instance left for GET RESPONSE goes with its selection."""
    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, select(ECHO_AID)) == "9000"
    assert tx(rt, "8001000002CAFE") == "6102"  # no Le: the data waits
    _GATE["open"] = False
    assert tx(rt, "00C0000002") == "6985"  # nothing waits (ISO 7816-4 §11.7.1)
    assert rt.selected_aid(0) is None


COUNTER_GATE_AID = bytes.fromhex("F0434152444547415402")


class _CounterGate(_Gate):
    """Gates the counter server (the Shareable interface's server) the same way."""

    def gated_aids(self) -> tuple[bytes, ...]:
        return (COUNTER_SERVER_AID,)


def test_a_gated_server_offers_no_shareable_interface() -> None:
    """Regression: `get_shareable` did not ask the gate, so a profile's applet the card
    refuses to select could still run for another applet through the firewall."""
    _GATE.update(open=True, fail=False, asked=[])
    rt = sample_card(power=False)
    rt.install(_CounterGate, COUNTER_GATE_AID)
    rt.power_on()
    assert tx(rt, select(COUNTER_CLIENT_AID)) == "9000"
    assert tx(rt, "8010000000") == "00019000"
    _GATE["open"] = False
    before = rt.nvm.snapshot()
    assert tx(rt, "8010000000") == "6985"  # the client's answer for no interface
    assert rt.nvm.snapshot() == before  # the server's counter did not move
    _GATE["open"] = True
    assert tx(rt, "8010000000") == "00029000"
    assert rt.exceptions == 0


def test_a_shareable_proxy_kept_from_before_the_gate_closed_is_refused() -> None:
    """A client that kept the proxy it got while the gate was open does not reach the
    server after the gate closes: the call is refused (SecurityException), the
    server's code does not run."""
    _GATE.update(open=True, fail=False, asked=[])
    rt = sample_card(power=False)
    rt.install(_CounterGate, COUNTER_GATE_AID)
    rt.power_on()
    client = rt.applet(COUNTER_CLIENT_AID)
    proxy = client.system.get_shareable(COUNTER_SERVER_AID)
    assert proxy is not None
    assert rt.call_in_context(client._ctx, proxy.increment) == 1
    _GATE["open"] = False
    with pytest.raises(SecurityException):
        rt.call_in_context(client._ctx, proxy.increment)
    _GATE["open"] = True
    assert rt.call_in_context(client._ctx, proxy.increment) == 2


def test_a_shareable_proxy_kept_from_before_its_server_was_locked_is_refused() -> None:
    """Regression (review G): the kept proxy asked only the selection gate, so a client
    still ran a LOCKED server's code, though `get_shareable` refuses a LOCKED server.
    Now refused as for a gated one (SecurityException); unlocked, it works again."""
    rt = sample_card()
    client: Any = rt.applet(COUNTER_CLIENT_AID)
    proxy: Any = client.system.get_shareable(COUNTER_SERVER_AID)
    assert proxy is not None
    assert rt.call_in_context(client._ctx, proxy.increment) == 1
    rt.set_lifecycle(COUNTER_SERVER_AID, 0x87)  # LOCKED (GP SET STATUS 80)
    assert client.system.get_shareable(COUNTER_SERVER_AID) is None  # a new lookup: refused
    before = rt.nvm.snapshot()
    with pytest.raises(SecurityException):
        rt.call_in_context(client._ctx, proxy.increment)  # the kept proxy: refused too
    assert rt.nvm.snapshot() == before  # the server's counter did not move
    rt.set_lifecycle(COUNTER_SERVER_AID, 0x07)  # unlocked: SELECTABLE
    assert rt.call_in_context(client._ctx, proxy.increment) == 2


def test_a_shareable_proxy_of_a_deleted_server_is_refused() -> None:
    """A proxy kept from before its server was deleted does not run the gone instance."""
    rt = sample_card()
    client: Any = rt.applet(COUNTER_CLIENT_AID)
    proxy: Any = client.system.get_shareable(COUNTER_SERVER_AID)
    assert proxy is not None
    rt.delete(COUNTER_SERVER_AID)
    with pytest.raises(SecurityException):
        rt.call_in_context(client._ctx, proxy.increment)


def test_manage_channel_open_from_a_gated_channel_selects_nothing() -> None:
    """Regression (review G): MANAGE CHANNEL OPEN from a non-basic channel whose instance
    the gate just deselected (`_end_unusable`, at that very command) selected the card's
    default applet on the new channel. Java Card RE (MANAGE CHANNEL OPEN): from a
    channel other than 0 the new channel gets the origin's selection, here none."""
    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    default = rt.selected_aid(0)
    assert default is not None and default != ECHO_AID
    _GATE["open"] = False
    assert tx(rt, "0170000000") == "029000"  # opened from channel 1
    assert rt.selected_aid(1) is None  # the gated instance went
    assert rt.selected_aid(2) is None
    # From the basic channel: the default, as before; from a channel with an applet
    # selected normally: that applet.
    assert tx(rt, "0070000000") == "039000"
    assert rt.selected_aid(3) == default
    assert tx(rt, select(PURSE_AID, 2)) == "9000"
    assert tx(rt, "0270000000") == "049000"
    assert rt.selected_aid(4) == PURSE_AID
    assert rt.exceptions == 0


def test_manage_channel_open_from_a_channel_with_nothing_selected_selects_nothing(
    card: CardRuntime,
) -> None:
    """Java Card RE: from a non-basic channel the origin's selection, none if none."""
    assert tx(card, "0070000001") == "019000"
    assert card.selected_aid(1) == PURSE_AID  # the default, from channel 0
    # Application session termination (TS 102 221 §11.1.1.2): channel 1 left empty.
    assert tx(card, f"01A4044C{len(PURSE_AID):02X}{PURSE_AID.hex()}") == "9000"
    assert card.selected_aid(1) is None
    assert tx(card, "0170000001") == "029000"
    assert card.selected_aid(2) is None
    assert tx(card, "02CA000000") == "6999"


class _Spy:
    """Counts the echo applet's `deselect()` calls (the real one runs too)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = EchoApplet.deselect

        def deselect(applet: EchoApplet) -> None:
            self.calls += 1
            real(applet)

        monkeypatch.setattr(EchoApplet, "deselect", deselect)


@pytest.mark.parametrize("how", ["next command", "channel closed", "locked"])
def test_a_gated_off_instance_s_deselection_runs_none_of_its_code(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review G: `_end_unusable` and MANAGE CHANNEL CLOSE called a gated-off instance's
    `deselect()`: a profile not activated ran code of its. Now the runtime deselects it
    without calling it, and clears its CLEAR_ON_DESELECT memory itself. A LOCKED (not
    gated) instance's `deselect()` still runs."""
    spy = _Spy(monkeypatch)
    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    ctx = rt.selected_context(1)
    assert ctx is not None
    ctx.deselect_transient["session"] = b"secret of the session"
    if how == "locked":
        rt.set_lifecycle(ECHO_AID, 0x87)
    else:
        _GATE["open"] = False
    if how == "channel closed":
        assert tx(rt, "00708001") == "9000"
    else:
        assert tx(rt, _echo(1)) == "6999"
    assert rt.selected_context(1) is None
    assert ctx.deselect_transient == {}
    assert spy.calls == (1 if how == "locked" else 0)
    assert rt.exceptions == 0


def test_deliver_refuses_an_instance_its_gate_refuses() -> None:
    """`CardRuntime.deliver` (GP STORE DATA's way to an application) checks the gate itself:
    6985 while it is closed, the applet's code not run; open, the command reaches it."""
    rt = _gated_card()
    cmd = APDU.parse(bytes.fromhex("8001000002CAFE"))
    with pytest.raises(CardError) as e:
        rt.deliver(ECHO_AID, cmd)
    assert e.value.sw == 0x6985
    assert _GATE["asked"] == [ECHO_AID]
    _GATE["open"] = True
    assert rt.deliver(ECHO_AID, cmd) == b"\xca\xfe"
    with pytest.raises(CardError) as e:
        rt.deliver(bytes.fromhex("F0FFFFFFFF"), cmd)
    assert e.value.sw == 0x6A88


class _AbortingApplet(EchoApplet):
    """INS 05: writes, then answers 6A88 (ISO 7816-4: NVM unchanged). P1 00: the write in a
    transaction the error aborts; 01: outside any; 02: in one, then one outside."""

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins != 0x05:
            return super().process(apdu)
        store = self.system.store
        if apdu.p1 == 0x01:
            store.set("x", bytes(apdu.data))
        else:
            try:
                with self.system.transaction():
                    store.set("x", bytes(apdu.data))
                    store.set("y", bytes(apdu.data))
                    raise CardError(0x6A88)
            except CardError:
                if apdu.p1 == 0x02:
                    store.set("x", bytes(apdu.data))
                raise
        raise CardError(0x6A88)


@pytest.mark.parametrize(("p1", "violations"), [("00", 0), ("01", 1), ("02", 1)])
def test_an_error_after_an_aborted_transaction_is_no_partial_write(
    p1: str, violations: int
) -> None:
    """Regression: writes an abort undid counted as a change of persistent memory, so a
    command that rolled its transaction back whole, then answered an "NVM unchanged"
    status word (the ISD-R's DisableProfile over a gone SD), was reported a partial
    write (`nvm_violations`); a write that stays still is."""
    card = CardRuntime()
    card.install(_AbortingApplet, ECHO_AID, default=True)
    card.power_on()
    before = card.nvm.snapshot()
    assert tx(card, f"8005{p1}0001AA") == "6A88"
    assert (card.nvm.snapshot() == before) is (violations == 0)
    assert card.nvm_violations == violations
    assert card.exceptions == 0


def test_manage_channel_open_copying_a_non_multiselectable_applet_is_refused() -> None:
    """Java Card RE §4.5.1: from a channel other than 0 the candidate is the origin's
    applet; 'if the candidate applet instance is not a multiselectable applet and the
    candidate applet's context is active, the Java Card RE shall close the new logical
    channel' and answer 6985. The runtime's comment cites the RE for this branch, but
    `_do_select(strict=False)` returns silently and the channel stays open, empty."""
    rt = sample_card()
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(COUNTER_CLIENT_AID, cla=1)) == "9000"  # not multiselectable
    assert tx(rt, "0170000000") == "6985"
    assert rt.open_channels() == [0, 1]


class _Shy(EchoApplet):
    """A multiselectable applet whose select() refuses while `refuse` is set."""

    multiselectable = True
    refuse = False

    def select(self) -> bool:
        return not _Shy.refuse


def test_manage_channel_open_copying_an_applet_that_refuses_selection_answers_6999() -> None:
    """JC RE 3.0.5 §4.5.1 step 10: the candidate's select() refusing closes the new
    channel with 6999 (SW_APPLET_SELECT_FAILED), as a refused SELECT answers; a
    multiselectable applet that accepts is copied to the new channel."""
    aid = bytes.fromhex("F0434152444555D5A901")
    rt = sample_card()
    rt.install(_Shy, aid)
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(aid, cla=1)) == "9000"
    try:
        _Shy.refuse = True
        assert tx(rt, "0170000000") == "6999"
        assert rt.open_channels() == [0, 1]
    finally:
        _Shy.refuse = False
    assert tx(rt, "0170000000") == "029000"
    assert rt.open_channels() == [0, 1, 2]


def _count_deselects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = EchoApplet.deselect

    def deselect(applet: EchoApplet) -> None:
        calls.append(1)
        real(applet)

    monkeypatch.setattr(EchoApplet, "deselect", deselect)
    return calls


def test_deselect_everywhere_runs_no_code_of_a_gated_off_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`_gated_off`'s rule: 'a profile not activated runs none of its code, not even its
    clean-up'. The card's own deselection of the instance (`deselect_everywhere`, what a
    profile switch or delete does) calls its `deselect()` while its gate refuses it."""
    calls = _count_deselects(monkeypatch)
    rt = _gated_card()
    _GATE["open"] = True
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(ECHO_AID, 1)) == "9000"
    _GATE["open"] = False  # gated off while selected; no command on channel 1 since
    assert rt.deselect_everywhere(ECHO_AID) == [1]
    assert rt.selected_context(1) is None
    assert calls == []
