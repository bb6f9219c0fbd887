"""A PIN-protected purse (proprietary class 80).

Commands (CLA 80 unless noted):
- `00 20 00 01 <PIN>`   VERIFY; empty data returns the status (9000 or 63Cx).
- `80 30 00 00 04 <amount>`  CREDIT: balance, transaction counter and the last
  transaction record change together in one transaction.
- `80 40 00 00 04 <amount>`  DEBIT: as CREDIT, needs the PIN verified on this channel.
- `80 50 00 00 04`      GET BALANCE (4 bytes, big-endian).
- `80 52 00 00 08`      GET LAST TRANSACTION: counter (2) | type (1) | amount (4) | 00.
- `00 24 00 01 <old><new>` CHANGE REFERENCE DATA (PIN lengths from the install parameters).

Install parameters: the initial PIN (4-8 bytes), default 31 32 33 34.
"""

from __future__ import annotations

from card.framework import APDU, SW, Applet, CardError, OwnerPIN, persistent

MAX_BALANCE = 0x7FFFFFFF
CREDIT, DEBIT = 1, 2


class PurseApplet(Applet):
    multiselectable = True

    balance = persistent(0)
    counter = persistent(0)
    last = persistent(b"")
    pin = OwnerPIN.field(try_limit=3, max_length=8)

    def on_install(self, params: bytes) -> None:
        self.pin.update(params or b"1234")

    def process(self, apdu: APDU) -> bytes | None:
        ins = apdu.ins
        if apdu.cla & 0x80 == 0:
            if ins == 0x20:
                self._verify(apdu)
                return None
            if ins == 0x24:
                self._change(apdu)
                return None
            raise CardError(SW.INS_NOT_SUPPORTED)
        if ins == 0x30 or ins == 0x40:
            self._transact(apdu, CREDIT if ins == 0x30 else DEBIT)
            return None
        if ins == 0x50:
            self._check_p1p2(apdu)
            return self.balance.to_bytes(4, "big")
        if ins == 0x52:
            self._check_p1p2(apdu)
            return self.last or bytes(8)
        raise CardError(SW.INS_NOT_SUPPORTED)

    @staticmethod
    def _check_p1p2(apdu: APDU) -> None:
        if apdu.p1 or apdu.p2:
            raise CardError(SW.INCORRECT_P1P2)

    def _verify(self, apdu: APDU) -> None:
        if apdu.p1 != 0 or apdu.p2 != 0x01:
            raise CardError(SW.INCORRECT_P1P2)
        pin = self.pin
        if not apdu.data:
            if pin.is_validated():
                return None
            raise CardError(0x63C0 | pin.tries_remaining)
        if pin.tries_remaining == 0:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if len(apdu.data) > pin.max_length:
            raise CardError(SW.WRONG_LENGTH)
        if not pin.check(apdu.data):
            raise CardError(0x63C0 | pin.tries_remaining)
        return None

    def _change(self, apdu: APDU) -> None:
        if apdu.p1 != 0 or apdu.p2 != 0x01:
            raise CardError(SW.INCORRECT_P1P2)
        if not apdu.data or len(apdu.data) % 2:
            raise CardError(SW.WRONG_LENGTH)
        half = len(apdu.data) // 2
        old, new = apdu.data[:half], apdu.data[half:]
        if not 4 <= len(new) <= self.pin.max_length:
            raise CardError(SW.WRONG_LENGTH)
        if self.pin.tries_remaining == 0:
            raise CardError(SW.AUTH_METHOD_BLOCKED)
        if not self.pin.check(old):
            raise CardError(0x63C0 | self.pin.tries_remaining)
        self.pin.update(new)
        return None

    def _transact(self, apdu: APDU, kind: int) -> None:
        self._check_p1p2(apdu)
        if len(apdu.data) != 4:
            raise CardError(SW.WRONG_LENGTH)
        amount = int.from_bytes(apdu.data, "big")
        if kind == DEBIT and not self.pin.is_validated():
            raise CardError(SW.SECURITY_STATUS_NOT_SATISFIED)
        balance = self.balance + amount if kind == CREDIT else self.balance - amount
        if not 0 <= balance <= MAX_BALANCE:
            raise CardError(SW.CONDITIONS_NOT_SATISFIED)
        counter = (self.counter + 1) & 0xFFFF
        with self.system.transaction():
            self.balance = balance
            self.counter = counter
            self.last = counter.to_bytes(2, "big") + bytes((kind,)) + apdu.data + b"\x00"
        return None
