"""Hex at the edges: parsing what a person types, printing what a person reads."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s:]+")


def parse_hex(text: str) -> bytes:
    """Parse plain hex, spaced hex or colon-separated hex ("00A4", "00 A4", "00:A4").

    Raises:
        ValueError: the text is not an even number of hex digits.
    """
    clean = _SEPARATORS.sub("", text)
    if clean.lower().startswith("0x"):
        clean = clean[2:]
    if len(clean) % 2:
        raise ValueError(f"odd number of hex digits in {text!r}")
    try:
        return bytes.fromhex(clean)
    except ValueError:
        raise ValueError(f"not hex: {text!r}") from None


MIN_COMMAND_APDU = 4
"""CLA INS P1 P2: no command APDU is shorter (ISO/IEC 7816-3 §12.1)."""


def check_command_apdu(apdu: bytes) -> bytes:
    """`apdu` itself, if it is long enough to be a command APDU.

    Shorter bytes are never sent: a card can only refuse them, and through
    PC/SC a 1-byte command reaches vpcd as a control code and hangs the call.

    Raises:
        ValueError: fewer than 4 bytes.
    """
    if len(apdu) < MIN_COMMAND_APDU:
        got = "nothing" if not apdu else f"{len(apdu)} byte{'s' if len(apdu) > 1 else ''}"
        raise ValueError(f"a command APDU has at least 4 bytes (CLA INS P1 P2), got {got}")
    return apdu


def parse_command_apdu(text: str) -> bytes:
    """A command APDU typed by a person (see `parse_hex`), at least 4 bytes long.

    Raises:
        ValueError: not hex, or shorter than a command header.
    """
    apdu = parse_hex(text)
    try:
        return check_command_apdu(apdu)
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None


def to_hex(data: bytes, sep: str = "") -> str:
    return data.hex(sep).upper() if sep else data.hex().upper()
