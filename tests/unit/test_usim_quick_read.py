"""READ RECORD's quick path (`UiccApplet.quick_process`) answers as the ordinary path does.

Once a READ RECORD of the current EF by number (P2 04) has been answered on the
ordinary path, the next ones on that channel are answered from what it found out
(`FileSystem.read_record_prepared`), the record read from the store each time.
Each test below changes one thing behind it (the record, the PIN state, the
current EF, the channel, a reset, a rollback) and checks the next answer follows
at once; the refusals (6982, 6A83, 6981, 6986, 6Cxx, 6282, 61xx) stay what they
were. The differential test runs random command sequences on a card with the
quick path and on one without it: every response must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from applets.usim import UiccApplet
from card.fs import FileSystem
from card.runtime import CardRuntime
from card.uicc.builder import DEFAULT_USIM_AID
from host.presets import new_card

SELECT_USIM = bytes.fromhex("00A4040C10") + DEFAULT_USIM_AID
PIN1 = bytes.fromhex("31323334FFFFFFFF")
WRONG = bytes.fromhex("31323335FFFFFFFF")
MSISDN, SMS, ECC, ARR, IMSI = "6F40", "6F3C", "6FB7", "6F06", "6F07"
#: record lengths in the `usim` preset
LENGTH = {MSISDN: 28, SMS: 176, ECC: 14, ARR: 33}


def _apdu(hexstr: str, data: bytes = b"") -> bytes:
    return bytes.fromhex(hexstr) + (bytes((len(data),)) + data if data else b"")


def _select(fid: str, channel: int = 0) -> bytes:
    return bytes((channel,)) + bytes.fromhex("A4000C02" + fid)


def _read(p1: int, channel: int = 0, le: int | None = 0, p2: int = 0x04) -> bytes:
    return bytes((channel, 0xB2, p1, p2)) + (b"" if le is None else bytes((le,)))


class _Hits:
    """How many READ RECORDs the prepared path answered (a spy on the real method)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = FileSystem.read_record_prepared

        def counted(fs: FileSystem, *args: object) -> bytes | None:
            out = real(fs, *args)  # type: ignore[arg-type]
            self.count += out is not None
            return out

        monkeypatch.setattr(FileSystem, "read_record_prepared", counted)


@pytest.fixture
def hits(monkeypatch: pytest.MonkeyPatch) -> _Hits:
    return _Hits(monkeypatch)


def _card(pin1_enabled: bool = False) -> CardRuntime:
    card = new_card("usim", None, rng_seed=1)
    card.power_on()
    assert card.process(SELECT_USIM) == b"\x90\x00"
    if pin1_enabled:  # the preset ships PIN1 disabled; ENABLE leaves it verified
        assert card.process(_apdu("00280001", PIN1)) == b"\x90\x00"
    return card


def test_the_quick_path_answers_repeated_reads(hits: _Hits) -> None:
    card = _card()
    assert card.process(_select(MSISDN)) == b"\x90\x00"
    first = card.process(_read(1))
    assert first[-2:] == b"\x90\x00" and len(first) == LENGTH[MSISDN] + 2
    assert hits.count == 0  # the first one: the ordinary path, which prepares
    for _ in range(5):
        assert card.process(_read(1)) == first
    second = card.process(_read(2))
    assert second[-2:] == b"\x90\x00" and second != first
    assert card.process(_read(0)) == b"\x6a\x83"  # P1 00: the current record, none yet
    assert card.process(_read(0, p2=0x02)) == first  # next: record 1, now the current one
    assert card.process(_read(0)) == first
    assert card.process(_read(0)) == first
    assert hits.count >= 7


