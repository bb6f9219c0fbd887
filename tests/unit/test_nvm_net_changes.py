"""A flush writes only what changed since the last one: undone changes cost no commit.

A correct VERIFY decrements the try counter and restores it within one APDU
(the tear-safe order); the image already holds the restored value, so nothing
is committed. A tear between the two writes still leaves the decrement in the
image, and a process killed at any moment leaves the image as of a completed
APDU, never between two of its writes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from applets.usim import UICC_AID
from card.nvm import NVM
from card.runtime import CardRuntime, CardTorn
from host.bench_usim import SELECT_MSISDN, VERIFY_PIN1
from host.presets import new_card
from tests.conftest import ROOT

VERIFY_WRONG = bytes.fromhex("002000010839393939FFFFFFFF")
READ_RECORD_1 = bytes.fromhex("00B2010400")


def changes(nvm: NVM) -> int:
    """Writes to the image: rows SQLite has changed through its connection, redo records."""
    assert nvm._db is not None
    return nvm._db.total_changes + nvm._redo_lsn


def test_a_change_undone_before_the_flush_writes_nothing(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "pin", (b"1234", 3, 3))
    nvm.flush()
    before = changes(nvm)
    nvm.write("o", "pin", (b"1234", 3, 2))
    nvm.write("o", "pin", (b"1234", 3, 3))
    nvm.flush()
    assert changes(nvm) == before
    nvm.write("o", "pin", (b"1234", 3, 2))
    nvm.flush()
    assert changes(nvm) == before + 1
    nvm.close()
    nvm = NVM(tmp_path / "a.card", create=False)
    assert nvm.read("o", "pin") == (b"1234", 3, 2)
    nvm.close()


def test_a_new_value_deleted_again_and_an_aborted_transaction_write_nothing(
    tmp_path: Path,
) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "x", 1)
    nvm.flush()
    before = changes(nvm)
    nvm.write("o", "y", b"new")
    nvm.delete("o", "y")
    nvm.begin()
    nvm.write("o", "x", 2)
    nvm.abort()
    nvm.flush()
    assert changes(nvm) == before
    nvm.close()
    nvm = NVM(tmp_path / "a.card", create=False)
    assert nvm.snapshot() == {"o": {"x": 1}}
    nvm.close()


def test_a_deleted_value_written_back_writes_nothing(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "x", (1, b"a"))
    nvm.write("p", "y", 5)
    nvm.flush()
    before = changes(nvm)
    nvm.delete_owner("o")
    nvm.write("o", "x", (1, b"a"))
    nvm.flush()
    assert changes(nvm) == before
    nvm.close()


@pytest.mark.parametrize(
    ("old", "new"),
    [(1, True), ((1, 0), (True, 0)), ((b"", (0,)), (b"", (False,))), (0, None)],
)
def test_equal_values_of_another_type_are_a_change(
    tmp_path: Path, old: object, new: object
) -> None:
    # JSON keeps true apart from 1: a value that only compares equal is stored.
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "x", old)
    nvm.flush()
    nvm.write("o", "x", new)
    nvm.close()
    nvm = NVM(tmp_path / "a.card", create=False)
    got = nvm.read("o", "x")
    assert got == new and repr(got) == repr(new)
    nvm.close()


def test_a_change_undone_in_one_apdu_and_made_in_the_next_is_stored(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "x", 1)
    nvm.flush()
    nvm.write("o", "x", 2)
    nvm.write("o", "x", 1)
    nvm.flush()
    nvm.write("o", "x", 2)
    nvm.flush()
    nvm.close()
    nvm = NVM(tmp_path / "a.card", create=False)
    assert nvm.read("o", "x") == 2
    nvm.close()


# -- VERIFY on a card image ----------------------------------------------------------


def usim_image(path: Path | str) -> CardRuntime:
    """The `usim` preset on a card image (made when missing), powered, the USIM selected."""
    from card.uicc.builder import DEFAULT_USIM_AID

    if os.path.exists(path):
        rt = CardRuntime(path, create=False)
    else:
        rt = new_card("usim", str(path), rng_seed=1)
    rt.power_on()
    assert rt.process(bytes.fromhex("00A4040C10") + DEFAULT_USIM_AID) == b"\x90\x00"
    return rt


def tries_left(path: Path) -> int:
    """PIN1's remaining tries as the image holds them.

    Read from the stored PIN record (the preset's PIN1 is disabled, so VERIFY
    without data answers 9000 rather than 63Cx).
    """
    nvm = NVM(path, create=False, readonly=True)
    try:
        record = nvm.read(UICC_AID.hex(), "p0.pin.01")
        assert isinstance(record, tuple) and record[0].startswith(b"1234"), record
        return int(record[2])
    finally:
        nvm.close()


def test_a_correct_verify_commits_nothing(tmp_path: Path) -> None:
    rt = usim_image(tmp_path / "u.card")
    # The first record of an open marks the image as continued by its log (format 2,
    # card.nvm.IMAGE_VERSION) in one SQLite commit, once: done before counting.
    assert rt.process(VERIFY_WRONG) == b"\x63\xc2"
    assert rt.process(VERIFY_PIN1) == b"\x90\x00"
    before = changes(rt.nvm)
    for _ in range(3):
        assert rt.process(VERIFY_PIN1) == b"\x90\x00"
    assert changes(rt.nvm) == before
    assert rt.process(VERIFY_WRONG) == b"\x63\xc2"
    assert changes(rt.nvm) == before + 1
    assert rt.process(VERIFY_PIN1) == b"\x90\x00"  # 2 -> 1 -> 3: a change
    assert changes(rt.nvm) == before + 2
    rt.close()
    assert tries_left(tmp_path / "u.card") == 3


@pytest.mark.parametrize(("writes", "left"), [(0, 3), (1, 2)])
def test_a_tear_inside_a_correct_verify_keeps_the_decrement(
    tmp_path: Path, writes: int, left: int
) -> None:
    # Torn before the decrement: nothing happened. Torn after it (before the
    # compare's restore): the try is spent, in the image too.
    path = tmp_path / "u.card"
    rt = usim_image(path)
    rt.nvm.tear_after(writes)
    with pytest.raises(CardTorn):
        rt.process(VERIFY_PIN1)
    rt.close()
    assert tries_left(path) == left


# -- a process killed at random moments ----------------------------------------------------

LOOP = """
import sys
sys.path.insert(0, {root!r})
from tests.unit.test_nvm_net_changes import usim_image, SELECT_MSISDN, VERIFY_PIN1, VERIFY_WRONG
rt = usim_image({path!r})
assert rt.process(VERIFY_PIN1) == b"\\x90\\x00"  # 3 tries again, after a kill at (n, 2)
assert rt.process(SELECT_MSISDN) == b"\\x90\\x00"
print("ready", flush=True)
i = {start}
while True:
    i += 1
    record = i.to_bytes(4, "big") + bytes(24)
    assert rt.process(bytes.fromhex("00DC01041C") + record) == b"\\x90\\x00"
    assert rt.process(VERIFY_WRONG) == b"\\x63\\xc2"
    assert rt.process(VERIFY_PIN1) == b"\\x90\\x00"
    print(i, flush=True)
