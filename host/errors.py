"""Typed errors of the host recipes: what a caller catches when a card says no.

`ApduError` carries the status word and the response data, so a caller can
tell "not found" (6A88) from "security status not satisfied" (6982) without
parsing a message. `SecureChannelError` is a failure of the secure channel
itself (wrong keys, a bad card cryptogram or R-MAC), not of a command.
"""

from __future__ import annotations

from card.sw import describe

__all__ = ["ApduError", "SecureChannelError"]


class ApduError(Exception):
    """The card answered a status word the operation did not expect.

    Attributes:
        sw: the status word SW1-SW2 as an int.
        data: the response data that came with it (often empty).
        command: what was being done, for the message ("DELETE A000000151").
    """

    def __init__(self, sw: int, data: bytes = b"", command: str = "") -> None:
        super().__init__(sw, data, command)
        self.sw = int(sw)
        self.data = bytes(data)
        self.command = command

    def __str__(self) -> str:
        where = f"{self.command}: " if self.command else ""
        return f"{where}card answered {self.sw:04X} ({describe(self.sw)})"


class SecureChannelError(Exception):
    """The secure channel could not be opened or was broken (keys, cryptogram, MAC)."""
