"""Robustness: 200,000 random and mutated APDUs against the demo card (file system + samples).

Checks after every command: no Python exception escaped an applet (the runtime's
counter stays 0), and a command that answered a status word promising unchanged
non-volatile memory (ISO 7816-4 §5.1.3: everything but 9000, 61xx, 63xx, 65xx)
left every persistent value exactly as it was — compared on a full snapshot,
independently of the runtime's own write counter.
"""

from __future__ import annotations

import os
import random

from card.sw import nvm_may_change
from host.presets import new_card

N = int(os.environ.get("CARDEMU_ROBUSTNESS_N", "200000"))

CORPUS = [
    bytes.fromhex(h)
    for h in (
        "00A4040C09F043415244454D5501",
        "00A4040C09F043415244454D5502",
        "00A4040C09F043415244454D5504",
        "00A4040009F043415244454D550300",
        "002000010431323334",
        "002000010431313131",
        "0020000100",
        "00240001083132333435363738",
        "803000000400000010",
        "804000000400000001",
        "8050000004",
        "8052000008",
        "8001000003AABBCC00",
        "80020100",
        "1001000002AABB",
        "00C0000000",
        "0070000001",
        "0070800100"[:8],
        "8010000002",
        "0070000300",
        "01A4040C09F043415244454D5502",
        "00A40400",
        "0000000000000000",
        "00A4040C0AF043415244454D557816",
        "00A4000C023F00",
        "00A40004022F1000",
        "00A4020C022F10",
        "00B0000080",
        "00B0810010",
        "00D6000004DEADBEEF",
        "00B2010400",
        "00B2000200",
        "00DC000304AABBCCDD",
        "00A2000004AABB",
        "0032000003000001",
        "00A4080C047F106F01",
        "00A4090C02FFFF",
        "00A4030C",
        "00F2000000",
        "002000810435363738",
        "002C0001083132333435363738",
        "0044000000",
        "0004000000",
    )
]

INTERESTING_CLA = [
    0x00,
    0x01,
    0x03,
    0x10,
    0x0C,
    0x40,
    0x4F,
    0x80,
    0x81,
    0x84,
    0x90,
    0xA0,
    0xC0,
    0xFF,
]


def _random_apdu(r: random.Random) -> bytes:
    kind = r.random()
    if kind < 0.2:
        return r.randbytes(r.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, r.randrange(9, 300))))
    if kind < 0.55:
        cla = r.choice(INTERESTING_CLA) if r.random() < 0.7 else r.randrange(256)
        ins = r.randrange(256)
        p1 = r.choice((0, 1, 2, 4, 8, 0x80, 0xFF, r.randrange(256)))
        p2 = r.choice((0, 1, 2, 4, 0x0C, 0x80, 0xFF, r.randrange(256)))
        body = b""
        shape = r.randrange(6)
        if shape == 1:
            body = bytes((r.randrange(256),))
        elif shape == 2:
            data = r.randbytes(r.randrange(1, 40))
            body = bytes((len(data),)) + data
        elif shape == 3:
            data = r.randbytes(r.randrange(1, 40))
            body = bytes((len(data),)) + data + bytes((r.randrange(256),))
        elif shape == 4:
            data = r.randbytes(r.randrange(0, 300))
            body = b"\x00" + len(data).to_bytes(2, "big") + data + r.randbytes(r.choice((0, 2)))
        elif shape == 5:
            body = r.randbytes(r.randrange(1, 12))  # probably a wrong length
        return bytes((cla, ins, p1, p2)) + body
    base = bytearray(r.choice(CORPUS))
    for _ in range(r.randrange(1, 4)):
        op = r.randrange(5)
        if op == 0 and base:
            i = r.randrange(len(base))
            base[i] ^= 1 << r.randrange(8)
        elif op == 1 and base:
            base[r.randrange(len(base))] = r.randrange(256)
        elif op == 2:
            del base[r.randrange(len(base) + 1) :]
        elif op == 3:
            base += r.randbytes(r.randrange(1, 5))
        elif op == 4 and len(base) > 4:
            base[4] = r.choice((0, 1, 0xFF, len(base) - 5, len(base) - 4))
    return bytes(base)


def test_random_and_mutated_apdus_never_escape_or_corrupt() -> None:
    r = random.Random(0xC0FFEE)
    card = new_card("demo", rng_seed=1)
    card.power_on()
    nvm = card.nvm
    checked_errors = 0
    for i in range(N):
        if i % 5000 == 0:
            card.reset()
        apdu = r.choice(CORPUS) if r.random() < 0.15 else _random_apdu(r)
        before = nvm.snapshot()
        resp = card.process(apdu)
        assert len(resp) >= 2, apdu.hex()
        sw = (resp[-2] << 8) | resp[-1]
        if not nvm_may_change(sw):
            checked_errors += 1
            assert nvm.snapshot() == before, f"{apdu.hex()} -> {sw:04X} changed persistent state"
        assert card.exceptions == 0, f"{apdu.hex()}: {card.last_exception}"
    assert card.nvm_violations == 0
    assert checked_errors > N // 2  # most random commands are refused: the check ran
