"""Fuzzing the biometric applet: random and mutated commands never leak the reference
template or a score, never crash, never change NVM under an "unchanged" status word, and
the try counter never rises without a match or the administrator.

The oracle for "no score leaks" is structural: a comparison's only output is its status
word, so every VERIFY answer must be exactly two bytes, and no answer of any command may
contain six consecutive bytes of the enrolled template.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from applets.biometric.applet import BIO_AID, DEFAULT_ADMIN_KEY, BiometricApplet
from applets.biometric.iso19794 import build_biometric_data, encode_minutiae
from card.runtime import CardRuntime
from card.sw import nvm_may_change
from host.bio.session import BioSession, enrolment_objects
from host.bio.synthetic import make_dataset
from host.readers.inprocess import InProcessReader

DS = make_dataset(3, 3, seed=77)
REF = DS.impressions[0][0]
TEMPLATE = encode_minutiae(REF)
WINDOWS = {TEMPLATE[k : k + 6] for k in range(len(TEMPLATE) - 5)}
VALID_PROBES = [build_biometric_data(i) for f in DS.impressions for i in f]


def _card() -> tuple[CardRuntime, BiometricApplet]:
    rt = CardRuntime(rng_seed=11)
    rt.install(BiometricApplet, BIO_AID, default=True)
    rt.power_on()
    s = BioSession(InProcessReader(rt))
    s.authenticate_admin(DEFAULT_ADMIN_KEY)
    s.put_data(enrolment_objects(0x96, REF) + enrolment_objects(0x97, DS.impressions[1][0]))
    rt.reset()
    applet = rt.applet(BIO_AID)
    assert isinstance(applet, BiometricApplet)
    return rt, applet


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            del b[rng.randrange(len(b))]
        elif op == 2:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif b:
            k = rng.randrange(len(b))
            b[k:] = b[k:][: rng.randrange(len(b) - k + 1)]
    return bytes(b)


def _command(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:  # a valid VERIFY, maybe of the right finger
        data = rng.choice(VALID_PROBES)
        return bytes((0, 0x20, 0, rng.choice((0x96, 0x97, 0x98)), len(data))) + data
    if kind == 1:  # a mutated VERIFY
        data = _mutate(rng, rng.choice(VALID_PROBES))
        header = _mutate(rng, bytes((0, 0x20, 0, 0x96))) if rng.random() < 0.2 else None
        head = header[:4] if header and len(header) >= 4 else bytes((0, 0x20, 0, 0x96))
        return head + (bytes((len(data),)) + data if 0 < len(data) < 256 else b"")
    if kind == 2:  # status, reset of status
        return bytes((0, 0x20, rng.choice((0, 0xFF, 1)), rng.choice((0x96, 0x97, 0x00))))
    if kind == 3:  # GET DATA variants
        return rng.choice(
            [
                bytes.fromhex("00CB3FFF045C027F6100"),
                bytes.fromhex("00CA7F6100"),
                _mutate(rng, bytes.fromhex("00CB3FFF045C027F6100")),
                _mutate(rng, bytes.fromhex("00CA7F6100")),
            ]
        )
    if kind == 4:  # admin commands without the admin state, mutated
        objects = _mutate(rng, enrolment_objects(0x96, DS.impressions[2][0]))
        return rng.choice(
            [
                bytes((0, 0xDB, 0x3F, 0xFF, len(objects) % 256)) + objects[:255],
                bytes((0x80, 0xE2, 0x80, 0, len(objects) % 256)) + objects[:255],
                bytes.fromhex("002C0396"),
                bytes.fromhex("0084000010"),
                bytes.fromhex("0082009B10") + bytes(16),
            ]
        )
    if kind == 5:  # chaining pieces
        data = rng.choice(VALID_PROBES)
        cut = rng.randrange(1, len(data))
        return bytes((0x10, 0x20, 0, 0x96, cut)) + data[:cut]
    if kind == 6:  # random header, random data
        n = rng.randrange(0, 40)
        return bytes(rng.randrange(256) for _ in range(4)) + (
            bytes((n,)) + rng.randbytes(n) if n else b""
        )
    return rng.randbytes(rng.randrange(0, 12))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_commands_leak_nothing_and_keep_the_counter_honest(seed: int) -> None:
    rng = random.Random(seed)
    rt, applet = _card()
    for _ in range(60):
        apdu = _command(rng)
        before_tries = applet.tries
        before_nvm = dict(rt.nvm.segment(BIO_AID.hex()))
        resp = rt.process(apdu)
        sw = int.from_bytes(resp[-2:], "big")
        assert rt.exceptions == 0, rt.last_exception
        assert not any(w in resp for w in WINDOWS), f"template bytes in the answer to {apdu.hex()}"
        if len(apdu) >= 2 and apdu[1] == 0x20:
            assert len(resp) == 2, f"VERIFY answered data: {resp.hex()}"
        # The counter rises only on a successful VERIFY (none of these commands is authorised).
        if applet.tries > before_tries:
            assert apdu[1] == 0x20 and sw == 0x9000, apdu.hex()
        if not nvm_may_change(sw):
            assert dict(rt.nvm.segment(BIO_AID.hex())) == before_nvm, apdu.hex()
        if rng.random() < 0.05:
            rt.reset()
    assert rt.nvm_violations == 0
    assert applet.fingers[0][2] == TEMPLATE  # no unauthenticated command changed the enrolment
