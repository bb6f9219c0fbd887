"""The card image's files, in-process: aside names, sweeping, the empty image, linking, opening.

`tests/unit/test_image_lock.py` checks the same promises with real processes;
these tests run in the test process so that mutation testing (mutmut) can see
them: exact aside names (`.NAME.PID.RAND.tmp`), stale aside files swept only
when their PID is dead, the bytes of a new image, `_link_into_place` refusing an
existing name, SQLite's companion files removed, read-only opens that change
nothing, and what `flush` writes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from card.errors import ImageInUse
from card.nvm import (
    IMAGE_APPLICATION_ID,
    IMAGE_MAGIC,
    IMAGE_VERSION,
    NVM,
    NvmError,
    PowerLoss,
    _alive,
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
            "version": str(IMAGE_VERSION),
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
