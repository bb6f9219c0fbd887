"""Declarative file definitions: each EF's codec with its own test vectors.

Every codec module named after its spec (`ts_102_221`, `ts_31_102`,
`ts_31_103`, `ts_51_011`) ends with a `FILE_DEFS` tuple: one `FileDef` per
elementary file, naming the file and its FID as the spec does, the clause,
the encode and decode functions, and the vectors (decoded value, encoded
bytes) with where each comes from. `registry()` gathers them all, and one
generic test (tests/unit/test_uicc_filedefs.py) walks them: every vector
encodes to its bytes and decodes back, names and FIDs are unique per DF,
malformed inputs raise the module's error, and a hypothesis round trip runs
wherever a definition declares a strategy.

The strategies are zero-argument callables that import hypothesis when the
test calls them, so the card library itself never needs hypothesis.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["CODEC_MODULES", "FileDef", "Vector", "registry", "vec"]

#: The codec modules, one per document; each has a `FILE_DEFS` tuple.
CODEC_MODULES = (
    "card.uicc.ts_102_221",
    "card.uicc.ts_31_102",
    "card.uicc.ts_31_103",
    "card.uicc.ts_51_011",
)


@dataclass(frozen=True)
class Vector:
    """One known coding: `decode(encoded) == decoded` and `encode(decoded) == encoded`."""

    decoded: Any
    encoded: bytes
    source: str


def vec(decoded: Any, encoded_hex: str, source: str) -> Vector:
    """A vector written as the spec or the source shows it (hex, spaces allowed)."""
    return Vector(decoded, bytes.fromhex(encoded_hex), source)


@dataclass(frozen=True)
class FileDef:
    """One elementary file: where it lives, its codec and its vectors.

    Attributes:
        name: the EF's name as the spec writes it ("EF.IMSI").
        fid: its file identifier.
        df: the DF or ADF it sits in ("MF", "ADF.USIM", "DF.TELECOM", "DF.5GS" ...).
        clause: the clause that specifies the coding ("TS 31.102 §4.2.2").
        encode: the file's (or one record's) value to bytes.
        decode: bytes to the value; None when the card only ever writes one
            fixed "empty" content and the module has no decoder for it.
        vectors: known codings, at least one.
        malformed: inputs `decode` must refuse with `error`.
        strategy: a callable giving a hypothesis strategy of values that round-trip.
        error: the exception the module raises for bytes it cannot decode.
        size: the file or record size the vectors use (for fuzzing the decoder
            with arbitrary bytes of that length); None: any length.
    """

    name: str
    fid: int
    df: str
    clause: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any] | None
    vectors: tuple[Vector, ...]
    malformed: tuple[bytes, ...] = ()
    strategy: Callable[[], SearchStrategy[Any]] | None = None
    error: type[Exception] = ValueError
    size: int | None = None

    def __str__(self) -> str:
        return f"{self.df}/{self.name} ({self.fid:04X})"


def registry() -> tuple[FileDef, ...]:
    """Every file definition of every codec module, in module order."""
    out: list[FileDef] = []
    for name in CODEC_MODULES:
        out.extend(importlib.import_module(name).FILE_DEFS)
    return tuple(out)
