"""The in-process virtual reader: a CardRuntime in this process, no transport in between."""

from __future__ import annotations

from card.runtime import CardRuntime, CardStateError, CardTorn
from host.readers.base import Reader, ReaderError


class InProcessReader(Reader):
    """A reader holding one emulated card.

    `transmit` powers the card on first use, as inserting a card into a reader would.
    """

    def __init__(self, card: CardRuntime, name: str = "cardemu in-process") -> None:
        self.card = card
        self.name = name

    def connect(self) -> bytes:
        if not self.card.powered:
            return self.card.power_on()
        return self.card.atr

    def reset(self) -> bytes:
        return self.card.reset()

    def disconnect(self) -> None:
        self.card.power_off()

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def transmit(self, apdu: bytes) -> bytes:
        card = self.card
        if not card.powered:
            card.power_on()
        try:
            return card.process(apdu)
        except CardTorn as e:
            raise ReaderError(f"card lost power: {e}") from None
        except CardStateError as e:
            raise ReaderError(str(e)) from None
