"""Persistent memory: atomic writes, transactions with an undo journal, tears, the card image.

The model is Java Card's (JC 3.0 Runtime Environment §7): every single write to a
persistent field is atomic; `begin`/`commit`/`abort` group writes with an undo
journal; a power loss ("tear") inside a transaction is rolled back at the next
power-up. Writes outside a transaction that completed before a tear stay.

Values are immutable: None, bool, int, str, bytes and tuples of them. Storing a
whole new value is the unit of atomicity, so an applet that needs two fields to
change together either keeps them in one tuple or wraps the writes in a
transaction.

A card image is a SQLite file and, while it is open or after its process was
killed, a redo log beside it (`<image>-redo`). `flush()` (called by the runtime
after every APDU) appends what the APDU changed to the log as one checksummed
record in one write(); the log is folded into SQLite in one transaction every
few thousand records, when a transaction journal must be written, and on
close, and is replayed when the image is opened. A killed process leaves the
image as of its last completed APDU; a record torn by the kill is discarded
whole; SQLite never leaves the file corrupt. What changes and changes back
within one flush (a correct VERIFY's decrement and restore of the try counter)
is no change, and nothing is written for it; a tear between the two writes
still writes the decrement (the runtime flushes after a tear), and a killed
process wrote neither. Durability is that of SQLite's WAL with
synchronous=NORMAL, which the image uses: a killed process loses no completed
APDU; a power cut of the machine may lose the last few, never part of one.
While its log is live the image is marked format 2 (`IMAGE_VERSION`), and 1
again once close() has folded the log in: a cardemu from before the log refuses
it ("newer than this cardemu") rather than open the card without the APDUs the
log holds.

An image is used by one open at a time: opening it takes an exclusive lock
(`card.imagelock`) that a second open, in this process or another, is refused
with `ImageInUse`, and that dies with its holder; it covers the redo log too,
which only the holder reads or writes. An image marks itself with
SQLite's `application_id` (images from before it have 0 there) and a `meta`
table; a 0-byte file, a foreign SQLite database or any other file is refused as
"not a cardemu card image" and left untouched. A new image is built aside and
renamed into place (`create_image`, `NVM.publish`), so an image path never
holds half a card.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import sqlite3
import struct
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from card.errors import ImageInUse as ImageInUse  # re-exported: callers catch it here
from card.errors import NvmError
from card.imagelock import ImageLock

Value = Any  # None | bool | int | str | bytes | tuple[Value, ...]

IMAGE_MAGIC = "cardemu-card-image"
#: The newest image format this cardemu opens. 1: the SQLite file alone, all of the
#: card in it. 2: the SQLite file continued by a redo log (`<image>-redo`) that may
#: hold completed APDUs. An image is marked 2 before its log's first record and back
#: to 1 when close() has folded the log in: a cardemu from before the log (which
#: opens format 1 only) knows nothing of the log, so it would show the card without
#: those APDUs, and a later replay of the stale log would undo its own writes; it
#: refuses a format 2 image instead ("... of format 2, newer than this cardemu").
IMAGE_VERSION = 2
#: the format of an image with no live redo log (new, or closed cleanly), which any
#: cardemu opens
IMAGE_VERSION_ALONE = 1
#: SQLite's `PRAGMA application_id` of a card image: "CEMU"
IMAGE_APPLICATION_ID = int.from_bytes(b"CEMU", "big")
_SQLITE_HEADER = b"SQLite format 3\x00"
_JOURNAL_KEY = "__journal__"
_ABSENT = object()
#: the redo log beside an image: `<image>-redo`
REDO_SUFFIX = "-redo"
#: a redo record's header: magic, payload length, CRC-32 of what follows it, LSN, salt
_REDO_HEAD = struct.Struct(">4sIIQ8s")
_REDO_MAGIC = b"CERD"
#: the log is folded into the image when it holds this many records or bytes
REDO_CHECKPOINT_RECORDS = 4096
REDO_CHECKPOINT_BYTES = 4 << 20
#: the meta row naming the log that continues the image: "<salt hex>:<last LSN folded in>"
_REDO_META = "redo"
#: scalars charged a fixed 4 bytes
_FIXED = frozenset((type(None), bool, int))


class PowerLoss(BaseException):
    """Simulated loss of power in the middle of a write sequence (a tear).

    A BaseException so that an applet's `except Exception` cannot swallow it.
    """


class TransactionError(Exception):
    """Java Card's TransactionException: nested begin, commit/abort without begin, overflow."""

    IN_PROGRESS = 1
    NOT_IN_PROGRESS = 2
    BUFFER_FULL = 3

    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OutOfMemory(Exception):
    """Persistent memory is full (Java Card's SystemException.NO_RESOURCE)."""


