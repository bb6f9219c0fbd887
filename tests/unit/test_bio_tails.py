"""host.bio.tails: the quick per-setting tail measure used while tuning the matcher."""

from __future__ import annotations

import pytest

from applets.biometric import matcher
from host.bio import tails


def test_tails_gives_each_setting_its_thresholds_and_the_hard_fnmr_at_the_highest() -> None:
    t = tails.measure(seeds=(5,), fingers=8, impostors=120)
    assert set(t.thresholds) == {"easy", "medium", "hard"}
    assert t.impostors == 120 and t.genuine == 8 * 6
    for thr in t.thresholds.values():
        assert thr[0] <= thr[1]  # the 0.1 % point is never under the 1 % point
    # a stricter threshold never accepts more genuine pairs
    assert 0.0 <= t.hard_fnmr[0] <= t.hard_fnmr[1] <= 1.0


def test_a_knob_is_set_for_the_run_and_a_non_constant_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(matcher, "FILL_EXP", matcher.FILL_EXP)  # restored after the test
    monkeypatch.setattr(matcher, "GLOBAL_SEEDS", matcher.GLOBAL_SEEDS)
    tails._set_knob("FILL_EXP=1.5")
    tails._set_knob("GLOBAL_SEEDS=4.0")
    assert matcher.FILL_EXP == 1.5 and matcher.GLOBAL_SEEDS == 4
    assert isinstance(matcher.GLOBAL_SEEDS, int)
    with pytest.raises(SystemExit, match="not a numeric matcher constant"):
        tails._set_knob("compare=1")
    with pytest.raises(SystemExit, match="not a numeric matcher constant"):
        tails._set_knob("NO_SUCH=1")


def test_a_geometry_knob_rebuilds_the_cylinder_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """NS and the like feed tables built at import: `apply_knobs` rebuilds them, so the
    knob takes effect (it silently did not before `matcher.build_tables`)."""
    cells = matcher._CELLS
    monkeypatch.setattr(matcher, "NS", matcher.NS)
    try:
        tails.apply_knobs(["NS=12"])
        assert matcher._CELLS == 144 != cells
    finally:
        monkeypatch.undo()
        matcher.build_tables()
    assert matcher._CELLS == cells


def test_the_docstrings_knob_example_parses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The module docstring's example order (knobs, then --seeds) runs; knobs after
    --seeds would be read as seeds."""
    monkeypatch.setattr(matcher, "FILL_EXP", matcher.FILL_EXP)
    tails.main(["FILL_EXP=1.5", "--seeds", "14", "--impostors", "5"])
    assert matcher.FILL_EXP == 1.5
    out = capsys.readouterr().out
    assert "hard    5 impostors: FMR 1% at" in out  # one seed, 5 impostors a setting
    assert "hard FNMR at the highest FMR 1% threshold" in out
    assert "--seeds 14 15 16" in (tails.__doc__ or "")
    with pytest.raises(SystemExit):
        tails.main(["--seeds", "14", "FILL_EXP=1.5"])