def test_update_record_is_seen_by_the_next_read(hits: _Hits) -> None:
    card = _card()
    card.process(_select(MSISDN))
    old = card.process(_read(1))
    assert card.process(_read(1)) == old and hits.count == 1
    new = bytes(range(LENGTH[MSISDN]))
    assert card.process(_apdu("00DC0104", new)) == b"\x90\x00"
    assert card.process(_read(1)) == new + b"\x90\x00"
    assert card.process(_read(1)) == new + b"\x90\x00"
    assert card.process(_read(2)) != new + b"\x90\x00"
    # Record 2 through the other addressing (next), then record 1 again by number.
    assert card.process(_apdu("00DC0204", bytes(LENGTH[MSISDN]))) == b"\x90\x00"
    assert card.process(_read(2)) == bytes(LENGTH[MSISDN]) + b"\x90\x00"
    assert card.process(_read(1)) == new + b"\x90\x00"


def test_security_status_changes_access_at_once(hits: _Hits) -> None:
    """EF.MSISDN needs PIN1 to be read (TS 31.102 §4.2.26): each change of it is seen."""
    card = _card(pin1_enabled=True)
    card.process(_select(MSISDN))
    granted = card.process(_read(1))
    assert granted[-2:] == b"\x90\x00"
    assert card.process(_read(1)) == granted
    assert card.process(_apdu("00200001", WRONG)) == b"\x63\xc2"  # verified no longer
    assert card.process(_read(1)) == b"\x69\x82"
    assert card.process(_read(1)) == b"\x69\x82"
    assert card.process(_apdu("00200001", PIN1)) == b"\x90\x00"
    assert card.process(_read(1)) == granted
    assert card.process(_read(1)) == granted
    assert card.process(_apdu("00260001", PIN1)) == b"\x90\x00"  # DISABLE: still fulfilled
    assert card.process(_read(1)) == granted
    assert card.process(_read(1)) == granted
    assert hits.count == 3


def test_a_security_state_changed_without_a_write_is_seen(hits: _Hits) -> None:
    """The verified PINs are volatile: a change of them alone, with no NVM write, is seen.

    (Every VERIFY writes its counter, so this is what the `verified` check guards
    besides the NVM version: the state is cleared here as a reset would, but alone.)
    """
    card = _card(pin1_enabled=True)
    card.process(_select(MSISDN))
    granted = card.process(_read(1))
    assert card.process(_read(1)) == granted and hits.count == 1
    ctx = card.selected_context(0)
    assert ctx is not None
    version = card.nvm_version
    card.call_in_context(ctx, setattr, ctx.applet, "verified", None)
    assert card.nvm_version == version
    assert card.process(_read(1)) == b"\x69\x82"
    assert hits.count == 1


def test_verified_state_lost_on_reset_is_seen() -> None:
    card = _card(pin1_enabled=True)
    card.process(_select(MSISDN))
    granted = card.process(_read(1))
    assert card.process(_read(1)) == granted
    card.reset()
    # The channel state is gone with the reset: no current EF, then no PIN.
    assert card.process(_read(1)) == b"\x69\x86"
    card.process(SELECT_USIM)
    card.process(_select(MSISDN))
    assert card.process(_read(1)) == b"\x69\x82"
    assert card.process(_read(1)) == b"\x69\x82"


def test_select_of_another_ef_is_seen(hits: _Hits) -> None:
    card = _card()
    card.process(_select(MSISDN))
    msisdn = card.process(_read(1))
    assert card.process(_read(1)) == msisdn
    card.process(_select(ECC))
    ecc = card.process(_read(1))
    assert len(ecc) == LENGTH[ECC] + 2 and ecc != msisdn
    assert card.process(_read(1)) == ecc
    card.process(_select(IMSI))  # transparent
    assert card.process(_read(1)) == b"\x69\x81"
    assert card.process(_read(1)) == b"\x69\x81"
    card.process(_select(MSISDN))
    assert card.process(_read(1)) == msisdn
    # A DF selected: no current EF.
    assert card.process(SELECT_USIM) == b"\x90\x00"
    assert card.process(_read(1)) == b"\x69\x86"
    assert hits.count == 2  # the second read of each EF; the first after a SELECT is ordinary


