"""Errors shared across the card: malformed bytes, an unusable card image."""

from __future__ import annotations

import os
import shlex


class OffsetError(ValueError):
    """Malformed bytes, with the offset of the byte or field at fault.

    Attributes:
        message: what is wrong.
        offset: position of the byte or field at fault.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message, offset)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.message} (at offset {self.offset})"


class NvmError(Exception):
    """The card image cannot be used (not a card image, newer format, unreadable, in use)."""


class ImageInUse(NvmError):
    """Another open of the card image holds its lock: one process (one open) at a time.

    Attributes:
        path: the card image.
        pid: the process holding it, when the system says (Linux `/proc/locks`), else None.
        argv: that process's command line, when it can be read, else ().
    """

    def __init__(self, path: str, pid: int | None = None, argv: tuple[str, ...] = ()) -> None:
        super().__init__(path, pid, argv)
        self.path = path
        self.pid = pid
        self.argv = argv

    @property
    def command(self) -> str:
        """The holder's command line, shortened for one line ("cardemu serve my.card")."""
        return command_line(self.argv)

    def __str__(self) -> str:
        if self.pid is None:
            return f"{self.path} is in use by another process or another open of it"
        who = f"PID {self.pid}" + (f" ({self.command})" if self.argv else "")
        return f"{self.path} is in use by {who}"


def command_line(argv: tuple[str, ...], limit: int = 100) -> str:
    """A command line as a user would type it: no interpreter, the program's base name."""
    args = list(argv)
    if len(args) > 1 and os.path.basename(args[0]).startswith("python"):
        if args[1] == "-c":  # a script on the command line: name it, not its text
            return f"{os.path.basename(args[0])} -c …"
        args = args[1:]
        if args[:1] == ["-m"] and len(args) > 1:
            args = args[1:]
    if args:
        args[0] = os.path.basename(args[0])
    text = " ".join(" ".join(shlex.quote(a) for a in args).split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"