def _check_value(value: Value) -> tuple[Value, int]:
    """The value as stored (lists and bytearrays frozen) and its size estimate.

    One pass over the value: a write validates and sizes it together. A flat
    tuple of scalars (most records: PIN state, SQN, file headers) is checked
    in a loop without recursion and kept as it is.
    """
    t = type(value)
    if t is bytes or t is str:
        return value, len(value) + 2
    if t is tuple or t is list:
        size = 2
        for v in value:
            tv = type(v)
            if tv is bytes or tv is str:
                size += len(v) + 2
            elif tv in _FIXED:
                size += 4
            else:
                break
        else:
            return (value if t is tuple else tuple(value)), size
        items = []
        size = 2
        for v in value:
            tv = type(v)
            if tv in _FIXED:
                items.append(v)
                size += 4
                continue
            if tv is tuple:
                # A flat tuple inside (an SQN array): checked here, without recursion.
                n = 2
                for x in v:
                    tx = type(x)
                    if tx in _FIXED:
                        n += 4
                    elif tx is bytes or tx is str:
                        n += len(x) + 2
                    else:
                        break
                else:
                    items.append(v)
                    size += n
                    continue
            v, n = _check_value(v)
            items.append(v)
            size += n
        return tuple(items), size
    if t in _FIXED:
        return value, 4
    if t is bytearray or t is memoryview:
        value = bytes(value)
        return value, len(value) + 2
    raise TypeError(f"a persistent value must be None/bool/int/str/bytes/tuple, not {t.__name__}")


def stored_form(value: Value) -> Value:
    """The value exactly as `NVM.write` stores it (and a read gives it back): lists as
    tuples, bytearrays and memoryviews as bytes, all the way down; a stored value is its
    own stored form.

    Raises:
        TypeError: a value NVM does not store.
    """
    return _check_value(value)[0]


def _same(a: Value, b: Value) -> bool:
    """Whether two stored values are the same, type for type (True is not 1, even in a tuple).

    The image keeps the types (JSON's true and 1 differ), so a value that only
    compares equal to what the image holds is still a change.
    """
    ta = type(a)
    if ta is not type(b) or a != b:
        return False
    if ta is tuple:
        for x, y in zip(a, b, strict=True):
            tx = type(x)
            if tx is not type(y) or (tx is tuple and not _same(x, y)):
                return False
    return True


def _size(value: Value) -> int:
    t = type(value)
    if t is bytes or t is str:
        return len(value) + 2
    if t is tuple:
        size = 2
        for v in value:
            tv = type(v)
            if tv is bytes or tv is str:
                size += len(v) + 2
            elif tv is tuple:
                size += _size(v)
            else:
                size += 4
        return size
    return 4


def _encode(value: Value) -> Any:
    # JSON with tags keeps the image readable and never executes anything on load
    # (the image format deliberately avoids pickle).
    t = type(value)
    if t is bytes:
        return {"b": value.hex()}
    if t is tuple:
        return {"t": [_encode(v) for v in value]}
    return value


#: compact JSON for the image's rows (one encoder, built once)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _decode(obj: Any) -> Value:
    if isinstance(obj, dict):
        if "b" in obj:
            return bytes.fromhex(obj["b"])
        if "t" in obj:
            return tuple(_decode(v) for v in obj["t"])
        raise NvmError("unknown value tag in card image")
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    raise NvmError(f"unexpected value of type {type(obj).__name__} in card image")


