"""Generating values for a spec's constructs: one code path, two sources of choices.

Every generator takes a `Draw`, the source of its choices. `RandomDraw` wraps a
`random.Random` and leans towards boundary values (the ends of every range,
empty and full-length byte strings), which is what a fuzzer wants;
`apdu_specs.strategies.HypothesisDraw` draws the same choices from hypothesis,
so property tests shrink. Nothing here imports hypothesis.

`value_for(con, draw, size)` knows the construct classes the spec modules use
(Struct, Renamed, FormatField, BytesInteger, Bytes, GreedyBytes, Enum, Const,
Default, Prefixed, GreedyRange, Array, Select, FocusedSeq) and any construct
that has a `generate(draw, size)` method (the BER-TLV construct in
`apdu_specs.constructs`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import construct as c

T = TypeVar("T")

#: Upper bound for greedy byte strings when nothing else bounds them: large
#: enough to cross the short/extended boundary, small enough for fast tests.
GREEDY_CAP = 300


class Draw(Protocol):
    """A source of choices for generators."""

    def integer(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        ...

    def choice(self, options: Sequence[T]) -> T:
        """One of a non-empty sequence."""
        ...

    def binary(self, lo: int, hi: int) -> bytes:
        """Bytes whose length is in [lo, hi]."""
        ...

    def boolean(self) -> bool: ...


class RandomDraw:
    """Choices from `random.Random`, biased towards boundary values.

    Args:
        rng: the generator (seed it for reproducible runs).
        boundary: probability of picking a range end (or a neighbour of one)
            and of filling bytes with 00 or FF.
    """

    def __init__(self, rng: random.Random, boundary: float = 0.25) -> None:
        self.rng = rng
        self.boundary = boundary

    def integer(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return lo
        if self.rng.random() < self.boundary:
            return self.rng.choice((lo, hi, min(lo + 1, hi), max(hi - 1, lo)))
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def binary(self, lo: int, hi: int) -> bytes:
        n = self.integer(lo, hi)
        r = self.rng.random()
        if r < self.boundary / 2:
            return bytes(n)
        if r < self.boundary:
            return b"\xff" * n
        return self.rng.randbytes(n)

    def boolean(self) -> bool:
        return self.rng.random() < 0.5


def _int_range(size: int, signed: bool) -> tuple[int, int]:
    bits = 8 * size
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _fixed_size(con: c.Construct) -> int | None:
    try:
        return int(con.sizeof())
    except (c.SizeofError, KeyError, AttributeError, TypeError):
        return None


def value_for(con: c.Construct, draw: Draw, size: tuple[int, int] | None = None) -> Any:
    """A value that `con.build` accepts.

    Args:
        con: the construct.
        draw: the source of choices.
        size: bounds (in bytes) for the encoded value, honoured by greedy parts.

    Raises:
        TypeError: a construct class this module does not know.
    """
    hook = getattr(con, "generate", None)
    if callable(hook):
        return hook(draw, size)
    if isinstance(con, c.Renamed | c.Default):
        return value_for(con.subcon, draw, size)
    if isinstance(con, c.Struct | c.FocusedSeq):
        return _struct_value(con, draw, size)
    if isinstance(con, c.FormatField):
        code = con.fmtstr[-1]
        if code in "efd":
            return float(draw.integer(-1000, 1000))
        if code == "?":
            return draw.boolean()
        lo, hi = _int_range(con.length, code.islower())
        return draw.integer(lo, hi)
    if isinstance(con, c.BytesInteger) and isinstance(con.length, int):
        lo, hi = _int_range(con.length, con.signed)
        return draw.integer(lo, hi)
    if isinstance(con, c.Bytes) and isinstance(con.length, int):
        return draw.binary(con.length, con.length)
    if con is c.GreedyBytes:
        lo, hi = size if size is not None else (0, 16)
        return draw.binary(lo, min(hi, GREEDY_CAP))
    if isinstance(con, c.Enum):
        names = sorted(con.encmapping)
        return draw.choice(names)
    if isinstance(con, c.Const):
        return con.value
    if isinstance(con, c.Prefixed):
        field_size = _fixed_size(con.lengthfield) or 1
        hi = min((1 << (8 * field_size)) - 1, GREEDY_CAP)
        return value_for(con.subcon, draw, (0, hi))
    if isinstance(con, c.GreedyRange):
        item = _fixed_size(con.subcon)
        lo_n, hi_n = 0, 4
        if size is not None and item:
            lo_n = -(-size[0] // item)
            hi_n = max(lo_n, min(size[1], GREEDY_CAP) // item)
        return [value_for(con.subcon, draw) for _ in range(draw.integer(lo_n, hi_n))]
    if isinstance(con, c.Array) and isinstance(con.count, int):
        return [value_for(con.subcon, draw) for _ in range(con.count)]
    if isinstance(con, c.Select):
        return value_for(draw.choice(con.subcons), draw, size)
    raise TypeError(f"no generator for construct {type(con).__name__}")


def _struct_value(con: c.Struct | c.FocusedSeq, draw: Draw, size: tuple[int, int] | None) -> Any:
    subcons = list(con.subcons)
    fixed = 0
    greedy = []
    for sc in subcons:
        n = _fixed_size(sc)
        if n is None:
            greedy.append(sc)
        else:
            fixed += n
    rest: tuple[int, int] | None = None
    if size is not None:
        rest = (max(0, size[0] - fixed), max(0, size[1] - fixed))
    out: dict[str, Any] = {}
    for sc in subcons:
        name = getattr(sc, "name", None)
        inner = sc.subcon if isinstance(sc, c.Renamed) else sc
        if isinstance(inner, c.Const) or inner is c.Terminated or name is None:
            continue
        # Only the last variable-size part gets the remaining budget.
        budget = rest if greedy and sc is greedy[-1] else None
        out[name] = value_for(sc, draw, budget)
    if isinstance(con, c.FocusedSeq):
        return out[con.parsebuildfrom]
    return out


def encodable_range(lo: int, hi: int) -> tuple[int, int]:
    """Clamp a byte-length range to what generators produce (at most GREEDY_CAP)."""
    return lo, max(lo, min(hi, GREEDY_CAP))


__all__ = ["Draw", "GREEDY_CAP", "RandomDraw", "encodable_range", "value_for"]
