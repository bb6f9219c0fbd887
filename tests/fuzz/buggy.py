"""Deliberately buggy applets: one bug each, for the fuzzer's oracles to catch.

Every applet has a PIN (VERIFY `00 20 00 00 Lc PIN`) and a harmless command
(`80 01`: returns a counter); the bug sits behind one instruction. Each comes with
a fuzz target (`target_for`) whose profile knows the "pin-verified" state and
has the bug's instruction in its corpus, so a short campaign reaches it.
"""

from __future__ import annotations

import os
import time

from card.framework import APDU, SW, Applet, CardError, OwnerPIN, persistent
from card.runtime import CardRuntime
from host.fuzz.targets import AppletTarget, CardTarget, Secret, State, card_target

#: An 8-byte PIN no public data of these applets contains.
PIN = bytes.fromhex("9E17C3A55B2D7F08")
#: A 16-byte key the LeaksKey applet holds.
KEY = bytes.fromhex("5A0F33C8E1B2D4967788990011AA55CC")
AID = bytes.fromhex("F0425547475901")
VERIFY = bytes.fromhex("0020000008") + PIN


class _Base(Applet):
    pin = OwnerPIN.field(try_limit=3, max_length=8)
    counter = persistent(0)
    a = persistent(0)
    b = persistent(0)
    notes = persistent(b"")
    key = persistent(b"")

    def on_install(self, params: bytes) -> None:
        self.pin.update(PIN)
        self.key = KEY

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x20:
            if apdu.p1 or apdu.p2:
                raise CardError(SW.INCORRECT_P1P2)
            if not apdu.data:
                if self.pin.is_validated():
                    return None
                raise CardError(0x63C0 | self.pin.tries_remaining)
            if self.pin.tries_remaining == 0:
                raise CardError(SW.AUTH_METHOD_BLOCKED)
            if not self.pin.check(apdu.data):
                raise CardError(0x63C0 | self.pin.tries_remaining)
            return None
        if apdu.ins == 0x01:
            return self.counter.to_bytes(2, "big")
        if apdu.ins == 0x71:  # the correct twin of TornPair's 70: one transaction
            with self.system.transaction():
                self.a = self.a + 1
                self.b = self.b + 1
            return None
        return self.bug(apdu)

    def bug(self, apdu: APDU) -> bytes | None:
        raise CardError(SW.INS_NOT_SUPPORTED)


class Correct(_Base):
    """No bug (positive controls)."""


class CrashesWhenVerified(_Base):
    """80 42 13 xx with the PIN verified: ZeroDivisionError (no-exception)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x42:
            if apdu.p1 == 0x13 and self.pin.is_validated():
                return bytes((1 // (apdu.p1 - 0x13),))
            return b"\x00"
        return super().bug(apdu)


class EscapesRuntime(_Base):
    """80 13: raises SystemExit, which the runtime does not catch (no-exception)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x13:
            raise SystemExit("applet gave up")
        return super().bug(apdu)


class DirtyError(_Base):
    """80 50 with data: stores it, then answers 6A80 (error-keeps-state)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x50 and apdu.data:
            self.notes = apdu.data
            raise CardError(SW.WRONG_DATA)
        return super().bug(apdu)


class RetryReset(_Base):
    """80 44: restores the PIN's tries with no verification (retry-counter)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x44:
            self.pin.reset_and_unblock()
            return None
        return super().bug(apdu)


class RetryOnFailure(_Base):
    """VERIFY with a wrong PIN of 1 byte gives the try back but answers 63Cx (retry-counter)."""

    def process(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x20 and len(apdu.data) == 1:
            self.pin.check(apdu.data)
            self.pin.reset_and_unblock()
            raise CardError(0x63C0 | self.pin.tries_remaining)
        return super().process(apdu)


class LeaksPin(_Base):
    """80 CA 01 01: returns the stored PIN (no-secret)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0xCA and apdu.p1p2 == 0x0101:
            value, _tries = self.system.store.get("pin.pin")
            return b"\x5a" + value
        return super().bug(apdu)


class LeaksPinAndChangesIt(LeaksPin):
    """LeaksPin, and 80 24 00 00 Lc NEW sets a new PIN (as CHANGE REFERENCE DATA would)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x24 and apdu.data:
            self.pin.update(bytes(apdu.data))
            return None
        return super().bug(apdu)


class LeaksKey(_Base):
    """80 CA 01 02: returns the key (no-secret, through the profile's secrets hook)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0xCA and apdu.p1p2 == 0x0102:
            return self.key
        return super().bug(apdu)


class Slow(_Base):
    """80 60: takes 30 ms (response-time, with a 10 ms bound)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x60:
            time.sleep(0.03)
            return None
        return super().bug(apdu)


class TornPair(_Base):
    """80 70: two fields meant to change together, written without a transaction
    (tear-atomicity)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x70:
            self.a = self.a + 1
            self.b = self.b + 1
            return None
        return super().bug(apdu)


class Nondeterministic(_Base):
    """80 84: a challenge from os.urandom instead of the card's RNG (determinism)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x84:
            return os.urandom(8)
        return super().bug(apdu)


class BadStatus(_Base):
    """80 12: answers the status word 1234 (well-formed-response)."""

    def bug(self, apdu: APDU) -> bytes | None:
        if apdu.ins == 0x12:
            raise CardError(0x1234)
        return super().bug(apdu)


def _key_secret(card: CardRuntime, aid: bytes) -> list[Secret]:
    key = card.nvm.read(aid.hex(), "key")
    return [Secret("key", key, (aid.hex(), "key"))] if key else []


#: The commands each profile's corpus holds (the triggers among them, mutated, find the bugs).
CORPUS = tuple(
    bytes.fromhex(h)
    for h in (
        "8001000002",
        "8042130000",
        "80130000",
        "8050000002AABB",
        "8044000000",
        "0020000001 00",
        "80CA010100",
        "80CA010200",
        "8060000000",
        "8070000000",
        "8071000000",
        "8084000008",
        "8012000000",
    )
)


def target_for(cls: type[Applet], *, max_ms: float = 1000.0) -> CardTarget:
    """A card holding one instance of `cls`, with a profile that knows it."""
    profile = AppletTarget(
        "buggy",
        AID,
        states=(State("pin-verified", (VERIFY,)),),
        corpus=CORPUS,
        secrets=_key_secret,
    )

    def personalise(rt: CardRuntime) -> None:
        rt.install(cls, AID)

    return card_target(
        f"buggy-{cls.__name__}",
        personalise,
        max_ms=max_ms,
        profiles=[profile],
        extra_classes=[cls],
    )
