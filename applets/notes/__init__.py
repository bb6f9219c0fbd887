"""A notes applet: personalised with GlobalPlatform STORE DATA, read back with GET DATA.

It is the smallest applet that shows the whole content-management path: load
its package, install it, personalise it through the Security Domain (INSTALL
[for personalization] then STORE DATA, GPC v2.3.1 §11.11), select it, read.

- `80 E2 P1 P2 Lc <data>`  STORE DATA: P2 is the block number; block 00 starts
  the notes afresh, later blocks append (P1 b8 marks the last block).
- `80 CA 00 00 [Le]` (or CLA 00)  GET DATA: the notes; 6A88 while there are none.

Install parameters: the initial notes (may be empty).
"""

from __future__ import annotations

from card.framework import APDU, SW, Applet, CardError, persistent

NOTES_AID = bytes.fromhex("F043415244454D5510")
MAX_NOTES = 1024


class NotesApplet(Applet):
    notes = persistent(b"")
    next_block = persistent(0)

    def on_install(self, params: bytes) -> None:
        if len(params) > MAX_NOTES:
            raise CardError(SW.WRONG_LENGTH)
        self.notes = params

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0xE2 and apdu.cla & 0x80:
            self._store(apdu)
            return None
        if apdu.ins == 0xCA:
            if apdu.p1 or apdu.p2:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            if not self.notes:
                raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
            return self.notes
        raise CardError(SW.INS_NOT_SUPPORTED)

    def _store(self, apdu: APDU) -> None:
        block = apdu.p2
        if block == 0:
            base = b""
        elif block == self.next_block:
            base = self.notes
        else:
            raise CardError(SW.INCORRECT_P1P2)
        notes = base + apdu.data
        if len(notes) > MAX_NOTES:
            raise CardError(SW.NOT_ENOUGH_MEMORY)
        with self.system.transaction():
            self.notes = notes
            self.next_block = (block + 1) & 0xFF
        return None
