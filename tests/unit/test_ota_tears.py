"""A remote install torn at every NVM write: the SIM ends without the applet or with a working one.

The install is one RAM script (INSTALL [for load], LOAD blocks, INSTALL [for
install and make selectable]) in one command packet over three concatenated
short messages; its writes all happen while the card processes the last
ENVELOPE. For every n the card loses power after n writes of that ENVELOPE,
powers up again, and must then either hold a working notes applet (selectable,
answering its install parameters) or no notes applet at all; the packet's
counter is spent either way (it is written before the script runs), so a replay
is refused, and the server recovers with a new packet: DELETE of whatever the
torn script left, then the install again.
"""

from __future__ import annotations

from applets.notes import NOTES_AID
from card.ota.scp80 import ResponseStatus
from card.runtime import CardRuntime
from host.ota import OtaSender, RamScript, ToolkitTerminal
from host.presets import new_card, ota_test_keysets
from host.readers.base import ReaderError
from host.readers.inprocess import InProcessReader
from tests.unit.test_ota_card import NOTES, install_notes_script

KS = ota_test_keysets()[0]


def _card() -> tuple[CardRuntime, ToolkitTerminal]:
    rt = new_card("usim-ota", rng_seed=2)
    reader = InProcessReader(rt)
    reader.connect()
    terminal = ToolkitTerminal(reader)
    terminal.start()
    return rt, terminal


def _has_working_notes(rt: CardRuntime, terminal: ToolkitTerminal) -> bool:
    present = any(bytes(a) == NOTES_AID for a, *_ in rt.applets())
    if present:
        select = bytes((0x00, 0xA4, 0x04, 0x00, len(NOTES_AID))) + NOTES_AID
        assert terminal.transmit(select)[1] == 0x9000
        assert terminal.transmit(bytes.fromhex("80CA000000")) == (b"hi", 0x9000)
    return present


def test_tear_at_every_write_of_a_remote_install() -> None:
    outcomes = set()
    n = 0
    while True:
        rt, terminal = _card()
        sender = OtaSender(KS)
        msg = sender.secure(install_notes_script().expanded())
        for tpdu in msg.tpdus[:-1]:
            assert terminal.deliver_sms(tpdu).sw == 0x9000
        rt.nvm.tear_after(n)
        try:
            result = terminal.deliver_sms(msg.tpdus[-1])
        except ReaderError:
            rt.nvm.tear_after(None)
            terminal.reader.connect()  # power up: interrupted transactions roll back
            terminal.start()
            assert rt.exceptions == 0
            outcomes.add(_has_working_notes(rt, terminal))
            # The torn packet cannot be played again once its counter was written.
            replay = terminal.deliver_sms(msg.tpdus[-1])
            if replay.user_data:
                por = sender.open_por(replay.user_data)
                assert por.status == ResponseStatus.CNTR_LOW or por.ok
            # The server recovers: remove what is left, install again.
            cleanup = RamScript().delete(NOTES.aid, related=True)
            terminal.deliver_sms(sender.secure(cleanup.expanded()).tpdus[0])
            for tpdu in sender.secure(install_notes_script().expanded()).tpdus:
                result = terminal.deliver_sms(tpdu)
            assert sender.open_por(result.user_data).ok
            assert _has_working_notes(rt, terminal)
            n += 1
            continue
        rt.nvm.tear_after(None)
        assert sender.open_por(result.user_data).ok
        assert _has_working_notes(rt, terminal)
        break
    assert n >= 4  # counter, load file record, application record, applet data, registry
    print(f"{n} tear points, outcomes {sorted(outcomes)}")
    assert outcomes == {False, True} or outcomes == {False}


def test_tear_at_every_write_of_a_remote_put_key() -> None:
    """A key set replaced over the air and torn: afterwards exactly one of old and new works."""
    from dataclasses import replace

    old = KS
    new = replace(KS, kic=bytes(range(0x90, 0xA0)), kid=bytes(range(0xA0, 0xB0)))
    n = 0
    while True:
        rt, terminal = _card()
        sender = OtaSender(old)
        (tpdu,) = sender.secure(RamScript().put_key(new, old, replace=True).expanded()).tpdus
        rt.nvm.tear_after(n)
        try:
            result = terminal.deliver_sms(tpdu)
        except ReaderError:
            rt.nvm.tear_after(None)
            terminal.reader.connect()
            terminal.start()
            works = []
            for keys in (old, new):
                probe = OtaSender(keys, counter=100)
                (t,) = probe.secure(RamScript().get_status(0x80).expanded()).tpdus
                works.append(probe.open_por(terminal.deliver_sms(t).user_data).ok)
            assert works in ([True, False], [False, True]), f"tear after {n} writes: {works}"
            n += 1
            continue
        rt.nvm.tear_after(None)
        assert sender.open_por(result.user_data).ok
        break
    assert n >= 2  # the counter, then the key set (with its counter reset) in one transaction
