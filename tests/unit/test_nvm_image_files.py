"""The card image's files, in-process: aside names, sweeping, the empty image, linking, opening.

`tests/unit/test_image_lock.py` checks the same promises with real processes;
these tests run in the test process so that mutation testing (mutmut) can see
them: exact aside names (`.NAME.PID.RAND.tmp`), stale aside files swept only
when their PID is dead, the bytes of a new image, `_link_into_place` refusing an
existing name, SQLite's companion files removed, read-only opens that change
nothing, and what `flush` writes.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import card.nvm as nvm_module
from card.errors import ImageInUse
from card.nvm import (
    IMAGE_APPLICATION_ID,
    IMAGE_MAGIC,
    IMAGE_VERSION_ALONE,
    NVM,
    NvmError,
    PowerLoss,
    _alive,
    _check_value,
    _connect,
    _link_into_place,
    _sweep_aside,
    _write_empty_image,
    aside_path,
    create_image,
    new_aside_image,
    remove_image_files,
)

_TOKEN = "0123abcd"


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not _alive(proc.pid)
    return proc.pid


def _touch(path: Path) -> Path:
    path.write_bytes(b"x")
    return path


# -- aside names ----------------------------------------------------------------------


def test_aside_path_is_hidden_pid_token_tmp_beside_the_image(tmp_path: Path) -> None:
    name = aside_path(tmp_path / "card.db")
    assert os.path.dirname(name) == str(tmp_path)
    assert re.fullmatch(
        rf"\.card\.db\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", os.path.basename(name)
    ), name
    assert not os.path.lexists(name)  # a name only: nothing made yet


def test_aside_paths_are_fresh(tmp_path: Path) -> None:
    names = {aside_path(tmp_path / "card.db") for _ in range(20)}
    assert len(names) == 20


def test_aside_path_sweeps_dead_leftovers_of_the_same_image(tmp_path: Path, dead_pid: int) -> None:
    stale = _touch(tmp_path / f".card.db.{dead_pid}.{_TOKEN}.tmp")
    other_image = _touch(tmp_path / f".other.db.{dead_pid}.{_TOKEN}.tmp")
    aside_path(tmp_path / "card.db")
    assert not stale.exists()
    assert other_image.exists()


def test_aside_path_relative_to_the_current_directory(
    tmp_path: Path, dead_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stale = _touch(tmp_path / f".card.db.{dead_pid}.{_TOKEN}.tmp")
    name = aside_path("card.db")
    assert os.path.dirname(name) == ""
    assert re.fullmatch(rf"\.card\.db\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", name), name
    assert not stale.exists()


# -- sweeping ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["tmp", "tmp-wal", "tmp-shm", "tmp-journal"])
def test_sweep_removes_each_kind_of_dead_leftover(
    tmp_path: Path, dead_pid: int, suffix: str
) -> None:
    stale = _touch(tmp_path / f".card.db.{dead_pid}.{_TOKEN}.{suffix}")
    _sweep_aside(str(tmp_path), "card.db")
    assert not stale.exists()


def test_sweep_leaves_live_and_unrelated_files_and_removes_every_dead_one(
    tmp_path: Path, dead_pid: int
) -> None:
    """Many files of each kind, so that directory order cannot hide a `break` for `continue`."""
    me = os.getpid()
    keep = []
    gone = []
    for i in range(12):
        tok = f"{i:08x}"
        gone.append(_touch(tmp_path / f".card.db.{dead_pid}.{tok}.tmp"))
        keep += [
            _touch(tmp_path / f".card.db.{me}.{tok}.tmp"),  # building now
            _touch(tmp_path / f"card{i}.db"),  # no prefix
            _touch(tmp_path / f".card.db.{dead_pid}.{tok[:7]}.tmp"),  # token of 7
            _touch(tmp_path / f".card.db.{dead_pid}.{tok}9.tmp"),  # token of 9
            _touch(tmp_path / f".card.db.x{dead_pid}.{tok}.tmp"),  # PID not a number
            _touch(tmp_path / f".card.db.{dead_pid}.{tok}.bak"),  # not our suffix
            _touch(tmp_path / f".card.db.{dead_pid}.{tok}.x.tmp"),  # an extra part
            _touch(tmp_path / f".card.db.{dead_pid}.{tok[:3]}.{tok[4:]}.tmp"),  # dotted token
        ]
    keep.append(_touch(tmp_path / "card.db"))
    _sweep_aside(str(tmp_path), "card.db")
    assert [p.name for p in gone if p.exists()] == []
    assert [p.name for p in keep if not p.exists()] == []


def test_sweep_of_a_missing_directory_is_quiet(tmp_path: Path) -> None:
    _sweep_aside(str(tmp_path / "nowhere"), "card.db")


def test_alive() -> None:
    assert _alive(os.getpid())


def test_dead(dead_pid: int) -> None:
    assert _alive(dead_pid) is False


# -- the empty image --------------------------------------------------------------------


def test_empty_image_bytes_and_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "e.db")
    _write_empty_image(path)
    header = Path(path).read_bytes()[:100]
    assert header.startswith(b"SQLite format 3\x00")
    assert header[68:72] == b"CEMU"
    assert int.from_bytes(header[68:72], "big") == IMAGE_APPLICATION_ID
    assert header[18:20] == b"\x02\x02"  # WAL mode (file format read/write versions 2)
    assert sorted(os.listdir(tmp_path)) == ["e.db"]  # the WAL is folded in and gone
    db = sqlite3.connect(path)
    try:
        assert dict(db.execute("SELECT key, value FROM meta")) == {
            "magic": IMAGE_MAGIC,
            "version": str(IMAGE_VERSION_ALONE),
        }
        assert db.execute("SELECT count(*) FROM nvm").fetchone() == (0,)
        cols = [r[1] for r in db.execute("PRAGMA table_info(nvm)")]
        assert cols == ["owner", "name", "value"]
    finally:
        db.close()
    remove_image_files(path)


def test_new_aside_image_is_an_openable_empty_card(tmp_path: Path) -> None:
    tmp = new_aside_image(tmp_path / "card.db")
    assert os.path.basename(tmp).startswith(f".card.db.{os.getpid()}.")
    nvm = NVM(tmp, create=False)
    assert nvm.snapshot() == {}
    nvm.close()
    remove_image_files(tmp)


def test_create_image_refuses_an_existing_path(tmp_path: Path) -> None:
    path = tmp_path / "card.db"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="already exists"):
        create_image(path)
    assert path.read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["card.db"]  # the aside image is gone
    create_image(path, exist_ok=True)
    assert path.read_bytes() == b"mine"


# -- files -------------------------------------------------------------------------------


def test_remove_image_files_removes_the_companions(tmp_path: Path) -> None:
    base = tmp_path / "i.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        _touch(Path(str(base) + suffix))
    other = _touch(tmp_path / "i.db-other")
    remove_image_files(str(base))
    assert sorted(os.listdir(tmp_path)) == [other.name]
    remove_image_files(str(base))  # none of them: quiet


def test_link_into_place_moves_the_file(tmp_path: Path) -> None:
    tmp, final = tmp_path / "t", tmp_path / "f"
    tmp.write_bytes(b"card")
    _link_into_place(str(tmp), str(final))
    assert final.read_bytes() == b"card"
    assert not tmp.exists()


def test_link_into_place_refuses_an_existing_target(tmp_path: Path) -> None:
    tmp, final = tmp_path / "t", tmp_path / "f"
    tmp.write_bytes(b"new")
    final.write_bytes(b"old")
    with pytest.raises(FileExistsError) as e:
        _link_into_place(str(tmp), str(final))
    assert str(e.value) == f"{final} already exists"
    assert final.read_bytes() == b"old"
    assert tmp.read_bytes() == b"new"


def test_link_into_place_falls_back_to_rename_without_hard_links(tmp_path: Path) -> None:
    # A directory cannot be hard-linked (EPERM), as on a file system without links.
    tmp, final = tmp_path / "t", tmp_path / "f"
    tmp.mkdir()
    _touch(tmp / "inside")
    _link_into_place(str(tmp), str(final))
    assert (final / "inside").exists()
    assert not tmp.exists()


def test_link_into_place_fallback_refuses_an_existing_target(tmp_path: Path) -> None:
    tmp, final = tmp_path / "t", tmp_path / "f"
    tmp.mkdir()
    os.symlink("nowhere", final)  # a dangling link is a name too
    with pytest.raises(FileExistsError) as e:
        _link_into_place(str(tmp), str(final))
    assert str(e.value) == f"{final} already exists"
    assert tmp.is_dir()
    assert os.path.islink(final)


# -- _connect ----------------------------------------------------------------------------


def test_connect_never_creates_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for readonly in (False, True):
        with pytest.raises(sqlite3.OperationalError):
            _connect(str(tmp_path / "missing.db"), readonly)
    with pytest.raises(sqlite3.OperationalError):
        _connect(str(tmp_path / "missing.db"))
    assert os.listdir(tmp_path) == []


def test_connect_writes_by_default(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    create_image(path)
    _leave_a_wal(path, tmp_path / "w.db")
    db = _connect(str(tmp_path / "w.db"))  # read-write even with a WAL there
    try:
        db.execute("INSERT INTO nvm VALUES ('o', 'n', '1')")
    finally:
        db.close()


def _leave_a_wal(src: str, dst: Path) -> None:
    """Copy `src` to `dst` as a killed process leaves it: one row ('a', 'w') only in the WAL."""
    db = sqlite3.connect(src, isolation_level=None)
    try:
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("""INSERT INTO nvm VALUES ('a', 'w', '7')""")
        dst.write_bytes(Path(src).read_bytes())
        Path(str(dst) + "-wal").write_bytes(Path(src + "-wal").read_bytes())
    finally:
        db.close()


def test_readonly_open_of_an_image_with_a_wal_changes_nothing(tmp_path: Path) -> None:
    src = str(tmp_path / "src.db")
    create_image(src)
    image = tmp_path / "killed.db"
    _leave_a_wal(src, image)
    wal = Path(str(image) + "-wal")
    before = (image.read_bytes(), wal.read_bytes())
    nvm = NVM(image, readonly=True)
    assert nvm.read("a", "w") == 7  # read through the WAL
    nvm.write("a", "w", 8)
    nvm.flush()
    nvm.close()
    assert (image.read_bytes(), wal.read_bytes()) == before


# -- opening ------------------------------------------------------------------------------


def test_new_nvm_starts_clean(tmp_path: Path) -> None:
    nvm = NVM(tmp_path / "n.db")
    assert nvm.apdu_writes == 0
    assert nvm.total_writes == 0
    assert nvm.readonly is False
    assert nvm.torn is False
    nvm.close()
    assert NVM().apdu_writes == 0


def test_readonly_never_creates(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(NvmError) as e:
        NVM(path, readonly=True)
    assert str(e.value) == f"no card image {path}"
    assert os.listdir(tmp_path) == []


def test_create_false_refuses_a_missing_image(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(NvmError) as e:
        NVM(path, create=False)
    assert str(e.value) == f"no card image {path}"
    assert os.listdir(tmp_path) == []


def test_opening_an_existing_image_touches_nothing_beside_it(tmp_path: Path, dead_pid: int) -> None:
    path = tmp_path / "card.db"
    create_image(path)
    # A dead builder's leftover: only building a new image sweeps it.
    stale = _touch(tmp_path / f".card.db.{dead_pid}.{_TOKEN}.tmp")
    for readonly in (False, True):
        NVM(path, readonly=readonly).close()
    assert stale.exists()


def test_open_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NvmError) as e:
        NVM(tmp_path, create=False)
    assert str(e.value) == f"{tmp_path} is a directory, not a card image"


def test_open_below_a_file(tmp_path: Path) -> None:
    f = _touch(tmp_path / "f")
    path = f / "card.db"
    with pytest.raises(NvmError) as e:
        NVM(path, create=False)
    assert str(e.value) == f"cannot open {path}: Not a directory"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    path.write_bytes(b"")
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == f"{path} is not a cardemu card image (an empty file)"
    assert path.read_bytes() == b""


@pytest.mark.parametrize(
    "content",
    [b"hello", b"x" * 4096, b"SQLite format 3\x00" + b"\x00" * 20],
    ids=["short", "long", "short-header"],
)
def test_other_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(content)
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == f"{path} is not a cardemu card image (not an SQLite database)"
    assert path.read_bytes() == content


def test_foreign_application_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id=305419896")  # 0x12345678
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == f"{path} is not a cardemu card image (application_id 12345678)"
    assert path.read_bytes() == before


def _old_image(path: Path, *, nvm_table: bool = True) -> None:
    """An image as made before the application_id mark: rollback journal, application_id 0."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    if nvm_table:
        db.execute(
            "CREATE TABLE nvm (owner TEXT NOT NULL, name TEXT NOT NULL,"
            " value TEXT NOT NULL, PRIMARY KEY (owner, name))"
        )
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("magic", IMAGE_MAGIC), ("version", "1")])
    db.commit()
    db.close()


