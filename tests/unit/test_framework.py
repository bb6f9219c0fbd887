"""Java Card semantics: transactions under tears, OwnerPIN, channels, transient memory, firewall."""

from __future__ import annotations

import pytest

from applets.sample import COUNTER_CLIENT_AID, COUNTER_SERVER_AID, ECHO_AID, PURSE_AID
from card.framework import (
    APDU,
    CLEAR_ON_DESELECT,
    Applet,
    SecurityException,
    TransactionError,
    persistent,
    transient,
)
from card.runtime import CardRuntime, CardTorn
from tests.unit.cards import sample_card, select, tx


def purse_state(rt: CardRuntime) -> tuple:
    p = rt.applet(PURSE_AID)
    return (p.balance, p.counter, p.last)


def run_with_tear(rt: CardRuntime, apdu: str, n: int) -> bool:
    """Send `apdu` with a tear armed after n writes; True if the tear happened."""
    rt.nvm.tear_after(n)
    try:
        rt.process(bytes.fromhex(apdu))
    except CardTorn:
        rt.power_on()
        return True
    rt.nvm.tear_after(None)
    return False


def test_transaction_tear_at_every_write_is_all_or_nothing() -> None:
    """CREDIT changes balance, counter and the last record in one transaction."""
    rt = sample_card()
    tx(rt, "80300000040000000A")
    before = purse_state(rt)
    after = None
    n = 0
    while True:
        rt.reset()
        torn = run_with_tear(rt, "803000000400000005", n)
        state = purse_state(rt)
        if not torn:
            after = state
            break
        assert state == before, f"tear after {n} writes left a mixed state {state}"
        n += 1
    assert n >= 3  # three fields and the commit point were each a tear point
    assert after == (15, 2, bytes.fromhex("00020100000005") + b"\x00")


def test_pin_tear_never_gives_a_free_guess() -> None:
    rt = sample_card()
    pin = rt.applet(PURSE_AID).pin
    for candidate in ("31323335", "31323334"):  # wrong, then right
        n = 0
        while True:
            rt.reset()
            tries_before = pin.tries_remaining
            torn = run_with_tear(rt, f"00200001 04 {candidate}".replace(" ", ""), n)
            tries_after = pin.tries_remaining
            if not torn:
                break
            # A torn VERIFY never raises the counter, and the PIN is not validated.
            assert tries_after <= tries_before
            assert tx(rt, "0020000100").startswith("63C")
            n += 1
        assert n >= 1
    # The last, untorn, correct VERIFY restored the counter.
    assert pin.tries_remaining == 3


def test_pin_counts_down_and_blocks() -> None:
    rt = sample_card()
    assert tx(rt, "0020000100") == "63C3"
    assert tx(rt, "002000010431313131") == "63C2"
    assert tx(rt, "002000010431313131") == "63C1"
    assert tx(rt, "002000010431323334") == "9000"  # correct: back to 3
    assert tx(rt, "0020000100") == "9000"
    for left in (2, 1, 0):
        assert tx(rt, "002000010431313131") == f"63C{left}"
    assert tx(rt, "002000010431323334") == "6983"
    assert rt.applet(PURSE_AID).pin.tries_remaining == 0


def test_security_status_is_per_channel_and_lost_on_reset() -> None:
    rt = sample_card()
    assert tx(rt, "0070000001") == "019000"
    assert tx(rt, select(PURSE_AID, cla=1)) == "9000"  # the purse is multiselectable
    assert tx(rt, "80300000040000000A") == "9000"
    assert tx(rt, "002000010431323334") == "9000"  # PIN on channel 0 only
    assert tx(rt, "81400000040000000A") == "6982"  # DEBIT on channel 1: not verified there
    assert tx(rt, "80400000040000000A") == "9000"
    rt.reset()
    assert tx(rt, "80400000040000000A") == "6982"


def test_two_applets_on_two_channels_keep_separate_state() -> None:
    rt = sample_card()
    tx(rt, "0070000001")
    tx(rt, select(ECHO_AID, cla=1))
    assert rt.selected_aid(0) == PURSE_AID and rt.selected_aid(1) == ECHO_AID
    assert tx(rt, "8002000A") == "6D00"  # the purse on channel 0 has no GENERATE
    assert tx(rt, "8102000A") == "610A"  # the echo applet on channel 1 does
    assert tx(rt, "80500000") == "6104"  # pending data is per channel too
    assert tx(rt, "81C000000A") == "000102030405060708099000"
    assert tx(rt, "80C0000004") == "000000009000"


def test_non_multiselectable_applet_refused_on_second_channel() -> None:
    rt = sample_card()
    tx(rt, select(COUNTER_CLIENT_AID))
    tx(rt, "0070000001")
    assert tx(rt, select(COUNTER_CLIENT_AID, cla=1)) == "6985"


