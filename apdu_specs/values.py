"""Value types of decoded APDU fields, and their JSON form.

Decoded fields stay Python values (ints, bytes, dicts, lists) so that a spec can
build a command back from them. Two int subclasses carry how a value reads:

- `Named`: an enumerated value and its meaning (`Named(4, "by DF name")`); it
  compares and builds as the int, formats as the meaning.
- `HexInt`: a value written in hex (a tag, a file identifier, CLA/INS/P1/P2,
  a status word); `HexInt(0x3F00, 4)` formats as "3F00".

`to_json` turns a decoded value into JSON-ready data: bytes become upper-case
hex, `Named` its meaning, `HexInt` its hex digits. Hex appears only there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Named(int):
    """An enumerated value with its meaning."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> Named:
        obj = int.__new__(cls, value)
        obj.meaning = meaning
        return obj

    def __format__(self, spec: str) -> str:
        return format(int(self), spec) if spec else self.meaning

    def __str__(self) -> str:
        return self.meaning

    def __repr__(self) -> str:
        return f"Named({int(self)}, {self.meaning!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Named, (int(self), self.meaning))


class HexInt(int):
    """An int shown in hex with a fixed number of digits."""

    digits: int

    def __new__(cls, value: int, digits: int = 2) -> HexInt:
        obj = int.__new__(cls, value)
        obj.digits = digits
        return obj

    def __format__(self, spec: str) -> str:
        return format(int(self), spec) if spec else f"{int(self):0{self.digits}X}"

    def __str__(self) -> str:
        return f"{int(self):0{self.digits}X}"

    def __repr__(self) -> str:
        return f"0x{int(self):0{self.digits}X}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (HexInt, (int(self), self.digits))


def to_json(value: Any) -> Any:
    """A decoded value as JSON-ready data (bytes as upper-case hex strings).

    Keys starting with "_" (construct's `_io`) are left out.
    """
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, Named):
        return value.meaning
    if isinstance(value, HexInt):
        return f"{int(value):0{value.digits}X}"
    if isinstance(value, str):
        return str(value)  # also construct's EnumIntegerString
    if isinstance(value, int):
        return int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, Mapping):
        return {
            str(k): to_json(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    to_json_method = getattr(value, "to_json", None)
    if callable(to_json_method):
        return to_json_method()
    return str(value)