def test_old_image_is_turned_to_wal_when_opened_for_writing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_image(path)
    assert path.read_bytes()[18:20] == b"\x01\x01"
    nvm = NVM(path)
    nvm.write("a", "x", 1)
    nvm.close()
    assert path.read_bytes()[18:20] == b"\x02\x02"
    nvm = NVM(path, readonly=True)
    assert nvm.read("a", "x") == 1
    nvm.close()


def test_old_image_opened_readonly_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_image(path)
    before = path.read_bytes()
    NVM(path, readonly=True).close()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["old.db"]


def test_image_without_nvm_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_image(path, nvm_table=False)
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == f"{path} is not a cardemu card image (no such table: nvm)"


# -- flush ----------------------------------------------------------------------------------


def _rows(path: Path) -> dict[tuple[str, str], str]:
    db = sqlite3.connect(path)
    try:
        return {(o, n): v for o, n, v in db.execute("SELECT owner, name, value FROM nvm")}
    finally:
        db.close()


def test_readonly_flush_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    nvm = NVM(path)
    nvm.write("a", "x", 1)
    nvm.close()
    before = path.read_bytes()
    nvm = NVM(path, readonly=True)
    assert nvm.readonly is True
    nvm.write("a", "x", 2)
    nvm.write("a", "y", 3)
    nvm.flush()
    nvm.close()
    assert path.read_bytes() == before
    assert _rows(path) == {("a", "x"): "1"}