"""


def image_state(path: Path) -> tuple[int, int]:
    """(the round number in EF.MSISDN's first record, PIN1's tries left)."""
    rt = usim_image(path)
    try:
        assert rt.process(SELECT_MSISDN) == b"\x90\x00"
        resp = rt.process(READ_RECORD_1)
        assert resp[-2:] == b"\x90\x00"
        record = resp[:-2]
        rnd = 0 if record[:4] == b"\xff" * 4 else int.from_bytes(record[:4], "big")
    finally:
        rt.close()
    return rnd, tries_left(path)


def test_a_process_killed_at_any_moment_leaves_a_whole_apdu(tmp_path: Path) -> None:
    # Each round is UPDATE RECORD (round number), a wrong VERIFY (3 -> 2) and a
    # correct one (2 -> 1 -> 3). After a SIGKILL the image holds a state some
    # completed APDU left: (n, 3) or (n, 2), with n no older than the last round
    # the process reported done. A correct VERIFY cut between its writes would
    # show 1 try left; a lost APDU an older round.
    path = tmp_path / "u.card"
    usim_image(path).close()
    rng = random.Random(13)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rnd = 0
    for _ in range(5):
        code = LOOP.format(root=str(ROOT), path=str(path), start=rnd)
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.communicate()[1]
            try:
                proc.wait(timeout=rng.uniform(0.05, 0.4))
            except subprocess.TimeoutExpired:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        done = [int(line) for line in out.split()]
        last = done[-1] if done else rnd
        got, left = image_state(path)
        assert left in (2, 3), f"PIN1 has {left} tries left: an APDU was cut between its writes"
        assert last <= got <= last + 1, f"round {got} in the image, {last} reported done"
        rnd = got
    assert rnd > 0