def test_logical_channels_keep_their_own_current_ef(hits: _Hits) -> None:
    card = _card()
    assert card.process(bytes.fromhex("0070000001")) == b"\x01\x90\x00"
    assert card.process(bytes((0x01,)) + SELECT_USIM[1:]) == b"\x90\x00"
    card.process(_select(MSISDN, 0))
    card.process(_select(ECC, 1))
    msisdn, ecc = card.process(_read(1, 0)), card.process(_read(1, 1))
    assert msisdn != ecc
    for _ in range(3):
        assert card.process(_read(1, 0)) == msisdn
        assert card.process(_read(1, 1)) == ecc
    # A write through channel 1 to the EF current on channel 0: channel 0 sees it.
    card.process(_select(MSISDN, 1))
    new = bytes(range(LENGTH[MSISDN]))
    assert card.process(_apdu("01DC0104", new)) == b"\x90\x00"
    assert card.process(_read(1, 0)) == new + b"\x90\x00"
    # Closed, the channel answers 6881 and its state is gone; channel 0 goes on.
    assert card.process(bytes.fromhex("00708001")) == b"\x90\x00"
    assert card.process(_read(1, 1)) == b"\x68\x81"
    assert card.process(_read(1, 0)) == new + b"\x90\x00"
    assert card.process(bytes.fromhex("0070000001")) == b"\x01\x90\x00"
    assert card.process(bytes((0x01,)) + SELECT_USIM[1:]) == b"\x90\x00"
    assert card.process(_read(1, 1)) == b"\x69\x86"  # a new channel: no current EF
    assert hits.count >= 6


def test_refusals_are_unchanged() -> None:
    card = _card(pin1_enabled=True)
    assert card.process(_read(1)) == b"\x69\x86"  # no current EF
    card.process(_select(ECC))
    ok = card.process(_read(1))
    assert card.process(_read(1)) == ok
    n = LENGTH[ECC]
    assert card.process(_read(4)) == b"\x6a\x83"  # 3 records
    assert card.process(_read(4)) == b"\x6a\x83"
    assert card.process(_read(1, le=n - 1)) == bytes((0x6C, n))  # Le too small: 6Cxx
    assert card.process(_read(1, le=n)) == ok
    assert card.process(_read(1, le=n + 1)) == ok[:-2] + b"\x62\x82"  # Le too big: 6282
    assert card.process(_read(1, le=None)) == bytes((0x61, n))  # no Le: 61xx
    assert card.process(bytes.fromhex("00C000000E")) == ok
    assert card.process(_read(1, le=None, p2=0x05)) == b"\x6a\x86"  # no such mode
    assert card.process(_read(1)) == ok
    card.process(_select(MSISDN))
    card.reset()
    card.process(SELECT_USIM)
    card.process(_select(MSISDN))
    assert card.process(_read(1)) == b"\x69\x82"  # PIN1 enabled, not verified
    assert card.process(_read(1)) == b"\x69\x82"
    assert card.process(bytes.fromhex("00B2010400")[:4] + b"\x00\x00\x1c") == b"\x69\x82"


def test_pending_response_data_is_dropped_by_a_quick_read(hits: _Hits) -> None:
    """A READ RECORD after a 61xx answer: the pending data goes, as on the ordinary path."""
    card = _card()
    card.process(_select(MSISDN))
    ok = card.process(_read(1))
    assert card.process(_read(1)) == ok
    assert card.process(_read(1, le=None)) == bytes((0x61, LENGTH[MSISDN]))
    assert card.process(_read(1)) == ok
    assert card.process(bytes.fromhex("00C0000000")) == b"\x69\x85"  # nothing pending


