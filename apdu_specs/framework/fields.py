"""P1-P2 bit fields of a spec (`Field`, `p1`, `p2`, `p1p2`) and its Le rule (`Le`).

P1 and P2 are read as one 16-bit word P1-P2 (P1 in the high byte), so a field
can sit in P1, in P2 or across both (a 15-bit offset, a tag; ISO/IEC 7816-4 §5.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from apdu_specs.values import HexInt, Named


@dataclass(frozen=True)
class Field:
    """A bit field of P1-P2 (P1 in bits 15-8, P2 in bits 7-0).

    Attributes:
        name: the key in `Decoded.params`.
        mask: its bits in P1-P2 (contiguous).
        values: the defined values (shifted down) and their meanings; any other
            value is RFU. None: every value in lo..hi is valid.
        lo, hi: the valid range when `values` is None (hi defaults to all ones).
        hex: show the value in hex (a tag, a file identifier).
    """

    name: str
    mask: int
    values: Mapping[int, str] | None = None
    lo: int = 0
    hi: int | None = None
    hex: bool = False
    shift: int = field(init=False, repr=False)
    digits: int = field(init=False, repr=False)
    _named: Mapping[int, Named] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.mask <= 0xFFFF:
            raise ValueError(f"field {self.name}: mask {self.mask:#x} is not within P1-P2")
        shift = (self.mask & -self.mask).bit_length() - 1
        top = self.mask >> shift
        if top & (top + 1):
            raise ValueError(f"field {self.name}: mask {self.mask:#06x} is not contiguous")
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "digits", max(1, (top.bit_length() + 3) // 4))
        if self.hi is None:
            object.__setattr__(self, "hi", top)
        # Decoding wraps a value on every APDU: share one Named per defined value.
        named = {v: Named(v, m) for v, m in (self.values or {}).items()}
        object.__setattr__(self, "_named", named)

    @property
    def top(self) -> int:
        return self.mask >> self.shift

    @property
    def where(self) -> str:
        """Where the field sits: P1, P2, P1-P2, or e.g. "P1 b5-b1" for part of a byte."""
        if self.mask & 0xFF00 and self.mask & 0x00FF:
            return "P1-P2"
        byte_mask, name = (self.mask >> 8, "P1") if self.mask & 0xFF00 else (self.mask, "P2")
        if byte_mask == 0xFF:
            return name
        hi_bit = byte_mask.bit_length()
        lo_bit = (byte_mask & -byte_mask).bit_length()
        return f"{name} b{hi_bit}" if hi_bit == lo_bit else f"{name} b{hi_bit}-b{lo_bit}"

    def get(self, p1p2: int) -> int:
        return (p1p2 & self.mask) >> self.shift

    def is_valid(self, value: int) -> bool:
        if self.values is not None:
            return value in self.values
        assert self.hi is not None
        return self.lo <= value <= self.hi

    def wrap(self, value: int) -> Any:
        """The value as `Decoded.params` holds it: Named, HexInt or int."""
        if self.values is not None:
            named = self._named.get(value)
            return named if named is not None else Named(value, f"RFU {value:02X}")
        if self.hex:
            return HexInt(value, self.digits)
        return value


def p1(name: str, values: Mapping[int, str] | None = None, *, mask: int = 0xFF, **kw: Any) -> Field:
    """A field of P1 (`mask` over P1 alone)."""
    return Field(name, mask << 8, values, **kw)


def p2(name: str, values: Mapping[int, str] | None = None, *, mask: int = 0xFF, **kw: Any) -> Field:
    """A field of P2."""
    return Field(name, mask, values, **kw)


def p1p2(
    name: str, values: Mapping[int, str] | None = None, *, mask: int = 0xFFFF, **kw: Any
) -> Field:
    """A field across P1-P2 (an offset, a tag)."""
    return Field(name, mask, values, **kw)


class Le(Enum):
    """Whether the Le field is absent, optional or required."""

    ABSENT = "absent"
    OPTIONAL = "optional"
    REQUIRED = "required"
