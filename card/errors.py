"""Errors shared by the card's parsers."""

from __future__ import annotations


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
