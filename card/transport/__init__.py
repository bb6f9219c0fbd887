"""Byte-level card side of the ISO/IEC 7816-3 transmission protocols.

`t0.T0Card` (character protocol T=0, §10 and the APDU mapping of §12.2) and
`t1.T1Card` (block protocol T=1, §11) wrap anything that answers complete
command APDUs (`ApduRuntime`, e.g. `card.runtime.CardRuntime`), so that a
terminal driving raw bytes talks to the card as it would to a chip.

This module holds what both engines share: the runtime protocol and the PPS
exchange (§9) a terminal may start right after the ATR.
"""

from __future__ import annotations

from typing import Protocol


class ApduRuntime(Protocol):
    """What a transport engine needs from the card: the ATR and an APDU processor."""

    def power_on(self) -> bytes:
        """Cold reset; returns the ATR."""
        ...

    def process(self, apdu: bytes) -> bytes:
        """Process one complete command APDU; returns response data + SW1 SW2."""
        ...


PPSS = 0xFF


def pps_length(pps0: int) -> int:
    """Length of a PPS request whose PPS0 is `pps0`: PPSS, PPS0, PPS1-3 as b5-b7 say, PCK (§9.2)."""
    return 3 + bin(pps0 & 0x70).count("1")


def pps_reply(request: bytes, protocol: int) -> bytes:
    """The card's answer to a PPS request (ISO/IEC 7816-3 §9.3).

    The card echoes a well-formed request that asks for `protocol` (a
    successful exchange). Otherwise it stays silent: the terminal then
    deactivates the card, which is what §9.3 asks of a card that refuses.

    Args:
        request: PPSS PPS0 [PPS1] [PPS2] [PPS3] PCK.
        protocol: the protocol T this engine speaks.
    """
    if len(request) < 3 or request[0] != PPSS or len(request) != pps_length(request[1]):
        return b""
    check = 0
    for b in request:
        check ^= b
    if check or request[1] & 0x0F != protocol or request[1] & 0x80:
        return b""
    return bytes(request)
