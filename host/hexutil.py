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


def to_hex(data: bytes, sep: str = "") -> str:
    return data.hex(sep).upper() if sep else data.hex().upper()
