"""The redo log's refusals and corner cases, each of which a mutant of `card.nvm` survived.

Records are crafted here byte by byte (magic, length, CRC-32, LSN, salt, payload
as `card.nvm` writes them) to reach the checks a torn append or a power cut
cannot: a good CRC under a wrong magic, an LSN already folded in, a row of the
wrong shape.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import struct
import zlib
from pathlib import Path

import pytest

from card import nvm as nvm_module
from card.nvm import NVM, REDO_SUFFIX, NvmError


def redo(path: Path) -> Path:
    return Path(str(path) + REDO_SUFFIX)


def abandon(nvm: NVM) -> None:
    """Let go of an open image as a killed process does: nothing flushed or folded."""
    nvm._close_redo()
    assert nvm._db is not None and nvm._lock is not None
    nvm._db.close()
    nvm._db = None
    nvm._lock.release()
    nvm._lock = None


def record(lsn: int, salt: bytes, rows: object, magic: bytes = b"CERD") -> bytes:
    """One redo record as `NVM._append_redo` writes it."""
    payload = json.dumps(rows, separators=(",", ":")).encode()
    tail = struct.pack(">Q8s", lsn, salt) + payload
    return struct.pack(">4sII", magic, len(payload), zlib.crc32(tail)) + tail


def meta_redo(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT value FROM meta WHERE key='redo'").fetchone()[0])
    finally:
        db.close()


def folded_image(path: Path) -> tuple[bytes, int]:
    """An image holding o/v = 0 with every record folded in: its log's salt and last LSN."""
    nvm = NVM(path)
    nvm.write("o", "v", 0)
    nvm.checkpoint()
    salt, lsn = nvm._redo_salt, nvm._redo_lsn
    abandon(nvm)
    assert salt is not None and lsn == 1
    assert meta_redo(path) == f"{salt.hex()}:{lsn}"
    return salt, lsn


def reopened(path: Path, readonly: bool = False) -> dict[str, dict[str, object]]:
    nvm = NVM(path, create=False, readonly=readonly)
    try:
        return nvm.snapshot()
    finally:
        nvm.close()


def test_a_record_under_another_magic_ends_the_replay(tmp_path: Path) -> None:
    # The CRC covers LSN, salt and payload, not the magic: the magic is checked alone.
    path = tmp_path / "a.card"
    salt, lsn = folded_image(path)
    redo(path).write_bytes(
        record(lsn + 1, salt, [["o", "v", 1]])
        + record(lsn + 2, salt, [["o", "v", 2]], magic=b"CERX")
        + record(lsn + 3, salt, [["o", "v", 3]])
    )
    assert reopened(path) == {"o": {"v": 1}}


