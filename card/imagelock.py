"""The card image lock: one open of an image at a time, released when its holder dies.

A card image is loaded into memory when it is opened and written back APDU by
APDU, so two opens of one image would each write over the other's state. The
open therefore takes an exclusive `flock(2)` on the image file itself, held for
as long as the image is open and dropped by the kernel when its holder closes
it, exits or is killed: nothing is left behind that could block the next open.

Why `flock` on the image: SQLite locks with POSIX `fcntl` locks, which belong
to the process and are all dropped when any descriptor of the file is closed,
so they cannot also serve as ours; a `flock` belongs to one open file
description, never meets SQLite's locks, and conflicts with a second open even
in the same process. The lock's descriptor is opened before SQLite opens the
file and closed after SQLite has closed it, so closing it never drops SQLite's
own locks. The holder of a refused lock is found in the kernel's lock table
(`/proc/locks`, Linux) with its command line, so the message names it and can
never be stale; elsewhere the message says only that the image is in use.
"""

from __future__ import annotations

import errno
import gc
import os
from typing import BinaryIO

from card.errors import ImageInUse

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock, one open is the user's care
    fcntl = None  # type: ignore[assignment]

__all__ = ["ImageInUse", "ImageLock", "holder"]


class ImageLock:
    """An exclusive lock on one card image file, held until `release()`.

    The lock follows the file, not its name: a file renamed into place after it
    was locked (a new card built aside) stays locked under its new name.

    Attributes:
        path: the image as it was named when locked.
        file: the open file the lock is held through (read-only); read the image's
            header through it rather than opening the file again.
    """

    def __init__(self, path: str, file: BinaryIO) -> None:
        self.path = path
        self.file = file

    @classmethod
    def acquire(cls, path: str) -> ImageLock:
        """Lock `path` (an existing file) or fail at once.

        An image still locked by an object of this process that is no longer
        referenced (a runtime dropped without `close()`) is collected and retried,
        and so is one whose holder let go before it could be named. Never waits.

        Raises:
            ImageInUse: another open holds it (naming the process when possible).
            OSError: the file cannot be opened (FileNotFoundError when it is absent).
        """
        file = open(path, "rb", buffering=0)  # noqa: SIM115 - held for the image's life
        try:
            if fcntl is not None and not _try_lock(file):
                gc.collect()
                # A holder that lets go between the refusal and the look-up is
                # not in the table any more: the image may be free, so try again.
                for _ in range(3):
                    if _try_lock(file):
                        break
                    pid, argv = holder(file)
                    if pid is not None:
                        raise ImageInUse(path, pid, argv)
                else:
                    raise ImageInUse(path)
        except BaseException:
            file.close()
            raise
        return cls(path, file)

    @property
    def held(self) -> bool:
        return not self.file.closed

    def fsync(self) -> None:
        """Write the image's data and metadata to stable storage (for a rename into place)."""
        os.fsync(self.file.fileno())

    def release(self) -> None:
        """Drop the lock (closing the file drops it). Close SQLite's connection first."""
        self.file.close()


def _try_lock(file: BinaryIO) -> bool:
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def holder(file: BinaryIO, locks: str = "/proc/locks") -> tuple[int | None, tuple[str, ...]]:
    """The PID holding a `flock` on `file`, and its command line, from the kernel's table.

    Returns:
        (pid, argv); (None, ()) where the table cannot be read, and a PID with ()
        when its command line cannot be (another user's process, or it just ended).
    """
    st = os.fstat(file.fileno())
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open(locks, encoding="ascii", errors="replace") as f:
            table = f.read()
    except OSError:
        return None, ()
    pid: int | None = None
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2149432 0 EOF"; waiters carry "->".
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != key:
            continue
        try:
            pid = int(fields[4])
        except ValueError:
            continue
        break
    if pid is None:
        return None, ()
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return pid, ()
    argv = tuple(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    return pid, argv
