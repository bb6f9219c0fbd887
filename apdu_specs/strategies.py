"""Hypothesis strategies derived from specs (hypothesis is a test extra).

The strategies run the same generators as `CommandSpec.examples` (see
`apdu_specs.generate`), with hypothesis making the choices, so failures shrink
to small commands.

    from apdu_specs.strategies import commands, values
    @given(commands(spec))            # valid command APDUs for a spec
    @given(values(spec.data))         # values the data construct builds
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import construct as c
from hypothesis import strategies as st

from apdu_specs.framework.spec import CommandSpec
from apdu_specs.generate import value_for

T = TypeVar("T")


class HypothesisDraw:
    """The `Draw` protocol on top of hypothesis' `draw`."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, max(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))

    def binary(self, lo: int, hi: int) -> bytes:
        return self._draw(st.binary(min_size=lo, max_size=max(lo, hi)))

    def boolean(self) -> bool:
        return self._draw(st.booleans())


def commands(spec: CommandSpec) -> st.SearchStrategy[bytes]:
    """Valid command APDUs for `spec` (defined field values, RFU bits 0, data per its construct)."""

    @st.composite
    def _commands(draw: Any) -> bytes:
        return spec.generate(HypothesisDraw(draw))

    return _commands()


def values(con: c.Construct, size: tuple[int, int] | None = None) -> st.SearchStrategy[Any]:
    """Values `con.build` accepts."""

    @st.composite
    def _values(draw: Any) -> Any:
        return value_for(con, HypothesisDraw(draw), size)

    return _values()