def test_records_at_or_below_the_folded_lsn_are_skipped_not_an_end(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    salt, lsn = folded_image(path)
    redo(path).write_bytes(
        record(lsn - 1, salt, [["o", "v", 7]])
        + record(lsn, salt, [["o", "v", 8]])
        + record(lsn + 1, salt, [["o", "w", 1]])
        + record(lsn + 2, salt, [["o", "v", 2]])
    )
    assert reopened(path) == {"o": {"v": 2, "w": 1}}


@pytest.mark.parametrize("gap", [0, 2, -1])
def test_an_lsn_out_of_order_ends_the_replay(tmp_path: Path, gap: int) -> None:
    path = tmp_path / "a.card"
    salt, lsn = folded_image(path)
    redo(path).write_bytes(
        record(lsn + 1, salt, [["o", "v", 1]]) + record(lsn + 1 + gap, salt, [["o", "v", 2]])
    )
    assert reopened(path) == {"o": {"v": 1}}


def test_a_replayed_log_folds_in_and_carries_on_from_its_lsn(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    salt, lsn = folded_image(path)
    redo(path).write_bytes(
        record(lsn + 1, salt, [["o", "w", 1]]) + record(lsn + 2, salt, [["o", "v"]])
    )
    nvm = NVM(path, create=False)
    assert nvm.snapshot() == {"o": {"w": 1}}
    assert nvm._redo_lsn == lsn + 2
    new_salt, _, folded = meta_redo(path).partition(":")
    assert new_salt != salt.hex() and int(folded) == lsn + 2
    assert redo(path).stat().st_size == 0
    nvm.close()


@pytest.mark.parametrize(
    "rows",
    [
        [["o", "v", 1, 2]],
        [[1, "v", 1]],
        [["o", 2, 1]],
        [["o", "v", 1], ["o", "v", 2, 3]],
        [["o"]],  # too short to name a key: was a raw IndexError
        [[]],
        ["ab"],  # a string, not a row: was read as a delete of a/b
        [{"o": "v"}],
        [None],
    ],
)
def test_a_row_of_the_wrong_shape_is_a_damaged_image(tmp_path: Path, rows: object) -> None:
    path = tmp_path / "a.card"
    salt, lsn = folded_image(path)
    redo(path).write_bytes(record(lsn + 1, salt, rows))
    with pytest.raises(NvmError, match="damaged card image"):
        NVM(path, create=False)
    # and the image, refused, was left as it was
    assert redo(path).read_bytes() == record(lsn + 1, salt, rows)


@pytest.mark.parametrize(
    ("payload", "why"),
    [(b"", "Expecting value"), (b'{"o": 1}', "not a list of rows"), (b'[["o","v",1,2]]', "")],
)
def test_a_checksummed_record_that_is_no_list_of_rows_is_a_damaged_image(
    tmp_path: Path, payload: bytes, why: str
) -> None:
    # A record of 0 payload bytes at the very end is still read (and is damaged).
    path = tmp_path / "a.card"
    salt, lsn = folded_image(path)
    tail = struct.pack(">Q8s", lsn + 1, salt) + payload
    redo(path).write_bytes(struct.pack(">4sII", b"CERD", len(payload), zlib.crc32(tail)) + tail)
    with pytest.raises(NvmError, match="damaged card image") as e:
        NVM(path, create=False)
    assert why in str(e.value)
    if payload == b'[["o","v",1,2]]':
        assert str(e.value).endswith(" (a damaged redo record)")
    if why == "not a list of rows":
        assert str(e.value).endswith(" (a redo record is not a list of rows)")


def test_replayed_values_weigh_what_loaded_ones_do(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "keep", b"12345678")
    nvm.write("o", "grow", b"ab")
    nvm.write("o", "gone", (1, 2, 3))
    nvm.checkpoint()
    nvm.write("o", "grow", b"abcdefghijkl")
    nvm.write("o", "new", "xyz")
    nvm.delete("o", "gone")
    nvm.flush()
    expected = nvm.used
    abandon(nvm)
    replayed = NVM(path, create=False)
    assert replayed.used == expected
    replayed.close()
    loaded = NVM(path, create=False)
    assert loaded.used == expected
    loaded.close()


def test_a_failed_append_truncates_to_the_records_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    for i in (1, 2, 3):
        nvm.write("o", "a", i)
        nvm.flush()
    size = redo(path).stat().st_size
    assert nvm._redo_size == size

    def short(fd: int, data: bytes) -> int:
        return real_write(fd, data[:5])

    real_write = os.write
    monkeypatch.setattr(nvm_module.os, "write", short)
    nvm.write("o", "a", 4)
    with pytest.raises(OSError, match="short write to the redo log") as e:
        nvm.flush()
    assert e.value.errno == errno.ENOSPC
    assert e.value.strerror == "short write to the redo log"
    assert redo(path).stat().st_size == size
    monkeypatch.undo()
    nvm.flush()
    abandon(nvm)
    assert reopened(path) == {"o": {"a": 4}}


def test_the_log_is_folded_at_exactly_n_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nvm_module, "REDO_CHECKPOINT_RECORDS", 3)
    path = tmp_path / "a.card"
    nvm = NVM(path)
    counts = []
    for i in range(7):
        nvm.write("o", "v", i)
        nvm.flush()
        counts.append(nvm._redo_records)
    assert counts == [1, 2, 0, 1, 2, 0, 1]
    nvm.close()


def test_the_log_is_folded_at_exactly_n_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "v", 10)
    nvm.flush()
    one = nvm._redo_size
    monkeypatch.setattr(nvm_module, "REDO_CHECKPOINT_BYTES", 3 * one)
    sizes = []
    for i in range(11, 16):  # records of the same size
        nvm.write("o", "v", i)
        nvm.flush()
        sizes.append(nvm._redo_size)
    assert sizes == [2 * one, 0, one, 2 * one, 0]
    assert redo(path).stat().st_size == 0
    nvm.close()
    assert reopened(path) == {"o": {"v": 15}}


def test_the_log_is_created_with_the_images_mode(tmp_path: Path) -> None:
    # 0o666 less the umask, as SQLite creates its -wal and -shm files.
    umask = os.umask(0o022)
    try:
        nvm = NVM(tmp_path / "a.card")
        nvm.write("o", "v", 1)
        nvm.flush()
        assert stat.S_IMODE(redo(tmp_path / "a.card").stat().st_mode) == 0o644
        nvm.close()
    finally:
        os.umask(umask)