def test_flush_stores_compact_json(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    nvm = NVM(path)
    nvm.write("a", "x", (1, b"\x01\x02", "s"))
    nvm.close()
    assert _rows(path) == {("a", "x"): '{"t":[1,{"b":"0102"},"s"]}'}


def _torn_in_transaction(path: Path) -> None:
    nvm = NVM(path)
    nvm.write("a", "y", 5)
    nvm.write("a", "x", 1)
    nvm.flush()
    nvm.begin()
    nvm.write("a", "x", 2)
    nvm.tear_after(0)
    with pytest.raises(PowerLoss):
        nvm.write("a", "z", 3)
    nvm.close()  # flushes while torn: the journal goes into the image


def test_journal_in_image_is_compact_and_loaded_with_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    _torn_in_transaction(path)
    rows = _rows(path)
    assert rows[("", "__journal__")] == json.dumps(
        json.loads(rows[("", "__journal__")]), separators=(",", ":")
    )
    assert " " not in rows[("", "__journal__")]
    nvm = NVM(path)
    assert nvm.torn is True
    assert nvm.read("a", "y") == 5  # the values outside the journal are loaded too
    assert nvm.read("a", "x") == 2
    assert nvm.power_up() is True
    assert nvm.read("a", "x") == 1
    nvm.close()
    assert _rows(path) == {("a", "x"): "1", ("a", "y"): "5"}


def test_flush_of_a_key_whose_segment_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    nvm = NVM(path)
    nvm.write("a", "x", 1)
    nvm.flush()
    nvm.delete("a", "x")
    nvm.delete_owner("a")  # the now empty segment is dropped; ('a', 'x') is still dirty
    nvm.flush()
    nvm.close()
    assert _rows(path) == {}


def test_failed_flush_rolls_back_and_raises_the_error(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    nvm = NVM(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("DROP TABLE nvm")
    other.close()
    nvm.write("a", "x", 1)
    nvm.flush()  # to the redo log
    with pytest.raises(sqlite3.OperationalError, match="no such table: nvm"):
        nvm.checkpoint()
    # Rolled back: the next one starts a transaction of its own and fails the same way.
    with pytest.raises(sqlite3.OperationalError, match="no such table: nvm"):
        nvm.checkpoint()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute(
        "CREATE TABLE nvm (owner TEXT NOT NULL, name TEXT NOT NULL,"
        " value TEXT NOT NULL, PRIMARY KEY (owner, name))"
    )
    other.close()
    nvm.close()  # the dirty value was kept, and is written now
    assert _rows(path) == {("a", "x"): "1"}


# -- publish ----------------------------------------------------------------------------------


def test_publish_renames_and_keeps_the_lock(tmp_path: Path) -> None:
    final = tmp_path / "card.db"
    tmp = new_aside_image(final)
    nvm = NVM(tmp, create=False)
    nvm.write("a", "x", 1)
    nvm.publish(final)
    assert nvm.path == str(final)
    assert not os.path.exists(tmp)
    with pytest.raises(ImageInUse):
        NVM(final)
    nvm.write("a", "x", 2)
    nvm.flush()
    nvm.close()
    nvm = NVM(final, readonly=True)
    assert nvm.read("a", "x") == 2
    nvm.close()
    assert sorted(os.listdir(tmp_path)) == ["card.db"]


def test_publish_refuses_an_existing_name(tmp_path: Path) -> None:
    final = _touch(tmp_path / "card.db")
    tmp = new_aside_image(final)
    nvm = NVM(tmp, create=False)
    nvm.write("a", "x", 1)
    with pytest.raises(FileExistsError, match="already exists"):
        nvm.publish(final)
    assert final.read_bytes() == b"x"
    nvm.write("a", "x", 2)  # still open under its aside name
    nvm.close()
    nvm = NVM(tmp, readonly=True)
    assert nvm.read("a", "x") == 2
    nvm.close()
    remove_image_files(tmp)


@pytest.mark.parametrize("readonly", [True, False])
def test_publish_needs_a_writable_open_image(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "card.db"
    create_image(path)
    nvm = NVM(path, readonly=readonly) if readonly else NVM()
    with pytest.raises(NvmError) as e:
        nvm.publish(tmp_path / "other.db")
    assert str(e.value) == "no writable card image is open"
    nvm.close()
    assert not (tmp_path / "other.db").exists()


# -- what the files hold, and the failure paths ------------------------------------------


def test_empty_image_schema_is_the_documented_one(tmp_path: Path) -> None:
    """The schema text is part of the image format: an older cardemu reads it back."""
    path = str(tmp_path / "s.db")
    _write_empty_image(path)
    db = sqlite3.connect(path)
    try:
        schema = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"))
    finally:
        db.close()
    assert schema == {
        "meta": "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "nvm": "CREATE TABLE nvm (owner TEXT NOT NULL, name TEXT NOT NULL,"
        " value TEXT NOT NULL, PRIMARY KEY (owner, name))",
    }
    remove_image_files(path)


def test_alive_only_asks(tmp_path: Path) -> None:
    """Asking whether a PID lives sends it nothing (signal 0): the process goes on."""
    # SIGHUP back to its default (a test run under nohup passes it on ignored), so that
    # any signal but 0 would end the child.
    child = "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_DFL); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", child])
    time.sleep(0.2)  # its handler is in place
    try:
        assert _alive(proc.pid) is True
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.3)  # still running
    finally:
        proc.kill()
        proc.wait()


def test_a_process_we_may_not_signal_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's process (EPERM) exists: its aside files are not ours to sweep."""

    def refuse(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(nvm_module.os, "kill", refuse)
    assert _alive(1) is True


def test_check_value_names_the_refused_type() -> None:
    with pytest.raises(TypeError) as e:
        _check_value({"a": 1})
    assert str(e.value) == "a persistent value must be None/bool/int/str/bytes/tuple, not dict"


def test_link_fallback_refuses_a_name_that_appeared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system without hard links (EPERM), an existing name is refused by name."""
    tmp, final = _touch(tmp_path / "t"), _touch(tmp_path / "f")

    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(nvm_module.os, "link", no_links)
    with pytest.raises(FileExistsError) as e:
        _link_into_place(str(tmp), str(final))
    assert str(e.value) == f"{final} already exists"
    assert tmp.exists()


def test_a_failed_aside_image_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(tmp: str) -> None:
        Path(tmp).write_bytes(b"SQLite format 3\x00")
        Path(tmp + "-wal").write_bytes(b"")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nvm_module, "_write_empty_image", half_written)
    with pytest.raises(OSError, match="No space left"):
        new_aside_image(tmp_path / "card.db")
    assert os.listdir(tmp_path) == []


def test_two_creators_at_once_the_second_opens_the_first_ones_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image appears between the check and the link: it is opened, not refused."""
    path = tmp_path / "card.db"
    first = NVM(path)
    first.write("a", "x", 7)
    first.close()
    real = os.path.lexists
    monkeypatch.setattr(
        nvm_module.os.path, "lexists", lambda p: False if p == str(path) else real(p)
    )
    second = NVM(path)
    assert second.read("a", "x") == 7
    second.close()
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["card.db"]


def test_an_image_sqlite_cannot_open_is_named_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "card.db"
    create_image(path)

    def refuse(path: str, readonly: bool = False) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(nvm_module, "_connect", refuse)
    with pytest.raises(NvmError) as e:
        NVM(path)
    assert str(e.value) == f"cannot open {path}: unable to open database file"
    monkeypatch.undo()
    NVM(path).close()  # the lock went with the failure


def test_rows_after_the_journal_row_are_loaded(tmp_path: Path) -> None:
    """Row order in the image does not matter (`_load` reads every row)."""
    path = tmp_path / "o.db"
    _torn_in_transaction(path)
    db = sqlite3.connect(path, isolation_level=None)
    # Rewrite the rows so that the journal comes first in table order.
    rows = list(db.execute("SELECT owner, name, value FROM nvm ORDER BY owner=''"))
    db.execute("DELETE FROM nvm")
    db.executemany("INSERT INTO nvm VALUES (?, ?, ?)", sorted(rows, key=lambda r: r[0] != ""))
    assert next(db.execute("SELECT owner FROM nvm"))[0] == ""
    db.close()
    nvm = NVM(path)
    assert (nvm.torn, nvm.read("a", "y"), nvm.read("a", "x")) == (True, 5, 2)
    assert nvm.power_up() is True
    assert nvm.read("a", "x") == 1
    nvm.close()


def test_publish_whose_reopen_fails_still_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image is linked; reopening it fails: the error comes out and close() still works."""
    final = tmp_path / "card.db"
    nvm = NVM(new_aside_image(final), create=False)
    nvm.write("a", "x", 1)

    def refuse(path: str, readonly: bool = False) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(nvm_module, "_connect", refuse)
    with pytest.raises(sqlite3.OperationalError):
        nvm.publish(final)
    monkeypatch.undo()
    nvm.close()
    nvm = NVM(final, readonly=True)  # complete under its name, and no longer locked
    assert nvm.read("a", "x") == 1
    nvm.close()
