"""Mutations of command APDUs: byte-level, and aware of the APDU's structure.

Structure-aware mutations parse the command (ISO/IEC 7816-4 §5.1, cases 1-4,
short and extended) and break one thing a card must check: the class (other
channels, secure messaging and chaining bits, proprietary vs interindustry,
FF), the length fields (Lc one off, a missing or extra Le, short vs extended
form), P1-P2 (boundary values), INS (neighbours, odd/even). Byte-level ones flip
bits, set interesting values, cut, extend, and splice with another command.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from card.apdu import ApduFormatError, CommandApdu

INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x04, 0x0C, 0x10, 0x1F, 0x40, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
#: Classes a card must tell apart: first/further interindustry with every channel
#: range, secure messaging, chaining, proprietary (80/84/A0/C0) and the invalid FF.
WRONG_CLASSES = (
    0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x0C, 0x10, 0x13, 0x1C, 0x20, 0x40, 0x4F,
    0x60, 0x7F, 0x80, 0x81, 0x83, 0x84, 0x8C, 0x90, 0xA0, 0xB0, 0xC0, 0xE0, 0xFF,
)  # fmt: skip
INTERESTING_LENGTHS = (0, 1, 2, 15, 16, 17, 127, 128, 254, 255, 256, 257)


def _parse(apdu: bytes) -> CommandApdu | None:
    try:
        return CommandApdu.from_bytes(apdu)
    except ApduFormatError:
        return None


def _build(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None, ext: bool) -> bytes:
    try:
        return CommandApdu(cla, ins, p1, p2, data, le, ext).to_bytes()
    except (ValueError, ApduFormatError):
        return bytes((cla, ins, p1, p2)) + data


# -- structure-aware ----------------------------------------------------------------------------


def wrong_class(apdu: bytes, rng: random.Random) -> bytes:
    if not apdu:
        return bytes((rng.choice(WRONG_CLASSES),))
    return bytes((rng.choice(WRONG_CLASSES),)) + apdu[1:]


def channel_class(apdu: bytes, rng: random.Random) -> bytes:
    """The same class on another logical channel (0-3 in b2-b1, 4-19 further)."""
    if not apdu:
        return apdu
    cla = apdu[0]
    ch = rng.randrange(20)
    if ch < 4:
        new = (cla & ~0x43 & 0xFF) | ch
    else:
        new = (cla & 0x80) | 0x40 | (ch - 4)
    return bytes((new,)) + apdu[1:]


def ins_neighbour(apdu: bytes, rng: random.Random) -> bytes:
    if len(apdu) < 2:
        return apdu
    # Odd INS codes are the BER-TLV variants of even ones (ISO/IEC 7816-4 §5.4.2).
    ins = (apdu[1] + rng.choice((-1, 1))) & 0xFF if rng.random() < 0.7 else apdu[1] ^ 1
    return apdu[:1] + bytes((ins,)) + apdu[2:]


def p1p2_boundary(apdu: bytes, rng: random.Random) -> bytes:
    if len(apdu) < 4:
        return apdu
    out = bytearray(apdu)
    i = rng.choice((2, 3))
    out[i] = rng.choice(INTERESTING_BYTES) if rng.random() < 0.8 else rng.randrange(256)
    return bytes(out)


def wrong_lc(apdu: bytes, rng: random.Random) -> bytes:
    """Lc that does not match the data (one off, zero, FF), or data cut short."""
    cmd = _parse(apdu)
    if cmd is None or not cmd.data or cmd.extended:
        return truncate(apdu, rng)
    out = bytearray(apdu)
    n = len(cmd.data)
    out[4] = rng.choice(((n + 1) & 0xFF, (n - 1) & 0xFF, 0x00, 0xFF, rng.randrange(256)))
    return bytes(out)


def toggle_le(apdu: bytes, rng: random.Random) -> bytes:
    """Drop the Le, add one, or make it 00 / 01 / one off."""
    cmd = _parse(apdu)
    if cmd is None:
        return apdu + bytes((rng.choice((0, 1, 0xFF)),))
    if cmd.le is not None and rng.random() < 0.4:
        le: int | None = None
    else:
        le = rng.choice((1, 2, 255, 256, (cmd.le or 0) + 1, max(1, (cmd.le or 2) - 1)))
        if cmd.extended or le > 256:
            le = min(le, 65536)
    return _build(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, le, cmd.extended or (le or 0) > 256)


def flip_length_form(apdu: bytes, rng: random.Random) -> bytes:
    """The same command in the other length form (short <-> extended)."""
    cmd = _parse(apdu)
    if cmd is None or (not cmd.data and cmd.le is None):
        return apdu
    ext = not cmd.extended
    if not ext and (len(cmd.data) > 255 or (cmd.le or 0) > 256):
        return apdu
    return _build(cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le, ext)


def resize_data(apdu: bytes, rng: random.Random) -> bytes:
    """Data of a boundary length, with consistent length fields."""
    cmd = _parse(apdu)
    if cmd is None:
        return extend(apdu, rng)
    n = rng.choice(INTERESTING_LENGTHS)
    data = (cmd.data * (n // max(1, len(cmd.data)) + 1))[:n] if cmd.data else rng.randbytes(n)
    ext = cmd.extended or n > 255
    return _build(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, cmd.le, ext)


def mutate_data(apdu: bytes, rng: random.Random) -> bytes:
    """One byte of the data changed, lengths kept consistent."""
    cmd = _parse(apdu)
    if cmd is None or not cmd.data:
        return flip_bit(apdu, rng)
    data = bytearray(cmd.data)
    i = rng.randrange(len(data))
    data[i] = (
        rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else data[i] ^ (1 << rng.randrange(8))
    )
    return _build(cmd.cla, cmd.ins, cmd.p1, cmd.p2, bytes(data), cmd.le, cmd.extended)


# -- byte-level ---------------------------------------------------------------------------------


def flip_bit(apdu: bytes, rng: random.Random) -> bytes:
    if not apdu:
        return apdu
    out = bytearray(apdu)
    i = rng.randrange(len(out))
    out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_byte(apdu: bytes, rng: random.Random) -> bytes:
    if not apdu:
        return apdu
    out = bytearray(apdu)
    out[rng.randrange(len(out))] = rng.choice(INTERESTING_BYTES)
    return bytes(out)


def truncate(apdu: bytes, rng: random.Random) -> bytes:
    if len(apdu) <= 1:
        return apdu
    return apdu[: rng.randrange(1, len(apdu))]


def extend(apdu: bytes, rng: random.Random) -> bytes:
    return apdu + rng.randbytes(rng.choice((1, 1, 2, 3, rng.randrange(1, 40))))


MUTATIONS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    wrong_class,
    channel_class,
    ins_neighbour,
    p1p2_boundary,
    p1p2_boundary,
    wrong_lc,
    toggle_le,
    toggle_le,
    flip_length_form,
    resize_data,
    mutate_data,
    mutate_data,
    flip_bit,
    set_byte,
    truncate,
    extend,
)

#: Mutations that keep the command plausible but break one rule (for spec inputs).
RULE_BREAKERS: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    wrong_class,
    channel_class,
    wrong_lc,
    toggle_le,
    flip_length_form,
    resize_data,
    p1p2_boundary,
)


def splice(a: bytes, b: bytes, rng: random.Random) -> bytes:
    """The header of one command with the body of another."""
    if len(a) < 4 or len(b) < 4:
        return a or b
    return a[:4] + b[4:]


def mutate(
    apdu: bytes,
    rng: random.Random,
    others: Sequence[bytes] = (),
    *,
    rounds: int | None = None,
) -> bytes:
    """Apply 1-3 random mutations (or `rounds`); never returns an empty command."""
    out = apdu
    for _ in range(rounds if rounds is not None else rng.choice((1, 1, 1, 2, 3))):
        if others and rng.random() < 0.08:
            out = splice(out, rng.choice(others), rng)
        else:
            out = rng.choice(MUTATIONS)(out, rng)
    return out or apdu or b"\x00"


def break_rule(apdu: bytes, rng: random.Random) -> bytes:
    """One rule broken in an otherwise valid command (wrong class, length, P1-P2)."""
    return rng.choice(RULE_BREAKERS)(apdu, rng) or apdu
