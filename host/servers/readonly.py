"""Opening a server's SQLite store to look, never to change: `cardemu smdpp orders`.

An inspecting command must not create a missing file, initialise an empty one
or add tables to someone else's database. `open_read_only` checks that the
file is an SQLite database holding the role's tables before anything else, and
opens it read-only (SQLite URI `mode=ro`). A database in WAL mode that nobody
has open (no `-wal`/`-shm` beside it) is opened `immutable`, because a
read-only connection would otherwise create those two files and leave them.
`check_store` is the same check for the commands that do write (`smdpp order`,
`smdpp serve`): they may create a store, but never in a foreign file.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Sequence

__all__ = ["NotAStore", "check_store", "open_read_only"]

_SQLITE_HEADER = b"SQLite format 3\x00"


class NotAStore(ValueError):
    """The file is missing, or is not the store it was named as (one line, naming it)."""


def _header(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        raise NotAStore(f"{path}: no such file (expected {what})") from None
    except OSError as e:
        raise NotAStore(f"cannot read {path}: {e.strerror or e}") from None
    if not header:
        raise NotAStore(f"{path} is not {what} (an empty file)")
    if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
        raise NotAStore(f"{path} is not {what} (not an SQLite database)")
    return header


def _missing_tables(conn: sqlite3.Connection, tables: Sequence[str]) -> list[str]:
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return [t for t in tables if t not in have]


def open_read_only(
    path: str | os.PathLike[str], *, what: str, tables: Sequence[str]
) -> sqlite3.Connection:
    """Open an existing store to read it; nothing on disk is created or changed.

    Args:
        path: the database file.
        what: what it should be, for messages ("an SM-DP+ store").
        tables: tables it must hold.

    Raises:
        NotAStore: missing, empty, not SQLite, or without those tables.
    """
    p = os.fspath(path)
    header = _header(p, what)
    wal = header[18] == 2 and header[19] == 2
    idle = not (os.path.exists(p + "-wal") or os.path.exists(p + "-shm"))
    query = "immutable=1" if wal and idle else "mode=ro"
    uri = f"file:{urllib.parse.quote(os.path.abspath(p))}?{query}"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as e:
        raise NotAStore(f"cannot open {p}: {e}") from None
    try:
        missing = _missing_tables(conn, tables)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise NotAStore(f"{p} is not {what} ({e})") from None
    if missing:
        conn.close()
        raise NotAStore(f"{p} is not {what} (no table {', '.join(missing)})")
    conn.row_factory = sqlite3.Row
    return conn


def check_store(path: str | os.PathLike[str], *, what: str, tables: Sequence[str]) -> None:
    """Before a store is opened for writing: refuse an existing file that is not one.

    A missing or 0-byte file is fine (the role makes its store there).

    Raises:
        NotAStore: the file holds something else.
    """
    p = os.fspath(path)
    if p == ":memory:" or not os.path.exists(p) or os.path.getsize(p) == 0:
        return
    open_read_only(p, what=what, tables=tables).close()