class NVM:
    """The persistent memory of one card.

    Args:
        path: SQLite card image, or None for a card that lives in memory only.
        capacity: bytes of persistent memory the card reports (an estimate of the
            stored values' size is charged against it).
        create: make an empty image when `path` does not exist (built aside and
            renamed into place); False: a missing image is an error.
        readonly: never write the image: changes stay in memory (for inspecting
            it; implies create=False).

    Raises:
        ImageInUse: another open holds the image.
        NvmError: not a card image, a newer format, or a missing one (create=False).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        capacity: int = 1 << 20,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> None:
        self.capacity = capacity
        self.readonly = readonly
        self._segments: dict[str, dict[str, Value]] = {}
        self._journal: list[tuple[str, str, Value]] | None = None
        self._journaled: set[tuple[str, str]] = set()
        #: the keys changed since the last flush, each with the value the image holds for
        #: it (the value before its first change since then; _ABSENT: no row)
        self._dirty: dict[tuple[str, str], Value] = {}
        #: the last value written and its size: a record rewritten APDU after APDU (a PIN's
        #: counter, SQN) is not walked again to learn what its old value weighed
        self._size_memo: tuple[Value, int] = (_ABSENT, 0)
        #: the value written before that and its size: a PIN record alternates between
        #: two stored tuples (decremented, restored), each a checked, frozen value that
        #: is neither walked nor sized again when the same object is written back
        self._size_memo2: tuple[Value, int] = (_ABSENT, 0)
        self._used = 0
        self._tear_countdown: int | None = None
        #: writes since the runtime last reset it (the runtime uses it per APDU)
        self.apdu_writes = 0
        #: of those, the writes an abort undid (`abort`): `apdu_writes` counts every
        #: write attempted (tear points), this says how many left nothing behind
        self.apdu_undone = 0
        #: `apdu_writes` when the open transaction began
        self._begin_writes = 0
        #: every write ever attempted on this NVM object, for tear enumeration
        self.total_writes = 0
        #: True between a tear and the next power-up
        self.torn = False
        #: called after every rollback (abort, or power-up after a tear), so that whoever
        #: keeps data derived from persistent memory in RAM (the runtime's applet
        #: registry) can rebuild it from what is stored
        self.rollback_listeners: list[Callable[[], None]] = []
        #: called after every commit, once the transaction's writes are final, so that RAM
        #: effects an operation ordered inside it (the runtime's deselections) happen only
        #: if the operation did
        self.commit_listeners: list[Callable[[], None]] = []
        #: the image holds an undo journal (written while torn inside a transaction)
        self._journal_in_image = False
        self._db: sqlite3.Connection | None = None
        self._lock: ImageLock | None = None
        #: the redo log: its descriptor (opened at the first append), the salt and the
        #: last LSN of its records, the records and bytes it holds, and the keys they wrote
        self._redo_fd: int | None = None
        self._redo_salt: bytes | None = None
        self._redo_lsn = 0
        self._redo_records = 0
        self._redo_size = 0
        self._redo_keys: set[tuple[str, str]] = set()
        #: the format the image is marked with (IMAGE_VERSION while its log is live)
        self._format = IMAGE_VERSION_ALONE
        self.path = os.fspath(path) if path is not None else None
        if self.path is not None:
            if create and not readonly and not os.path.lexists(self.path):
                create_image(self.path, exist_ok=True)
            self._open(self.path)

    # -- the card image ----------------------------------------------------

    def _open(self, path: str) -> None:
        try:
            lock = ImageLock.acquire(path)
        except FileNotFoundError:
            raise NvmError(f"no card image {path}") from None
        except IsADirectoryError:
            raise NvmError(f"{path} is a directory, not a card image") from None
        except OSError as e:
            raise NvmError(f"cannot open {path}: {e.strerror or e}") from None
        try:
            self._db = self._load(path, lock)
        except BaseException:
            lock.release()
            raise
        self._lock = lock

    def _load(self, path: str, lock: ImageLock) -> sqlite3.Connection:
        # The header is read through the lock's own descriptor: opening the file
        # again and closing it would drop SQLite's POSIX locks in this process.
        header = os.pread(lock.file.fileno(), 100, 0)
        if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
            what = "an empty file" if not header else "not an SQLite database"
            raise NvmError(f"{path} is not a cardemu card image ({what})")
        app_id = int.from_bytes(header[68:72], "big")
        if app_id not in (0, IMAGE_APPLICATION_ID):  # 0: an image made before the mark
            raise NvmError(f"{path} is not a cardemu card image (application_id {app_id:08X})")
        try:
            db = _connect(path, self.readonly)
        except sqlite3.Error as e:
            raise NvmError(f"cannot open {path}: {e}") from None
        try:
            # Nothing is written before the image is known to be ours: a foreign
            # database must come out of this unchanged.
            try:
                row = db.execute("SELECT value FROM meta WHERE key='magic'").fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is None or row[0] != IMAGE_MAGIC:
                raise NvmError(f"{path} is not a cardemu card image")
            version = int(db.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0])
            if version > IMAGE_VERSION:
                raise NvmError(
                    f"{path} is a card image of format {version}, newer than this cardemu"
                )
            self._format = version
            if not self.readonly:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            for owner, name, raw in db.execute("SELECT owner, name, value FROM nvm"):
                value = _decode(json.loads(raw))
                if owner == "" and name == _JOURNAL_KEY:
                    self._journal_from_image(value)
                    continue
                self._segments.setdefault(owner, {})[name] = value
                self._used += _size(value)
            self._replay(path, db)
        except sqlite3.DatabaseError as e:
            db.close()
            raise NvmError(f"{path} is not a cardemu card image ({e})") from None
        except (TypeError, ValueError, KeyError) as e:
            db.close()
            raise NvmError(f"{path} is a damaged card image ({e})") from None
        except BaseException:
            db.close()
            raise
        return db

    def publish(self, path: str | os.PathLike[str]) -> None:
        """Give the open image its final name, atomically, keeping it open and locked.

        The image (built under a temporary name in the same directory) is written
        out, made durable and linked under `path`, so that `path` either does not
        exist or holds the complete card, whenever the process is killed.

        Raises:
            FileExistsError: `path` exists (it is never replaced).
            NvmError: no image is open, or it is read-only.
        """
        db, lock, old = self._db, self._lock, self.path
        if db is None or lock is None or old is None or self.readonly:
            raise NvmError("no writable card image is open")
        new = os.fspath(path)
        self.flush()
        self._fold_redo(final=True)
        self._drop_redo()
        self._close_redo()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # Closing the only connection folds the WAL into the file and removes it;
        # the lock's descriptor stays open, so the file stays ours.
        db.close()
        self._db = None
        try:
            lock.fsync()
            _link_into_place(old, new)
            _fsync_dir(new)
            self.path = old = new
        finally:
            self._db = _connect(old)
            self._db.execute("PRAGMA synchronous=NORMAL")

    def _journal_from_image(self, value: Value) -> None:
        # An image saved while torn inside a transaction: keep the journal so that
        # the next power_up() rolls it back.
        journal = []
        for owner, name, present, old in value:
            journal.append((owner, name, old if present else _ABSENT))
        self._journal = journal
        self._journaled = {(o, n) for o, n, _ in journal}
        self._journal_in_image = True
        self.torn = True

    def flush(self) -> None:
        """Make every change since the last flush durable as one atomic step.

        A value that is back to what the image holds (changed and restored since the
        last flush) is not written; when nothing else changed, nothing is written.
        Without a transaction journal to keep (all but a tear inside a transaction
        and the power-up after it), the changes go to the redo log as one record;
        otherwise, and when the log is long, the log's keys and the changes are
        written to SQLite in one transaction and the log is emptied.
        """
        db = self._db
        # A journal left in the image must go once the transaction is over, even
        # when nothing else changed (a tear before the transaction's first write).
        if db is None or self.readonly or not (self._dirty or self.torn or self._journal_in_image):
            self._dirty.clear()  # nothing to write them to (in memory, read-only), or none
            return
        changed: list[tuple[tuple[str, str], Value]] = []
        segments = self._segments
        for key, held in self._dirty.items():
            seg = segments.get(key[0])
            value = _ABSENT if seg is None else seg.get(key[1], _ABSENT)
            if value is held or (value == held and _same(value, held)):
                continue  # changed and changed back (a PIN's decrement and restore)
            changed.append((key, value))
        if self._journal is None and not self._journal_in_image:
            if changed:
                self._append_redo(changed)
            # else: every change since the last flush was undone within it
            self._dirty.clear()
            if (
                self._redo_records >= REDO_CHECKPOINT_RECORDS
                or self._redo_size >= REDO_CHECKPOINT_BYTES
            ):
                self._fold_redo()
            return
        self._commit([key for key, _ in changed])
        self._dirty.clear()
        self._journal_in_image = self._journal is not None

    def _commit(
        self, keys: list[tuple[str, str]], *, new_log: bool = False, mark: int | None = None
    ) -> None:
        """Write `keys` and the redo log's keys, as they are now, to SQLite in one transaction.

        The journal row goes with them (written, or removed once the transaction is
        over). A new salt for the log is committed with them: the log is emptied
        right after, and its next records carry the new salt, so that no record of
        the emptied log can ever be taken for a later one. `new_log`: do so even
        when the log holds nothing. `mark`: the image format to record with them
        (IMAGE_VERSION before the log's first record, IMAGE_VERSION_ALONE once the
        log is folded in for good).
        """
        db = self._db
        assert db is not None
        folded = new_log or bool(self._redo_keys) or self._redo_size > 0
        every = set(keys) | self._redo_keys if folded else keys
        rows_set = []
        rows_del = []
        segments = self._segments
        for key in every:
            seg = segments.get(key[0])
            value = _ABSENT if seg is None else seg.get(key[1], _ABSENT)
            if value is _ABSENT:
                rows_del.append(key)
            else:
                rows_set.append((key[0], key[1], _dumps(_encode(value))))
        salt = secrets.token_bytes(8)
        db.execute("BEGIN")
        try:
            if rows_del:
                db.executemany("DELETE FROM nvm WHERE owner=? AND name=?", rows_del)
            if rows_set:
                db.executemany("INSERT OR REPLACE INTO nvm VALUES (?, ?, ?)", rows_set)
            if self._journal is not None:
                journal = tuple(
                    (o, n, old is not _ABSENT, None if old is _ABSENT else old)
                    for o, n, old in self._journal
                )
                db.execute(
                    "INSERT OR REPLACE INTO nvm VALUES ('', ?, ?)",
                    (_JOURNAL_KEY, _dumps(_encode(journal))),
                )
            elif self._journal_in_image:
                db.execute("DELETE FROM nvm WHERE owner='' AND name=?", (_JOURNAL_KEY,))
            if folded:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    (_REDO_META, f"{salt.hex()}:{self._redo_lsn}"),
                )
            if mark is not None and mark != self._format:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(mark),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if mark is not None:
            self._format = mark
        if folded:
            self._empty_redo(salt)

    # -- the redo log ----------------------------------------------------------------
    #
    # Committing an SQLite transaction per APDU costs more than the APDU itself. So
    # the changes of an APDU are appended to `<image>-redo` as one record, with one
    # write(): header (magic, length, CRC-32, LSN, salt) and the changed rows as
    # compact JSON. The image's meta row "redo" names the log that continues it: its
    # salt and the last LSN already folded in. Opening the image replays the records
    # that carry that salt with LSNs following on one by one, up to the first that
    # is short, damaged or out of order; what follows is a torn append and is
    # discarded, so a record is applied whole or not at all, as an APDU is. Folding
    # the log (every REDO_CHECKPOINT_RECORDS records, on close, on a journal write)
    # writes the current values of its keys to SQLite with a new salt in one
    # transaction, then empties the log.
    #
    # Durability is as with SQLite's synchronous=NORMAL, which the image uses: a
    # record is in the kernel once write() returns, so a killed process loses no
    # completed APDU; a power cut of the machine may lose the last APDUs (neither
    # the log nor the WAL is fsynced per APDU), never part of one, and never an APDU
    # without those before it (replay stops at the first record missing).
    #
    # The log is the image's: it is only touched under the image lock, and a
    # read-only open replays it in memory and writes nothing.

    def _redo_path(self) -> str:
        assert self.path is not None
        return self.path + REDO_SUFFIX

    def _replay(self, path: str, db: sqlite3.Connection) -> None:
        """Apply the log's records that continue the image; fold them in when writable."""
        row = db.execute("SELECT value FROM meta WHERE key=?", (_REDO_META,)).fetchone()
        if row is not None:
            salt_hex, _, lsn = row[0].partition(":")
            self._redo_salt, self._redo_lsn = bytes.fromhex(salt_hex), int(lsn)
        try:
            with open(path + REDO_SUFFIX, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        if self._redo_salt is not None:
            for lsn, payload in _redo_records(data, self._redo_salt, self._redo_lsn):
                self._apply_redo(payload)
                self._redo_lsn = lsn
        if self.readonly or not data:
            return
        # Fold what was replayed (if anything) and start an empty log with a new salt.
        self._redo_size = len(data)
        self._db = db
        try:
            self._commit([], new_log=True)
        finally:
            self._db = None

    def _apply_redo(self, payload: bytes) -> None:
        rows = json.loads(payload)
        if not isinstance(rows, list):
            raise ValueError("a redo record is not a list of rows")
        for row in rows:
            if not isinstance(row, list) or len(row) not in (2, 3):
                raise ValueError("a damaged redo record")
            owner, name = row[0], row[1]
            if not (isinstance(owner, str) and isinstance(name, str)):
                raise ValueError("a damaged redo record")
            seg = self._segments.setdefault(owner, {})
            old = seg.pop(name, _ABSENT)
            if old is not _ABSENT:
                self._used -= _size(old)
            if len(row) == 3:
                value = _decode(row[2])
                seg[name] = value
                self._used += _size(value)
            self._redo_keys.add((owner, name))

    def _append_redo(self, changed: list[tuple[tuple[str, str], Value]]) -> None:
        """Append one record holding `changed` (one APDU's writes) with a single write()."""
        if self._redo_salt is None or self._redo_fd is None:
            self._start_redo()
        fd, salt = self._redo_fd, self._redo_salt
        assert fd is not None and salt is not None
        rows = [
            [key[0], key[1]] if value is _ABSENT else [key[0], key[1], _encode(value)]
            for key, value in changed
        ]
        payload = _dumps(rows).encode()
        lsn = self._redo_lsn + 1
        tail = struct.pack(">Q8s", lsn, salt) + payload
        record = (
            struct.pack(">4sII", _REDO_MAGIC, len(payload), zlib.crc32(tail) & 0xFFFFFFFF) + tail
        )
        try:
            n = os.write(fd, record)
            if n != len(record):
                raise OSError(errno.ENOSPC, "short write to the redo log")
        except BaseException:
            # Nothing half-written may stay in front of the next record.
            os.ftruncate(fd, self._redo_size)
            raise
        self._redo_lsn = lsn
        self._redo_size += n
        self._redo_records += 1
        self._redo_keys.update(key for key, _ in changed)

    def _start_redo(self) -> None:
        """Open the log for appending, empty, under a salt the image names.

        Called before the first record of an open (or after `publish`), when
        everything logged before is folded in: what the file holds is stale.
        """
        if self._redo_keys or self._redo_size:
            raise NvmError("the redo log was not folded in")  # never: close() is the end
        if self._redo_salt is None or self._format != IMAGE_VERSION:
            # Name a salt (an image that never had a log) and mark the image as one
            # whose log counts, before the log holds anything that does.
            self._commit([], new_log=True, mark=IMAGE_VERSION)
        if self._redo_fd is None:
            self._redo_fd = os.open(
                self._redo_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666
            )
            os.ftruncate(self._redo_fd, 0)
            self._redo_size = 0

    def _empty_redo(self, salt: bytes) -> None:
        """The log was folded into the image under `salt`: empty it."""
        if self._redo_fd is not None:
            os.ftruncate(self._redo_fd, 0)
        elif self.path is not None and os.path.exists(self._redo_path()):
            os.truncate(self._redo_path(), 0)
        self._redo_salt = salt
        self._redo_size = 0
        self._redo_records = 0
        self._redo_keys = set()

    def checkpoint(self) -> None:
        """Flush, then fold the redo log into the SQLite image (close() does both)."""
        self.flush()
        self._fold_redo()

    def _fold_redo(self, final: bool = False) -> None:
        """Write the log's keys into the image and empty the log (nothing to do if empty).

        `final`: the log is done with (close, publish): the image is marked
        IMAGE_VERSION_ALONE again in the same transaction, whole without a log.
        """
        if self._db is None or self.readonly:
            return
        mark = IMAGE_VERSION_ALONE if final else None
        if self._redo_keys or self._redo_size or (final and self._format != mark):
            self._commit([], mark=mark)

    def _drop_redo(self) -> None:
        """Remove the (empty) log file: a closed image is the SQLite file alone."""
        if self.path is None or self.readonly or self._redo_size:
            return
        try:
            os.unlink(self._redo_path())
        except FileNotFoundError:
            pass

    def _close_redo(self) -> None:
        if self._redo_fd is not None:
            os.close(self._redo_fd)
            self._redo_fd = None

    def close(self) -> None:
        """Write what changed, close the image and release its lock (SQLite first)."""
        try:
            if self._db is not None:
                try:
                    self.flush()
                    self._fold_redo(final=True)
                    self._drop_redo()
                finally:
                    self._close_redo()
                    self._db.close()
                    self._db = None
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    # -- reading and writing ---------------------------------------------------

    def segment(self, owner: str) -> dict[str, Value]:
        """The live dict of one owner's values. Read from it; write only through `write`."""
        seg = self._segments.get(owner)
        if seg is None:
            seg = self._segments[owner] = {}
        return seg

    def read(self, owner: str, name: str, default: Value = None) -> Value:
        seg = self._segments.get(owner)
        return default if seg is None else seg.get(name, default)

    def _count_write(self) -> None:
        # The tear check comes first: a torn write never reaches the memory.
        if self._tear_countdown is not None:
            if self._tear_countdown == 0:
                self._tear_countdown = None
                self.torn = True
                raise PowerLoss("power lost (tear injected)")
            self._tear_countdown -= 1
        if self.torn:
            raise PowerLoss("write after power loss")
        self.total_writes += 1
        self.apdu_writes += 1

    def write(self, owner: str, name: str, value: Value) -> None:
        """Store one value atomically (journaled when a transaction is open)."""
        memo, memo2 = self._size_memo, self._size_memo2
        # A memo holds a value as stored (frozen by _check_value, immutable all the
        # way down): the very same object needs no second check.
        if value is memo[0]:
            size = memo[1]
        elif value is memo2[0]:
            size = memo2[1]
        else:
            value, size = _check_value(value)
        seg = self._segments.get(owner)
        if seg is None:
            seg = self._segments[owner] = {}
        old = seg.get(name, _ABSENT)
        if old is _ABSENT:
            grow = size
        else:
            if old == value and _same(old, value):
                return  # not a change: costs no write, as a card's compare-before-write
            if memo[0] is old:
                grow = size - memo[1]
            elif memo2[0] is old:
                grow = size - memo2[1]
            else:
                grow = size - _size(old)
        if grow > 0 and self._used + grow > self.capacity:
            raise OutOfMemory(f"persistent memory full ({self._used} of {self.capacity} bytes)")
        if self._tear_countdown is None and not self.torn:
            self.total_writes += 1  # _count_write's common case, inline
            self.apdu_writes += 1
        else:
            self._count_write()
        key = (owner, name)
        if self._journal is not None and key not in self._journaled:
            self._journal.append((owner, name, old))
            self._journaled.add(key)
        seg[name] = value
        self._used += grow
        dirty = self._dirty
        if key not in dirty:
            dirty[key] = old
        if memo[0] is not value:
            self._size_memo2 = memo
            self._size_memo = (value, size)

    def load_stored(self, segments: Mapping[str, Mapping[str, Value]], used: int) -> None:
        """Fill this empty in-memory NVM with the values another one stored (its `snapshot`).

        The values are as `write` stores them (checked, frozen, immutable all the way
        down), so they are shared, not walked again: the same card as one copied value
        by value through `write`, without a check per value. Each value counts as
        the write it replaces (`total_writes`, `apdu_writes`: `nvm_version` moves as
        it would).

        Args:
            segments: owner -> name -> value, as `snapshot` answers.
            used: what the values weigh (the source's `used`).

        Raises:
            ValueError: this NVM holds values, has an image, is in a transaction, or
                is torn or armed for a tear.
            OutOfMemory: `used` is beyond this NVM's capacity.
        """
        if (
            any(self._segments.values())
            or self._db is not None
            or self._journal is not None
            or self.torn
            or self._tear_countdown is not None
        ):
            raise ValueError("load_stored fills an empty in-memory NVM only")
        if used > self.capacity:
            raise OutOfMemory(f"persistent memory full ({used} of {self.capacity} bytes)")
        n = 0
        for owner, seg in segments.items():
            if seg:
                # Into the segment's own dict when it exists: a Store handed out before
                # (`segment`) reads the same one.
                self._segments.setdefault(owner, {}).update(seg)
                n += len(seg)
        self._used = used
        self.total_writes += n
        self.apdu_writes += n

    def delete(self, owner: str, name: str) -> None:
        seg = self._segments.get(owner)
        if seg is None or name not in seg:
            return
        self._count_write()
        key = (owner, name)
        old = seg.pop(name)
        if self._journal is not None and key not in self._journaled:
            self._journal.append((owner, name, old))
            self._journaled.add(key)
        self._used -= _size(old)
        if key not in self._dirty:
            self._dirty[key] = old

    def delete_owner(self, owner: str) -> None:
        """Remove all of one owner's values (applet deletion) as a single atomic write."""
        seg = self._segments.get(owner)
        if not seg:
            self._segments.pop(owner, None)
            return
        if self._journal is not None:
            for name in list(seg):
                self.delete(owner, name)
            return
        self._count_write()
        dirty = self._dirty
        for name, old in seg.items():
            self._used -= _size(old)
            dirty.setdefault((owner, name), old)
        seg.clear()

    @property
    def used(self) -> int:
        return self._used

    @property
    def available(self) -> int:
        return max(0, self.capacity - self._used)

    # -- transactions ----------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return self._journal is not None

    def begin(self) -> None:
        if self._journal is not None:
            raise TransactionError(TransactionError.IN_PROGRESS, "transaction already in progress")
        self._journal = []
        self._journaled = set()
        self._begin_writes = self.apdu_writes

    def commit(self) -> None:
        if self._journal is None:
            raise TransactionError(TransactionError.NOT_IN_PROGRESS, "no transaction in progress")
        if self._journal:
            # Discarding the journal is the commit point: itself one atomic write.
            self._count_write()
        self._journal = None
        self._journaled = set()
        for listener in tuple(self.commit_listeners):
            listener()

    def abort(self) -> None:
        """Undo the open transaction's writes (JC 3.0 RE §7.6), counted in `apdu_undone`.

        Every write since `begin` is undone, so the command whose transaction this
        is changed nothing by them: the runtime's "persistent memory changed" check
        on its status word (`CardRuntime.process`) counts `apdu_writes -
        apdu_undone`, and an applet may abort, then answer an error that says "NVM
        unchanged" (ISO 7816-4 §5.1.3), as Java Card allows.
        """
        if self._journal is None:
            raise TransactionError(TransactionError.NOT_IN_PROGRESS, "no transaction in progress")
        self.apdu_undone += max(0, self.apdu_writes - self._begin_writes)
        self._rollback()

    def _rollback(self) -> None:
        journal = self._journal or []
        for owner, name, old in reversed(journal):
            seg = self.segment(owner)
            cur = seg.get(name, _ABSENT)
            if cur is not _ABSENT:
                self._used -= _size(cur)
            if old is _ABSENT:
                seg.pop(name, None)
            else:
                seg[name] = old
                self._used += _size(old)
            self._dirty.setdefault((owner, name), cur)
        self._journal = None
        self._journaled = set()
        for listener in tuple(self.rollback_listeners):
            listener()

    # -- tears -----------------------------------------------------------------

    def tear_after(self, n: int | None) -> None:
        """Lose power when the (n+1)-th write from now is attempted (n writes complete).

        None disarms. The write that would be torn never happens.
        """
        if n is not None and n < 0:
            raise ValueError("n must be >= 0")
        self._tear_countdown = n

    @property
    def tear_armed(self) -> bool:
        return self._tear_countdown is not None

    def power_up(self) -> bool:
        """Recover after power loss: roll back an interrupted transaction.

        Returns:
            True if a transaction was rolled back.
        """
        rolled = False
        if self._journal is not None:
            self._rollback()
            rolled = True
        self.torn = False
        self._tear_countdown = None
        self.flush()
        return rolled

    def snapshot(self) -> dict[str, dict[str, Value]]:
        """A deep copy of all persistent values (values are immutable: copying dicts suffices)."""
        return {o: dict(s) for o, s in self._segments.items() if s}


def _redo_records(data: bytes, salt: bytes, last: int) -> list[tuple[int, bytes]]:
    """The records of a redo log that continue LSN `last` under `salt`: (LSN, payload).

    Records already folded in (LSN <= last) are skipped; reading stops at the first
    record that is short, fails its CRC, carries another salt or skips an LSN.
    """
    out = []
    head = _REDO_HEAD.size
    off = 0
    expect = last + 1
    while off + head <= len(data):
        magic, length, crc, lsn, rec_salt = _REDO_HEAD.unpack_from(data, off)
        end = off + head + length
        if magic != _REDO_MAGIC or end > len(data):
            break
        if zlib.crc32(data[off + 12 : end]) & 0xFFFFFFFF != crc or rec_salt != salt:
            break
        if lsn > last:
            if lsn != expect:
                break
            out.append((lsn, data[off + head : end]))
            expect += 1
        off = end
    return out


# -- making images -----------------------------------------------------------------


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    # mode=rw: SQLite never creates the file (a vanished image is an error, not a new card).
    # To only look at an image that a killed process left with a WAL, mode=ro: a
    # read-write connection would fold the WAL into the file when it closes. With
    # no WAL, mode=ro would create one and leave it: the read-write connection that
    # only reads changes nothing and removes what it made.
    mode = "ro" if readonly and os.path.exists(path + "-wal") else "rw"
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=" + mode
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def aside_path(path: str | os.PathLike[str]) -> str:
    """A fresh temporary name beside `path`, in its directory (so a rename is atomic).

    The name carries this process's PID; the leftovers of dead processes building
    the same image (killed before they could clean up) are removed on the way.
    """
    head, tail = os.path.split(os.fspath(path))
    _sweep_aside(head, tail)
    return os.path.join(head, f".{tail}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _sweep_aside(head: str, tail: str) -> None:
    prefix = f".{tail}."
    try:
        names = os.listdir(head or ".")
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        pid, _, rest = name[len(prefix) :].partition(".")
        token, _, suffix = rest.partition(".")
        if not (pid.isdigit() and len(token) == 8 and suffix in _ASIDE_SUFFIXES):
            continue
        if _alive(int(pid)):
            continue  # building now (or the PID was reused: then left alone)
        try:
            os.unlink(os.path.join(head, name))
        except OSError:
            pass


_ASIDE_SUFFIXES = ("tmp", "tmp-wal", "tmp-shm", "tmp-journal", "tmp" + REDO_SUFFIX)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_aside_image(path: str | os.PathLike[str]) -> str:
    """Make an empty card image under a fresh temporary name beside `path`; return the name.

    Build the card there, then `NVM.publish(path)` gives it its name.
    """
    tmp = aside_path(path)
    try:
        _write_empty_image(tmp)
    except BaseException:
        remove_image_files(tmp)
        raise
    return tmp


def create_image(path: str | os.PathLike[str], *, exist_ok: bool = False) -> None:
    """Make an empty card image at `path`: built aside, then linked into place.

    Raises:
        FileExistsError: `path` exists (and not exist_ok); it is left as it was.
        OSError: the directory cannot be written.
    """
    final = os.fspath(path)
    tmp = new_aside_image(final)
    try:
        try:
            _link_into_place(tmp, final)
        except FileExistsError:
            if not exist_ok:
                raise
        else:
            _fsync_dir(final)
    finally:
        remove_image_files(tmp)


def _write_empty_image(tmp: str) -> None:
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute(f"PRAGMA application_id={IMAGE_APPLICATION_ID}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN")
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute(
            "CREATE TABLE nvm (owner TEXT NOT NULL, name TEXT NOT NULL,"
            " value TEXT NOT NULL, PRIMARY KEY (owner, name))"
        )
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("magic", IMAGE_MAGIC), ("version", str(IMAGE_VERSION_ALONE))],
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_image_files(path: str) -> None:
    """Remove an image file and SQLite's companions of it, whichever exist."""
    for p in (path, path + "-wal", path + "-shm", path + "-journal", path + REDO_SUFFIX):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _link_into_place(tmp: str, final: str) -> None:
    """Give the file `tmp` the name `final` (which must not exist) and drop `tmp`."""
    try:
        os.link(tmp, final)  # atomic, and refuses an existing name: no check-then-act race
    except FileExistsError:
        raise FileExistsError(f"{final} already exists") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        # A file system without hard links: rename, after a check (racy, but never a torn file).
        if os.path.lexists(final):
            raise FileExistsError(f"{final} already exists") from None
        os.rename(tmp, final)
        return
    os.unlink(tmp)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself is atomic
    finally:
        os.close(fd)