def test_firewall_refuses_direct_access_and_allows_shareable() -> None:
    rt = sample_card()
    tx(rt, select(COUNTER_CLIENT_AID))
    assert tx(rt, "8010000002") == "00019000"
    assert tx(rt, "8010000002") == "00029000"
    assert rt.firewall_violations == 0
    assert tx(rt, "8011000001") == "6982"  # reading the server's field directly: refused
    assert rt.firewall_violations == 1
    assert rt.exceptions == 0
    assert rt.applet(COUNTER_SERVER_AID).value == 2  # the card itself may look


def test_shareable_proxy_exposes_only_the_interface() -> None:
    rt = sample_card()
    client = rt.applet(COUNTER_CLIENT_AID)
    ctx = client._ctx
    proxy = rt.call_in_context(ctx, ctx.system.get_shareable, COUNTER_SERVER_AID)
    assert proxy is not None
    assert rt.call_in_context(ctx, proxy.increment) == 1
    with pytest.raises(SecurityException):
        proxy.value  # noqa: B018 - a field, not an interface method
    with pytest.raises(SecurityException):
        proxy.process  # noqa: B018
    # The server grants its interface only to the client it was installed for.
    echo_ctx = rt.applet(ECHO_AID)._ctx
    assert rt.call_in_context(echo_ctx, echo_ctx.system.get_shareable, COUNTER_SERVER_AID) is None


class _TxApplet(Applet):
    a = persistent(0)
    b = persistent(0)
    seen = transient(0)
    sticky = transient(0, clear_on=CLEAR_ON_DESELECT)

    def process(self, apdu: APDU) -> bytes | None:
        sysm = self.system
        if apdu.ins == 0x01:  # nested begin
            sysm.begin_transaction()
            sysm.begin_transaction()
        if apdu.ins == 0x02:  # exception inside a transaction
            sysm.begin_transaction()
            self.a = 99
            raise ValueError("boom")
        if apdu.ins == 0x03:  # returns with a transaction open
            sysm.begin_transaction()
            self.b = 77
            return None
        if apdu.ins == 0x04:
            self.seen += 1
            self.sticky += 1
            return bytes((self.seen, self.sticky))
        if apdu.ins == 0x05:
            self.undeclared = 1  # type: ignore[attr-defined]
        return None


def _tx_card() -> CardRuntime:
    rt = CardRuntime()
    rt.install(_TxApplet, b"\xf0\x00\x00\x00\x01", default=True)
    rt.install(_TxApplet, b"\xf0\x00\x00\x00\x02")
    rt.power_on()
    return rt


def test_nested_transaction_refused() -> None:
    rt = _tx_card()
    assert tx(rt, "80010000") == "6F00"
    assert "TransactionError" in (rt.last_exception or "")
    assert not rt.nvm.in_transaction


def test_exception_in_transaction_rolls_back() -> None:
    rt = _tx_card()
    assert tx(rt, "80020000") == "6F00"
    assert rt.applet(b"\xf0\x00\x00\x00\x01").a == 0
    assert tx(rt, "80030000") == "9000"
    assert rt.applet(b"\xf0\x00\x00\x00\x01").b == 0  # returned with it open: aborted


def test_transient_fields_cleared_on_reset_and_deselect() -> None:
    rt = _tx_card()
    assert tx(rt, "8004000000") == "01019000"
    assert tx(rt, "8004000000") == "02029000"
    tx(rt, "00A4040C05F000000002")
    tx(rt, "00A4040C05F000000001")
    assert tx(rt, "8004000000") == "03019000"  # deselect cleared only the sticky one
    rt.reset()
    assert tx(rt, "8004000000") == "01019000"


def test_undeclared_state_is_refused() -> None:
    rt = _tx_card()
    assert tx(rt, "80050000") == "6F00"
    assert "not declared" in (rt.last_exception or "")


def test_transaction_error_type() -> None:
    rt = _tx_card()
    with pytest.raises(TransactionError):
        rt.nvm.commit()


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000, 65535])
def test_echo_generate_answers_the_counting_pattern(n: int) -> None:
    """GENERATE (80 02 P1 P2) answers P1P2 bytes 00 01 .. FF 00 01 .. (extended Le)."""
    rt = sample_card()
    assert tx(rt, select(ECHO_AID)) == "9000"
    le = "000000" if n > 256 else "00"
    resp = bytes.fromhex(tx(rt, f"8002{n:04X}{le}"))
    assert resp[-2:] == b"\x90\x00"
    assert resp[:-2] == bytes(i & 0xFF for i in range(n))


def test_the_framework_uses_only_the_public_names_of_card_nvm() -> None:
    """Regression: card.framework.applet imported the private `card.nvm._check_value`
    (for a persistent field's default); the public `card.nvm.stored_form` gives the same."""
    import ast
    from pathlib import Path

    import card.framework

    private = []
    for path in sorted(Path(card.framework.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "card.nvm":
                private += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert private == []
