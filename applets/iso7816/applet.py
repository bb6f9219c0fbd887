"""The ISO 7816-4 file-system card: card.fs behind an applet, with its PINs.

Default-selected on the demo card, like vsmartcard's iso7816 card. Commands:

- SELECT (A4), STATUS (F2), READ / UPDATE BINARY (B0 / D6), READ / UPDATE
  RECORD (B2 / DC), SEARCH RECORD (A2), INCREASE (32), DEACTIVATE / ACTIVATE
  FILE (04 / 44): card.fs (ISO 7816-4 §11; ETSI TS 102 221 §11.1).
- VERIFY `00 20 00 P2 [PIN]` (ISO 7816-4 §11.5.6; TS 102 221 §11.1.9): P2 the
  key reference, 01 PIN1, 81 PIN2, 0A ADM1. The PIN is 1-8 bytes, padded with
  FF to 8 as TS 102 221 §9.5.1 codes it. A wrong PIN answers 63Cx (x tries
  left), a blocked one 6983; no data answers 9000 when the PIN is verified on
  this channel, else 63Cx.
- CHANGE PIN `00 24 00 P2 <old 8><new 8>` (TS 102 221 §11.1.10).
- UNBLOCK PIN `00 2C 00 P2 <PUK 8><new PIN 8>` for 01 and 81 (TS 102 221
  §11.1.13); no data answers the PUK's status. After CHANGE or UNBLOCK the new
  PIN is verified with VERIFY.

A verified PIN counts only on the logical channel it was verified on, and only
until the applet is deselected there or the card is reset.

Install parameters (optional): BER-TLV data objects whose tag is a key reference
(01 PIN1, 81 PIN2, 0A ADM1) and whose value is that PIN. The defaults are PIN1
"1234", PIN2 "5678", ADM1 "12345678", PUK1 "11111111", PUK2 "22222222".
"""

from __future__ import annotations

from applets.iso7816.demo import build_demo_tree
from card import tlv
from card.framework import APDU, SW, Applet, CardError, OwnerPIN
from card.fs import ADM1, PIN1, PIN2, FileSystem

PIN_LENGTH = 8
DEFAULT_PINS = {PIN1: b"1234", PIN2: b"5678", ADM1: b"12345678"}
DEFAULT_PUKS = {PIN1: b"11111111", PIN2: b"22222222"}


def pad_pin(pin: bytes) -> bytes:
    """TS 102 221 §9.5.1: a PIN is 8 bytes, unused ones FF."""
    return bytes(pin) + b"\xff" * (PIN_LENGTH - len(pin))


class _Security:
    """The security environment of the channel being served (card.fs.SecurityEnvironment)."""

    __slots__ = ("_pins",)

    def __init__(self, pins: dict[int, OwnerPIN]) -> None:
        self._pins = pins

    def is_verified(self, key_ref: int) -> bool:
        pin = self._pins.get(key_ref)
        return pin is not None and pin.is_validated()


class FileSystemApplet(Applet):
    """ISO 7816-4 file system with PIN1, PIN2 and ADM1 (see the module docstring)."""

    multiselectable = True

    pin1 = OwnerPIN.field(try_limit=3, max_length=PIN_LENGTH)
    pin2 = OwnerPIN.field(try_limit=3, max_length=PIN_LENGTH)
    adm1 = OwnerPIN.field(try_limit=10, max_length=PIN_LENGTH)
    puk1 = OwnerPIN.field(try_limit=10, max_length=PIN_LENGTH)
    puk2 = OwnerPIN.field(try_limit=10, max_length=PIN_LENGTH)

    def on_install(self, params: bytes) -> None:
        pins = dict(DEFAULT_PINS)
        for t in tlv.parse(params) if params else ():
            if t.tag not in pins or not 1 <= len(t.value) <= PIN_LENGTH:
                raise CardError(SW.WRONG_DATA)
            pins[t.tag] = t.value
        self.pin1.update(pad_pin(pins[PIN1]))
        self.pin2.update(pad_pin(pins[PIN2]))
        self.adm1.update(pad_pin(pins[ADM1]))
        self.puk1.update(pad_pin(DEFAULT_PUKS[PIN1]))
        self.puk2.update(pad_pin(DEFAULT_PUKS[PIN2]))
        build_demo_tree(self.fs)

    # The file system and the PIN table are views over persistent state; keeping
    # them on the object is safe (card.fs checks its caches against the store).
    @property
    def fs(self) -> FileSystem:
        fs = self.__dict__.get("_fs")
        if fs is None:
            fs = self._fs = FileSystem(self.system.store)
        return fs

    def _pins(self) -> dict[int, OwnerPIN]:
        pins = self.__dict__.get("_pin_table")
        if pins is None:
            pins = self._pin_table = {PIN1: self.pin1, PIN2: self.pin2, ADM1: self.adm1}
        return pins

    def _security(self) -> _Security:
        sec = self.__dict__.get("_sec")
        if sec is None:
            sec = self._sec = _Security(self._pins())
        return sec

    def process(self, apdu: APDU) -> bytes | None:
        ins = apdu.ins
        if ins in FileSystem.INSTRUCTIONS:
            return self.fs.process(self.system.channel_state, self._security(), apdu)
        if ins == 0x20:
            self._verify(apdu)
            return None
        if ins == 0x24:
            self._change(apdu)
            return None
        if ins == 0x2C:
            self._unblock(apdu)
            return None
        raise CardError(SW.INS_NOT_SUPPORTED)

    # -- PINs (ISO 7816-4 §11.5.6-11.5.10; TS 102 221 §11.1.9-13) ----------------------

    def _pin(self, apdu: APDU) -> OwnerPIN:
        if apdu.p1 != 0x00:
            raise CardError(SW.INCORRECT_P1P2)
        pin = self._pins().get(apdu.p2)
        if pin is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        return pin

    @staticmethod
    def _check(pin: OwnerPIN, value: bytes) -> None:
        if pin.tries_remaining == 0:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if not pin.check(value):
            left = pin.tries_remaining
            raise CardError(0x63C0 | left)

    def _verify(self, apdu: APDU) -> None:
        pin = self._pin(apdu)
        data = apdu.data
        if not data:
            if pin.is_validated():
                return None
            if pin.tries_remaining == 0:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            raise CardError(0x63C0 | pin.tries_remaining)
        if len(data) > PIN_LENGTH:
            raise CardError(SW.WRONG_LENGTH)
        self._check(pin, pad_pin(data))
        return None

    def _change(self, apdu: APDU) -> None:
        pin = self._pin(apdu)
        if len(apdu.data) != 2 * PIN_LENGTH:
            raise CardError(SW.WRONG_LENGTH)
        old, new = apdu.data[:PIN_LENGTH], apdu.data[PIN_LENGTH:]
        self._check(pin, old)
        pin.update(new)  # the new PIN is to be verified afresh
        return None

    def _unblock(self, apdu: APDU) -> None:
        pin = self._pin(apdu)
        puk = {PIN1: self.puk1, PIN2: self.puk2}.get(apdu.p2)
        if puk is None:
            raise CardError(SW.REFERENCED_DATA_NOT_FOUND)
        if not apdu.data:
            if puk.tries_remaining == 0:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            raise CardError(0x63C0 | puk.tries_remaining)
        if len(apdu.data) != 2 * PIN_LENGTH:
            raise CardError(SW.WRONG_LENGTH)
        self._check(puk, apdu.data[:PIN_LENGTH])
        pin.update(apdu.data[PIN_LENGTH:])  # new value, try counter reset
        return None
