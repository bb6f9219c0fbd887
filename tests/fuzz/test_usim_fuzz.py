"""Fuzzing the UICC/USIM applet: random and mutated APDUs, and a hypothesis state machine.

Whatever arrives: no exception escapes the applet (the runtime counts them), no PIN or
PUK counter goes back up without the right value presented, and no response carries
K or OPc (nor their hex).
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from applets.usim import UICC_AID
from applets.usim.store import Slot
from card.crypto.milenage import Milenage, generate_auth_vector
from card.runtime import CardRuntime, CardTorn
from card.uicc.builder import TEST_K, TEST_OPC, sample_profile
from tests.unit.usim_cards import uicc, usim_card

K = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")
OPC = bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabacadaeafb0")
PINS = {0x01: b"1234", 0x81: b"5678", 0x0A: b"12345678"}
PUKS = {0x01: b"11111111", 0x81: b"22222222"}
USIM_AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")

VALID = [
    "00A40004023F00",
    "00A4040410" + USIM_AID.hex(),
    "00A4000C026F07",
    "00B0000000",
    "00B2010400",
    "80F2000000",
    "80F2000100",
    "00A40004027FFF",
    "0020000108313233348FFFFFFF",
    "002C0001",
    "0088008122" + "10" + "00" * 16 + "10" + "00" * 16,
    "00880080111000000000000000000000000000000000",
    "A0A40000023F00",
    "A0C0000016",
    "A0F2000016",
    "8010000003FFFFFF",
    "0070000001",
    "0070800100",
    "803200000101",
    "00D600000100",
]


def _card() -> CardRuntime:
    return usim_card(sample_profile(k=K, opc=OPC, pin1_enabled=True))


def _counters(rt: CardRuntime) -> dict[int, tuple[int, int]]:
    slot = Slot(rt.applet(UICC_AID).system.store, 0)
    out = {}
    for ref in PINS:
        rec = slot.pin(ref)
        assert rec is not None
        out[ref] = (rec.tries, rec.puk_tries)
    return out


def _no_secrets(resp: bytes) -> None:
    for secret in (K, OPC):
        assert secret not in resp
        assert secret.hex().encode() not in resp.lower()
        assert secret[:8] not in resp  # not even half a key


def _pad(v: bytes) -> str:
    return (v + b"\xff" * (8 - len(v))).hex()


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and len(b) > 1:
            del b[rng.randrange(len(b))]
        else:
            b += rng.randbytes(rng.randint(1, 20))
    return bytes(b)


def test_random_and_mutated_apdus() -> None:
    rng = random.Random(0x5C)
    rt = _card()
    before = _counters(rt)
    classes = [0x00, 0x01, 0x80, 0x81, 0xA0, 0xC0, 0x40]
    ins = [0xA4, 0xB0, 0xD6, 0xB2, 0xDC, 0xA2, 0x32, 0x04, 0x44, 0x20, 0x24, 0x26, 0x28, 0x2C,
           0x88, 0xF2, 0x10, 0xAA, 0xC0, 0x70]  # fmt: skip
    for i in range(4000):
        kind = rng.randrange(3)
        if kind == 0:
            raw = _mutate(rng, bytes.fromhex(rng.choice(VALID)))
        elif kind == 1:
            body = rng.randbytes(rng.choice([0, 0, 1, 2, 8, 16, 34, rng.randint(0, 300)]))
            raw = bytes(
                (rng.choice(classes), rng.choice(ins), rng.randrange(256), rng.randrange(256))
            )
            if body:
                raw += bytes((len(body) & 0xFF,)) + body[:255]
            if rng.random() < 0.5:
                raw += bytes((rng.randrange(256),))
        else:
            raw = rng.randbytes(rng.randint(0, 40))
        try:
            resp = rt.process(raw)
        except CardTorn:  # pragma: no cover - no tears armed here
            raise
        assert len(resp) >= 2
        _no_secrets(resp)
        if i % 500 == 0:
            rt.reset()
    assert rt.exceptions == 0, rt.last_exception
    after = _counters(rt)
    # Random bytes never present a right PIN or PUK: counters only go down.
    for ref in PINS:
        assert after[ref][0] <= before[ref][0]
        assert after[ref][1] <= before[ref][1]


class UsimMachine(RuleBasedStateMachine):
    """PIN and AUTHENTICATE traffic mixed with junk, resets and tears."""

    def __init__(self) -> None:
        super().__init__()
        self.rt = _card()
        self.pins = dict(PINS)
        self.counters = _counters(self.rt)
        self.restored: set[tuple[int, str]] = set()  # counters a right value may raise
        self.sqn = 0x40

    def _send(self, raw: bytes) -> int:
        resp = self.rt.process(raw)
        _no_secrets(resp)
        return int.from_bytes(resp[-2:], "big")

    @rule(ref=st.sampled_from(sorted(PINS)), right=st.booleans())
    def verify(self, ref: int, right: bool) -> None:
        value = self.pins[ref] if right else b"9999"
        sw = self._send(bytes((0, 0x20, 0, ref, 8)) + bytes.fromhex(_pad(value)))
        if right and sw == 0x9000:
            self.restored.add((ref, "pin"))

    @rule(
        ref=st.sampled_from([0x01, 0x81]),
        right=st.booleans(),
        new=st.sampled_from([b"1111", b"24682468"]),
    )
    def unblock(self, ref: int, right: bool, new: bytes) -> None:
        puk = PUKS[ref] if right else b"00000000"
        sw = self._send(bytes((0, 0x2C, 0, ref, 16)) + bytes.fromhex(_pad(puk) + _pad(new)))
        if sw == 0x9000:
            assert right
            self.pins[ref] = new
            self.restored |= {(ref, "pin"), (ref, "puk")}

    @rule(ref=st.sampled_from([0x01, 0x81]), right=st.booleans())
    def change(self, ref: int, right: bool) -> None:
        old = self.pins[ref] if right else b"0000"
        sw = self._send(bytes((0, 0x24, 0, ref, 16)) + bytes.fromhex(_pad(old) + _pad(b"4321")))
        if sw == 0x9000:
            assert right
            self.pins[ref] = b"4321"
            self.restored.add((ref, "pin"))

    @rule(right=st.booleans(), rand=st.binary(min_size=16, max_size=16))
    def authenticate(self, right: bool, rand: bytes) -> None:
        self._send(bytes.fromhex("00A4040C10") + USIM_AID)
        if right:
            self.sqn += 32
            autn = generate_auth_vector(
                Milenage(K, OPC), rand, self.sqn.to_bytes(6, "big"), b"\x80\x00"
            ).autn
        else:
            autn = rand[::-1]
        self._send(bytes.fromhex("0088008122") + b"\x10" + rand + b"\x10" + autn)

    @rule(raw=st.binary(min_size=4, max_size=40))
    def junk(self, raw: bytes) -> None:
        self._send(raw)

    @rule(apdu=st.sampled_from(VALID))
    def valid(self, apdu: str) -> None:
        self._send(bytes.fromhex(apdu))

    @rule()
    def reset(self) -> None:
        self.rt.reset()

    @precondition(lambda self: True)
    @rule(n=st.integers(0, 3), ref=st.sampled_from([0x01, 0x81]), right=st.booleans())
    def tear_during_verify(self, n: int, ref: int, right: bool) -> None:
        value = self.pins[ref] if right else b"9999"
        self.rt.nvm.tear_after(n)
        try:
            self._send(bytes((0, 0x20, 0, ref, 8)) + bytes.fromhex(_pad(value)))
        except CardTorn:
            self.rt.power_on()
            return
        finally:
            self.rt.nvm.tear_after(None)
        if right:
            self.restored.add((ref, "pin"))

    @invariant()
    def sound(self) -> None:
        assert self.rt.exceptions == 0, self.rt.last_exception
        now = _counters(self.rt)
        for ref, (pin, puk) in now.items():
            old_pin, old_puk = self.counters[ref]
            if pin > old_pin:
                assert (ref, "pin") in self.restored, f"PIN {ref:02X} counter went up"
            if puk > old_puk:
                assert (ref, "puk") in self.restored, f"PUK {ref:02X} counter went up"
        self.counters = now
        self.restored = set()

    def teardown(self) -> None:
        profile = uicc(self.rt).export_profile(uicc(self.rt).enabled_profile(), with_secrets=False)
        assert K not in profile and OPC not in profile


TestUsimMachine = UsimMachine.TestCase
TestUsimMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_export_with_secrets_is_the_only_way_out() -> None:
    rt = _card()
    data = uicc(rt).export_profile(uicc(rt).enabled_profile())
    assert K.hex().encode() in data  # the export format carries them; no APDU does
    assert TEST_K != K and TEST_OPC != OPC