def test_a_rollback_is_seen(hits: _Hits) -> None:
    """A transaction aborted after a record write: the read after it has the old record."""
    card = _card()
    card.process(_select(MSISDN))
    old = card.process(_read(1))
    assert card.process(_read(1)) == old
    applet = card.applet(card.selected_aid(0) or b"")
    assert isinstance(applet, UiccApplet)
    slot, _ = applet._current()
    assert slot is not None
    handle = slot.fs.find((0x6F40,), start=slot.fs.applications()[0][1])
    assert handle is not None and slot.fs.info(handle) is not None
    recs = slot.fs.read(handle)
    assert isinstance(recs, tuple)
    card.nvm.begin()
    slot.fs.write(handle, (bytes(range(LENGTH[MSISDN])),) + recs[1:])
    card.nvm.abort()
    assert card.process(_read(1)) == old
    assert card.process(_read(1)) == old


# -- the differential test: the same answers with and without the quick path ----------------

_CHANNEL = st.sampled_from([0, 0, 0, 1, 2])
_FID = st.sampled_from([MSISDN, MSISDN, SMS, ECC, ECC, ARR, IMSI])


@st.composite
def _commands(draw: st.DrawFn) -> list[bytes | str]:
    """A few commands: reads come in runs (what the quick path answers), the rest alone."""
    kind = draw(
        st.sampled_from(
            ["read"] * 6 + ["select", "select", "usim", "update", "pin", "channel", "reset", "gr"]
        )
    )
    ch = draw(_CHANNEL)
    if kind == "read":
        p1 = draw(st.sampled_from([0, 1, 1, 1, 2, 3, 4, 11]))
        p2 = draw(st.sampled_from([0x04] * 6 + [0x02, 0x03, 0x05, 0x0C, 0x3C]))
        le = draw(st.sampled_from([0, 0, 0, 0, None, 1, 14, 15, 28, 29, 33, 176, 255]))
        return [_read(p1, ch, le, p2)] * draw(st.integers(1, 4))
    if kind == "select":  # and a few reads of it
        p1 = draw(st.sampled_from([1, 1, 2, 3]))
        return [_select(draw(_FID), ch)] + [_read(p1, ch)] * draw(st.integers(0, 3))
    if kind == "usim":
        return [bytes((ch,)) + SELECT_USIM[1:]]
    if kind == "update":
        n = draw(st.sampled_from([14, 28, 28, 33]))
        return [bytes((ch, 0xDC, draw(st.sampled_from([1, 2])), 0x04, n)) + bytes([ch + 1] * n)]
    if kind == "pin":
        ins = draw(st.sampled_from([0x20, 0x20, 0x28, 0x26]))
        return [bytes((ch, ins, 0, 1, 8)) + draw(st.sampled_from([PIN1, PIN1, WRONG]))]
    if kind == "channel":
        return [draw(st.sampled_from(["0070000001", "0070000002", "00708001", "00708002"]))]
    if kind == "gr":
        return [bytes((ch, 0xC0, 0, 0, 0))]
    return ["reset", SELECT_USIM]


def _run(commands: list[bytes | str]) -> list[bytes]:
    card = _card()
    for ch in (1, 2):  # channels 1 and 2 open, on the USIM as channel 0
        assert card.process(bytes((0, 0x70, 0, ch))) == b"\x90\x00"
        assert card.process(bytes((ch,)) + SELECT_USIM[1:]) == b"\x90\x00"
    out = []
    for c in commands:
        if c == "reset":
            card.reset()
            out.append(b"reset")
        else:
            out.append(card.process(bytes.fromhex(c) if isinstance(c, str) else c))
    return out


@contextmanager
def _without_quick_path() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(UiccApplet, "quick_ins", frozenset())
        yield


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_commands(), min_size=5, max_size=25))
def test_same_answers_with_and_without_the_quick_path(runs: list[list[bytes | str]]) -> None:
    commands = [c for run in runs for c in run]
    with _without_quick_path():
        reference = _run(commands)
    assert _run(commands) == reference
