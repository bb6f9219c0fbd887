"""An echo applet for transport tests (proprietary class 80).

- `80 01 00 00 Lc <data> [Le]`  ECHO: returns the data (after any command chaining).
- `80 02 P1 P2 [Le]`           GENERATE: returns P1P2 bytes (a counting pattern).
"""

from __future__ import annotations

from card.framework import APDU, SW, Applet, CardError

_RUN = bytes(range(256))


class EchoApplet(Applet):
    multiselectable = True

    def process(self, apdu: APDU) -> bytes | None:
        ins = apdu.ins
        if ins == 0x01:
            return apdu.data
        if ins == 0x02:
            n = apdu.p1p2
            # 00 01 .. FF 00 01 ..: whole copies of one 256-byte run (a byte at a time
            # took ~1 ms for the longest answers, the demo card's slowest command).
            return (_RUN * (n // 256 + 1))[:n]
        raise CardError(SW.INS_NOT_SUPPORTED)
