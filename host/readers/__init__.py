"""Readers: everything that carries APDUs to a card implements `Reader.transmit`."""

from host.readers.base import Reader, ReaderError

__all__ = ["Reader", "ReaderError"]
