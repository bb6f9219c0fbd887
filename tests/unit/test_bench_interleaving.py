"""`cardemu bench`: the two sides of a comparison alternate, and the figure is the median."""

from __future__ import annotations

from host.bench import ROUNDS, interleaved


def test_sides_alternate_and_the_median_round_is_reported() -> None:
    calls: list[str] = []
    ours = iter([10.0, 50.0, 12.0, 11.0, 9.0])
    theirs = iter([5.0, 5.0, 6.0, 5.5, 4.5])

    def mine(t: float) -> float:
        calls.append("o")
        return next(ours)

    def other(t: float) -> float:
        calls.append("t")
        return next(theirs)

    rate, their_rate, ratios = interleaved(mine, other, 1.0)
    assert "".join(calls) == "ot" + "to" + "ot" + "to" + "ot"  # who goes first alternates
    assert (rate, their_rate) == (11.0, 5.0)  # medians: one fast round weighs nothing
    assert ratios == [2.0, 10.0, 2.0, 2.0, 2.0]
    assert len(ratios) == ROUNDS


def test_without_the_other_side_only_ours_is_measured() -> None:
    rate, theirs, ratios = interleaved(lambda t: 7.0, None, 0.5)
    assert (rate, theirs, ratios) == (7.0, None, [])
