"""A card image with a live redo log is format 2: a cardemu from before the log refuses it.

A cardemu from before the redo log (card.nvm with IMAGE_VERSION 1 and no replay)
opens the SQLite file alone. Given an image whose process was killed with APDUs in
`<image>-redo`, it would show the card without them, and a later replay of the stale
log would undo what it wrote meanwhile. So an image is marked format 2 before its
log's first record and format 1 again once close() folds the log in; the older
version refuses format 2 with its "newer than this cardemu" message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from card import nvm as nvm_module
from card.nvm import IMAGE_VERSION, IMAGE_VERSION_ALONE, NVM, NvmError
from tests.unit.test_nvm_redo import abandon, redo, reopened, states


def image_format(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0])
    finally:
        db.close()


@contextmanager
def older_cardemu() -> Iterator[None]:
    """card.nvm as it was before the redo log: format 1 only, the log unknown."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nvm_module, "IMAGE_VERSION", 1)
        mp.setattr(NVM, "_replay", lambda self, path, db: None)
        yield


def test_the_formats() -> None:
    assert (IMAGE_VERSION_ALONE, IMAGE_VERSION) == (1, 2)


def test_an_image_with_a_pending_log_is_refused_by_an_older_cardemu(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    seen = states(path, 4)  # four APDUs in the log, the process killed
    assert redo(path).stat().st_size > 0 and image_format(path) == 2
    with older_cardemu(), pytest.raises(NvmError) as e:
        NVM(path, create=False)
    assert str(e.value) == f"{path} is a card image of format 2, newer than this cardemu"
    with older_cardemu(), pytest.raises(NvmError):
        NVM(path, create=False, readonly=True)
    # This cardemu replays the log; closed, the image is format 1 alone again, and the
    # older cardemu opens it with every APDU in it.
    assert reopened(path) == seen[-1]
    assert not redo(path).exists() and image_format(path) == 1
    with older_cardemu():
        assert reopened(path) == seen[-1]


def test_what_the_mark_prevents(tmp_path: Path) -> None:
    """Without the mark, the older cardemu would open the card as it was before the log."""
    path = tmp_path / "a.card"
    seen = states(path, 3)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='1' WHERE key='version'")
    db.commit()
    db.close()
    with older_cardemu():
        assert reopened(path) == seen[0] != seen[-1]  # three completed APDUs lost


def test_new_and_cleanly_closed_images_are_format_1(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    nvm = NVM(path)
    assert image_format(path) == 1  # nothing logged yet
    nvm.write("o", "x", 1)
    nvm.flush()
    assert image_format(path) == 2  # marked before the first record
    nvm.checkpoint()
    assert image_format(path) == 2  # folded, but the log goes on
    nvm.write("o", "x", 2)
    nvm.flush()
    nvm.close()
    assert image_format(path) == 1 and not redo(path).exists()
    with older_cardemu():
        assert reopened(path) == {"o": {"x": 2}}


def test_an_open_that_logs_nothing_leaves_the_format_alone(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    NVM(path).close()
    nvm = NVM(path)
    nvm.flush()
    assert image_format(path) == 1
    nvm.close()
    assert image_format(path) == 1


def test_killed_between_the_mark_and_the_first_record(tmp_path: Path) -> None:
    """Marked 2 with no log yet: this cardemu opens it, and closing brings it back to 1."""
    path = tmp_path / "a.card"
    nvm = NVM(path)
    nvm.write("o", "x", 1)
    nvm.flush()
    nvm.checkpoint()
    nvm._close_redo()
    redo(path).unlink()
    abandon(nvm)
    assert image_format(path) == 2
    assert reopened(path) == {"o": {"x": 1}}
    assert image_format(path) == 1


def test_published_images_are_format_1_until_they_log(tmp_path: Path) -> None:
    aside = tmp_path / "aside.card"
    final = tmp_path / "final.card"
    nvm = NVM(aside)
    nvm.write("o", "x", 1)
    nvm.flush()
    assert image_format(aside) == 2
    nvm.publish(final)
    assert image_format(final) == 1 and not redo(final).exists()
    nvm.write("o", "x", 2)
    nvm.flush()
    assert image_format(final) == 2
    abandon(nvm)
    with older_cardemu(), pytest.raises(NvmError):
        NVM(final, create=False)
    assert reopened(final) == {"o": {"x": 2}}


def test_a_newer_format_still_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.card"
    NVM(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='3' WHERE key='version'")
    db.commit()
    db.close()
    with pytest.raises(NvmError, match="of format 3, newer than this cardemu"):
        NVM(path, create=False)
