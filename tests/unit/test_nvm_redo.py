"""The redo log beside a card image: one record per flush, replayed whole or not at all.

An image left by a killed process is its SQLite file and `<image>-redo`; these
tests leave one the same way (`abandon`: descriptors closed, nothing folded)
and then damage the log as a tear or a power cut can.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import pytest

from card import nvm as nvm_module
from card.nvm import NVM, REDO_SUFFIX, NvmError, remove_image_files


def abandon(nvm: NVM) -> None:
    """Let go of an open image as a killed process does: nothing flushed or folded."""
    nvm._close_redo()
    assert nvm._db is not None and nvm._lock is not None
    nvm._db.close()
    nvm._db = None
    nvm._lock.release()
    nvm._lock = None


def redo(path: Path) -> Path:
    return Path(str(path) + REDO_SUFFIX)


def states(path: Path, n: int) -> list[dict[str, dict[str, object]]]:
    """Flush n APDUs (each writes 'o'/'i' and 'o'/'x', deletes 'o'/'gone' once), then abandon.

    Returns the state after each APDU (index 0: before the first).
    """
    nvm = NVM(path)
    nvm.write("o", "gone", b"old")
    nvm.flush()
    nvm.checkpoint()  # the log holds the n APDUs alone
    seen = [nvm.snapshot()]
    for i in range(1, n + 1):
        nvm.write("o", "i", i)
        nvm.write("o", "x", (i, b"\x00" * i, i % 2 == 0))
        if i == 2:
            nvm.delete("o", "gone")
        nvm.flush()
        seen.append(nvm.snapshot())
    abandon(nvm)
    return seen


def reopened(path: Path, readonly: bool = False) -> dict[str, dict[str, object]]:
    nvm = NVM(path, create=False, readonly=readonly)
    try:
        return nvm.snapshot()
    finally:
        nvm.close()


def test_a_killed_process_loses_no_flushed_apdu(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    seen = states(path, 5)
    assert redo(path).stat().st_size > 0
    assert reopened(path) == seen[-1]
    # Opened for writing, the log was folded in and, closed, removed.
    assert not redo(path).exists()
    assert reopened(path) == seen[-1]


def test_every_torn_tail_of_the_log_is_discarded_whole(tmp_path: Path) -> None:
    src = tmp_path / "src.card"
    seen = states(src, 4)
    log = redo(src).read_bytes()
    image = src.read_bytes()
    # A cut inside record k leaves the k-1 before it, whole.
    prev = 0
    for cut in range(len(log) + 1):
        dst = tmp_path / "cut.card"
        remove_image_files(str(dst))
        dst.write_bytes(image)
        redo(dst).write_bytes(log[:cut])
        got = reopened(dst)
        assert got in seen, f"cut at {cut}: a state no APDU left"
        k = seen.index(got)
        assert cut == len(log) or k < len(seen) - 1
        # a longer tail never gives an older state
        if cut:
            assert k >= prev
        prev = k
    assert prev == len(seen) - 1


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_damaged_record_ends_the_replay(tmp_path: Path, where: str) -> None:
    path = tmp_path / "a.card"
    seen = states(path, 3)
    log = bytearray(redo(path).read_bytes())
    record = {"first": 0, "middle": 1, "last": 2}[where]
    starts = _record_starts(bytes(log))
    assert len(starts) == 3
    log[starts[record] + nvm_module._REDO_HEAD.size + 2] ^= 0x01  # a payload byte
    redo(path).write_bytes(bytes(log))
    assert reopened(path) == seen[record]


def _record_starts(log: bytes) -> list[int]:
    starts, off = [], 0
    while off < len(log):
        starts.append(off)
        off += nvm_module._REDO_HEAD.size + int.from_bytes(log[off + 4 : off + 8], "big")
    return starts


def test_a_log_of_another_salt_is_ignored(tmp_path: Path) -> None:
    # The image's fold was lost (a power cut) but the log emptied after it and new
    # records reached the disk: those records follow a state the image does not
    # hold, and are dropped; the image is as of its last fold, a whole earlier state.
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "v", 1)
    nvm.flush()
    nvm.checkpoint()
    before_fold = path.read_bytes(), Path(str(path) + "-wal").read_bytes()
    folded_state = nvm.snapshot()
    nvm.write("o", "v", 2)
    nvm.flush()
    nvm.checkpoint()  # a new salt
    nvm.write("o", "v", 3)
    nvm.flush()
    abandon(nvm)
    path.write_bytes(before_fold[0])
    Path(str(path) + "-wal").write_bytes(before_fold[1])
    assert reopened(path) == folded_state


def test_records_already_folded_are_not_applied_again(tmp_path: Path) -> None:
    # Killed between the fold's commit and the log's truncation: the old records
    # carry the old salt and are skipped.
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "v", 1)
    nvm.flush()
    nvm.write("o", "v", 2)
    nvm.flush()
    old_log = redo(path).read_bytes()
    nvm.checkpoint()
    nvm.write("o", "w", 5)
    nvm.flush()
    nvm.write("o", "v", 1)  # after the fold, back to 1
    nvm.flush()
    nvm.checkpoint()
    abandon(nvm)
    redo(path).write_bytes(old_log)
    assert reopened(path) == {"o": {"v": 1, "w": 5}}


def test_a_readonly_open_replays_the_log_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    seen = states(path, 3)
    files = sorted(os.listdir(tmp_path))
    prints = {f: hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in files}
    assert reopened(path, readonly=True) == seen[-1]
    assert sorted(os.listdir(tmp_path)) == files
    assert {f: hashlib.sha256((tmp_path / f).read_bytes()).hexdigest() for f in files} == prints


def test_the_log_is_folded_every_n_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nvm_module, "REDO_CHECKPOINT_RECORDS", 3)
    path = tmp_path / "a.card"
    nvm = NVM(path)
    for i in range(7):
        nvm.write("o", "v", i)
        nvm.flush()
    assert nvm._redo_records == 1  # folded after the 3rd and the 6th
    assert redo(path).stat().st_size > 0
    abandon(nvm)
    assert reopened(path) == {"o": {"v": 6}}


def test_a_transaction_journal_folds_the_log_first(tmp_path: Path) -> None:
    # A tear inside a transaction writes the journal to SQLite: the log's records
    # go with it, in the same SQLite transaction, and the log is emptied.
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.flush()
    nvm.begin()
    nvm.write("o", "a", 2)
    nvm.tear_after(0)
    with pytest.raises(nvm_module.PowerLoss):
        nvm.write("o", "b", 3)
    nvm.flush()
    assert redo(path).stat().st_size == 0
    abandon(nvm)
    back = NVM(path, create=False)
    assert back.torn
    back.power_up()
    assert back.snapshot() == {"o": {"a": 1}}
    back.close()


def test_a_failed_append_leaves_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.flush()
    size = redo(path).stat().st_size

    def short(fd: int, data: bytes) -> int:
        return real_write(fd, data[:7])

    real_write = os.write
    monkeypatch.setattr(nvm_module.os, "write", short)
    nvm.write("o", "a", 2)
    with pytest.raises(OSError):
        nvm.flush()
    assert redo(path).stat().st_size == size
    monkeypatch.setattr(nvm_module.os, "write", real_write)
    nvm.flush()  # the change was kept, and goes now
    abandon(nvm)
    assert reopened(path) == {"o": {"a": 2}}


def test_a_damaged_record_with_a_good_checksum_is_a_damaged_image(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.flush()
    salt, lsn = nvm._redo_salt, nvm._redo_lsn
    abandon(nvm)
    assert salt is not None
    tail = struct.pack(">Q8s", lsn + 1, salt) + b'{"not": "rows"}'
    with open(redo(path), "ab") as f:
        f.write(struct.pack(">4sII", b"CERD", len(tail) - 16, zlib.crc32(tail)) + tail)
    with pytest.raises(NvmError, match="damaged card image"):
        NVM(path, create=False)


def test_remove_image_files_removes_the_log(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    states(path, 1)
    assert redo(path).exists()
    remove_image_files(str(path))
    assert os.listdir(tmp_path) == []