def test_an_empty_log_opened_for_writing_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    folded_image(path)
    redo(path).write_bytes(b"")
    before = meta_redo(path)
    nvm = NVM(path, create=False)
    assert meta_redo(path) == before
    nvm.close()
    assert meta_redo(path) == before


def test_an_equal_nested_tuple_is_no_write(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "v", (1, (2, (b"3",)), "x"))
    nvm.flush()
    writes = nvm.total_writes
    nvm.write("o", "v", (1, (2, (b"3",)), "x"))
    assert nvm.total_writes == writes
    nvm.write("o", "v", (1, (2, (b"4",)), "x"))
    assert nvm.total_writes == writes + 1
    nvm.close()


def test_a_deleted_value_written_back_by_name_writes_nothing(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "x", 7)
    nvm.flush()
    lsn = nvm._redo_lsn
    nvm.delete("o", "x")
    nvm.write("o", "x", 7)
    nvm.flush()
    assert nvm._redo_lsn == lsn
    nvm.close()


def test_an_abort_after_a_flush_inside_the_transaction_restores_none(tmp_path: Path) -> None:
    # The rollback's restore is compared with what the image holds then (5), not
    # with None: restoring None is a change to write.
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "v", None)
    nvm.flush()
    nvm.begin()
    nvm.write("o", "v", 5)
    nvm.flush()  # inside a transaction: to SQLite, journal and all
    nvm.abort()
    nvm.flush()
    abandon(nvm)
    assert reopened(path) == {"o": {"v": None}}


def test_a_journal_write_with_an_empty_log_keeps_the_logs_salt(tmp_path: Path) -> None:
    # Only a fold names a new salt; a tear inside a transaction with nothing logged
    # writes the journal and the values, not the meta row.
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.checkpoint()
    salt = nvm._redo_salt
    before = meta_redo(path)
    nvm.begin()
    nvm.write("o", "a", 2)
    nvm.tear_after(0)
    with pytest.raises(nvm_module.PowerLoss):
        nvm.write("o", "b", 3)
    nvm.flush()
    assert meta_redo(path) == before and nvm._redo_salt == salt
    nvm.power_up()
    nvm.flush()
    assert meta_redo(path) == before and nvm._redo_salt == salt
    nvm.close()
    assert reopened(path) == {"o": {"a": 1}}


def test_a_key_changed_back_does_not_hide_the_keys_after_it(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "a", 1)
    nvm.flush()
    nvm.write("o", "a", 2)
    nvm.write("o", "a", 1)  # back: the first dirty key is no change
    nvm.write("o", "b", 3)
    nvm.flush()
    abandon(nvm)
    assert reopened(path) == {"o": {"a": 1, "b": 3}}


def test_an_old_value_equal_to_the_last_size_weighs_its_own_size(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "s", b"abc")
    k = nvm._size_memo[1]
    nvm.write("o", "n", k)  # an int as small as Python keeps one object of
    nvm.write("o", "s", b"abc" + b"d")
    nvm.write("o", "s", b"abc")  # the memo's size is k again
    nvm.write("o", "n", k + 1)
    used = nvm.used
    nvm.close()
    again = NVM(tmp_path / "a.card", create=False)
    assert again.used == used
    again.close()


def test_an_equal_value_of_another_type_goes_to_the_log(tmp_path: Path) -> None:
    # Nothing else in the log would carry it to the image: True after 1 is a record.
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "x", 1)
    nvm.checkpoint()
    nvm.write("o", "x", True)
    nvm.flush()
    abandon(nvm)
    assert repr(reopened(path)) == repr({"o": {"x": True}})


def test_an_old_value_equal_to_the_second_memos_size_weighs_its_own_size(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "a.card")
    nvm.write("o", "s", b"abc")
    k = nvm._size_memo[1]
    nvm.write("o", "n", k)
    nvm.write("o", "s", b"abcd")
    nvm.write("o", "s", b"abc" if nvm._size_memo[1] != k else b"ab")
    nvm.write("o", "t", b"q")  # the second memo now holds a value of size k, not k itself
    nvm.write("o", "n", k + 1)
    used = nvm.used
    nvm.close()
    again = NVM(tmp_path / "a.card", create=False)
    assert again.used == used
    again.close()
