"""Tears during GlobalPlatform content management: every write is a tear point.

A sequence of commands runs on a fresh card with a tear armed after n
persistent writes, for n = 0, 1, 2, ... until the sequence completes. After
each tear the card is powered up again; the Registry (the runtime's entries,
in memory and in NVM, and the ISD's load file and application tables) and the
new applet's own data must then be exactly as before the torn command or as
after it, and the card must go on working.
"""

from __future__ import annotations

from collections.abc import Callable

from applets.notes import NOTES_AID
from card.gp.isd import ISD_AID
from card.gp.loadfile import describe_load_file, lfdb_hash, load_file_stream
from card.runtime import CardRuntime, CardTorn
from tests.unit.test_gp_card import GpHost, gp_card, isd_of, lv, registry_state

NOTES = describe_load_file("notes")
MODULE = NOTES.module_for("notes").aid
LFDB = NOTES.to_bytes()
STREAM = load_file_stream(LFDB)

Step = Callable[[GpHost], int]


def card_state(rt: CardRuntime) -> tuple:
    life = (isd_of(rt).card_state, rt.nvm.read("__card__", "only_selectable"))
    return registry_state(rt), rt.nvm.snapshot().get(NOTES_AID.hex()), life


def load_and_install_steps() -> list[Step]:
    blocks = [STREAM[i : i + 90] for i in range(0, len(STREAM), 90)]
    steps: list[Step] = [lambda host: host.install_for_load(NOTES.aid, lfdb_hash(LFDB))]
    for n, chunk in enumerate(blocks):
        p1 = 0x80 if n == len(blocks) - 1 else 0x00
        steps.append(
            lambda host, p1=p1, n=n, chunk=chunk: host.send(host.cmd(0xE8, p1, n, chunk))[1]
        )
    steps.append(lambda host: host.install(NOTES.aid, MODULE, NOTES_AID, b"torn?"))
    return steps


def delete_steps() -> list[Step]:
    return [lambda host: host.delete(NOTES.aid, related=True)]


def prepared_card(installed: bool) -> tuple[CardRuntime, GpHost]:
    rt = gp_card(seed=3)
    host = GpHost(rt)
    host.open(0x33)
    if installed:
        for step in load_and_install_steps():
            assert step(host) == 0x9000
    return rt, host


def check_tears(steps: list[Step], installed: bool) -> int:
    """Run `steps` torn at every write; returns the number of tear points."""
    rt, host = prepared_card(installed)
    states = [card_state(rt)]
    for step in steps:
        assert step(host) == 0x9000
        states.append(card_state(rt))
    assert states[0] != states[-1]

    n = 0
    while True:
        rt, host = prepared_card(installed)
        rt.nvm.tear_after(n)
        done = 0
        try:
            for step in steps:
                assert step(host) == 0x9000
                done += 1
        except CardTorn:
            rt.power_on()
            got = card_state(rt)
            assert got in (states[done], states[done + 1]), f"tear after {n} writes, step {done}"
            assert rt.exceptions == 0
            # The card still works: a new session sees the same Registry.
            host = GpHost(rt)
            host.open(0x33)
            listed = {e.find(0x4F).value for e in host.get_status(0x40)}
            assert (NOTES_AID in listed) == any(a == NOTES_AID for a, *_ in got[0][0])
            n += 1
            continue
        rt.nvm.tear_after(None)
        assert card_state(rt) == states[-1]
        return n


def test_tear_at_every_write_of_load_and_install() -> None:
    # INITIALIZE UPDATE is outside: the card is torn during LOAD and INSTALL only.
    points = check_tears(load_and_install_steps(), installed=False)
    assert points >= 4  # the load file record, the app record, applet data, registry, commit


def test_tear_at_every_write_of_delete() -> None:
    points = check_tears(delete_steps(), installed=True)
    assert points >= 3


def test_tear_at_every_write_of_set_status() -> None:
    steps: list[Step] = [
        lambda host: host.set_status(0x40, 0x80, NOTES_AID),  # lock one application
        lambda host: host.set_status(0x60, 0x80, ISD_AID),  # lock the rest
        lambda host: host.set_status(0x60, 0x00, ISD_AID),  # unlock them all
        lambda host: host.set_status(0x80, 0x07),  # INITIALIZED
        lambda host: host.set_status(0x80, 0xFF),  # TERMINATED: only the ISD selectable
    ]
    assert check_tears(steps, installed=True) >= 4


def test_tear_at_every_write_of_install_then_make_selectable() -> None:
    make_selectable = lv(b"") + lv(b"") + lv(NOTES_AID) + lv(b"") + lv(b"") + lv(b"")
    steps = load_and_install_steps()
    steps[-1] = lambda host: host.install(NOTES.aid, MODULE, NOTES_AID, b"x", p1=0x04)
    steps.append(lambda host: host.send(host.cmd(0xE6, 0x08, 0x00, make_selectable))[1])
    assert check_tears(steps, installed=False) >= 5


def test_torn_load_leaves_no_pending_state() -> None:
    """A tear mid-LOAD ends the session; the half-loaded file is gone for good."""
    rt, host = prepared_card(False)
    steps = load_and_install_steps()
    assert steps[0](host) == 0x9000
    assert steps[1](host) == 0x9000
    before = registry_state(rt)
    rt.nvm.tear_after(0)
    try:
        host.delete(b"\xf0\x43\x41\x52\x44\x45\x4d\x55\x01")  # deletes the purse: one write
    except CardTorn:
        rt.power_on()
    assert registry_state(rt) == before
    host = GpHost(rt)
    host.open(0x33)
    assert steps[2](host) == 0x6985  # no INSTALL [for load] in this session
