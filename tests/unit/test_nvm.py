"""Persistent memory and the card image: atomic writes, journal, tears, SQLite file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from applets.sample import PURSE_AID
from card.nvm import NVM, NvmError, OutOfMemory, PowerLoss
from card.runtime import CardRuntime, CardTorn
from tests.conftest import ROOT
from tests.unit.cards import sample_card, tx

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4).map(tuple),
    max_leaves=10,
)


@given(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=8))
def test_image_round_trips_every_value_type(
    tmp_path_factory: pytest.TempPathFactory, data: dict
) -> None:
    path = tmp_path_factory.mktemp("img") / "c.card"
    nvm = NVM(path)
    for k, v in data.items():
        nvm.write("owner", k, v)
    nvm.close()
    back = NVM(path)
    assert back.segment("owner") == data
    back.close()


def test_rejects_mutable_or_foreign_values() -> None:
    nvm = NVM()
    with pytest.raises(TypeError):
        nvm.write("o", "k", {"a": 1})
    with pytest.raises(TypeError):
        nvm.write("o", "k", object())
    nvm.write("o", "k", bytearray(b"ab"))
    assert nvm.read("o", "k") == b"ab" and type(nvm.read("o", "k")) is bytes


def test_transaction_commit_and_abort() -> None:
    nvm = NVM()
    nvm.write("o", "a", 1)
    nvm.begin()
    nvm.write("o", "a", 2)
    nvm.write("o", "b", 3)
    nvm.abort()
    assert nvm.segment("o") == {"a": 1}
    nvm.begin()
    nvm.write("o", "a", 2)
    nvm.delete("o", "a")
    nvm.write("o", "c", 4)
    nvm.commit()
    assert nvm.segment("o") == {"c": 4}


def test_tear_counts_writes_and_rolls_back_on_power_up() -> None:
    nvm = NVM()
    nvm.write("o", "x", 0)
    nvm.tear_after(2)
    nvm.write("o", "outside", 1)  # outside a transaction: stays
    nvm.begin()
    nvm.write("o", "x", 5)
    with pytest.raises(PowerLoss):
        nvm.write("o", "x2", 6)  # the third write never happens
    assert nvm.torn
    with pytest.raises(PowerLoss):
        nvm.write("o", "y", 1)  # no power, no writes
    assert nvm.power_up() is True
    assert nvm.segment("o") == {"x": 0, "outside": 1}


def test_unchanged_value_costs_no_write() -> None:
    nvm = NVM()
    nvm.write("o", "x", b"1")
    n = nvm.total_writes
    nvm.write("o", "x", b"1")
    assert nvm.total_writes == n


def test_capacity() -> None:
    nvm = NVM(capacity=100)
    nvm.write("o", "a", bytes(60))
    with pytest.raises(OutOfMemory):
        nvm.write("o", "b", bytes(60))
    assert nvm.read("o", "b") is None
    nvm.write("o", "a", bytes(90))  # replacing frees the old value first
    assert nvm.available < 10


@given(st.dictionaries(st.sampled_from("abc"), st.dictionaries(st.text(max_size=4), values)))
def test_load_stored_is_the_same_nvm_as_writing_value_by_value(data: dict) -> None:
    written = NVM()
    for owner, seg in data.items():
        for name, value in seg.items():
            written.write(owner, name, value)
    loaded = NVM()
    loaded.load_stored(written.snapshot(), written.used)
    assert loaded.snapshot() == written.snapshot()
    assert (loaded.used, loaded.total_writes) == (written.used, written.total_writes)
    loaded.write("a", "new", (1, b"x"))  # and it goes on as a card does
    written.write("a", "new", (1, b"x"))
    assert (loaded.snapshot(), loaded.used) == (written.snapshot(), written.used)


def test_load_stored_refuses_an_nvm_not_empty_or_too_small(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        held = NVM()
        held.write("o", "x", b"1")
        held.load_stored({"o": {"y": b"2"}}, 3)
    with pytest.raises(ValueError):
        armed = NVM()
        armed.tear_after(0)
        armed.load_stored({"o": {"y": b"2"}}, 3)
    image = NVM(tmp_path / "c.card")
    try:
        with pytest.raises(ValueError):
            image.load_stored({"o": {"y": b"2"}}, 3)
    finally:
        image.close()
    with pytest.raises(OutOfMemory):
        NVM(capacity=10).load_stored({"o": {"y": bytes(20)}}, 22)


def test_card_image_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "purse.card"
    rt = sample_card(str(path))
    tx(rt, "803000000400000042")
    rt.close()
    rt2 = CardRuntime(path)
    assert [a.hex() for a, *_ in rt2.applets()] == [a.hex() for a, *_ in sample_card().applets()]
    rt2.power_on()
    assert tx(rt2, "8050000004") == "000000429000"
    rt2.close()


def test_tear_inside_transaction_recovered_from_the_image(tmp_path: Path) -> None:
    path = tmp_path / "torn.card"
    rt = sample_card(str(path))
    tx(rt, "80300000040000000A")
    rt.nvm.tear_after(2)  # inside CREDIT's transaction
    with pytest.raises(CardTorn):
        rt.process(bytes.fromhex("803000000400000005"))
    # The process "dies" here: the image holds the torn state and its journal, and
    # the kernel drops the dead process's lock.
    rt.nvm._db.close()
    rt.nvm._lock.release()
    rt2 = CardRuntime(path)
    rt2.power_on()
    assert tx(rt2, "8050000004") == "0000000A9000"
    p = rt2.applet(PURSE_AID)
    assert (p.counter, p.last[:2]) == (1, b"\x00\x01")


def test_killed_process_leaves_last_completed_apdu(tmp_path: Path) -> None:
    path = tmp_path / "killed.card"
    sample_card(str(path)).close()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.unit.cards import sample_card
        rt = sample_card({str(path)!r})
        n = 0
        while True:
            r = rt.process(bytes.fromhex("803000000400000001"))
            assert r == b"\\x90\\x00", r
            n += 1
            print(n, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = 0
    for line in proc.stdout:
        last = int(line)
        if last >= 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # what it printed before it died
        last = int(line)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rt = CardRuntime(path)
    rt.power_on()
    p = rt.applet(PURSE_AID)
    # Every completed APDU is there (printed ones, plus at most one it finished but had
    # not printed yet), and the three fields of the purse agree with each other.
    assert last <= p.counter <= last + 1
    assert p.balance == p.counter
    assert p.last[:2] == p.counter.to_bytes(2, "big")
    rt.close()


def test_not_a_card_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk.card"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(NvmError, match="not a cardemu card image"):
        CardRuntime(junk)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(NvmError, match="not a cardemu card image"):
        CardRuntime(other)


def test_image_naming_an_uncatalogued_class_is_refused(tmp_path: Path) -> None:
    from tests.unit.test_framework import _TxApplet

    path = tmp_path / "x.card"
    rt = CardRuntime(path)
    rt.install(_TxApplet, b"\xf0\x00\x00\x00\x01")
    rt.close()
    with pytest.raises(NvmError, match="not in the catalogue"):
        CardRuntime(path)


def test_atr_is_kept_in_the_image(tmp_path: Path) -> None:
    from card.atr import AtrError

    path = tmp_path / "atr.card"
    rt = CardRuntime(path)
    with pytest.raises(AtrError):
        rt.set_atr(b"\x3b\x85")
    rt.set_atr(bytes.fromhex("3B85801F078073F6219BA2"))
    rt.close()
    rt2 = CardRuntime(path)
    assert rt2.power_on() == bytes.fromhex("3B85801F078073F6219BA2")
    rt2.close()


def test_load_stored_is_seen_through_a_segment_handed_out_before() -> None:
    n = NVM()
    seg = n.segment("x")
    n.load_stored({"x": {"k": 1}}, 10)
    assert seg.get("k") == 1 and n.read("x", "k") == 1
