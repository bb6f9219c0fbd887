"""The one transport method every reader and reader wrapper implements."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ReaderError(Exception):
    """The reader could not carry the exchange (no card, connection lost, protocol error)."""


class Reader(ABC):
    """A connection to one card.

    `transmit` takes a command APDU and returns the response APDU (data + SW1 SW2),
    as bytes. Wrappers (tracing, GET RESPONSE handling, chaining, secure channels)
    are Readers too and stack on one another.
    """

    name: str = "reader"

    @abstractmethod
    def transmit(self, apdu: bytes) -> bytes:
        """Send one command APDU and return the response APDU."""

    def connect(self) -> bytes:
        """Power the card (if needed) and return its ATR."""
        return b""

    def reset(self) -> bytes:
        """Warm-reset the card and return its ATR."""
        return self.connect()

    def disconnect(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release the card."""

    def __enter__(self) -> Reader:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
