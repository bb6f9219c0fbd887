"""The difficulty generator, the calibration and the confidence intervals."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from applets.biometric import matcher
from applets.biometric.applet import (
    DEFAULT_THRESHOLD,
    THRESHOLD_FMR_01PCT,
    THRESHOLD_FMR_1PCT,
)
from applets.biometric.iso19794 import encode_minutiae
from host.bio import calibrate, det, difficulty

#: FNMR of the hard setting at the shipped FMR 1% and 0.1% thresholds on the CI sample of
#: `test_shipped_thresholds_on_an_evaluation_seed` (measured 1/48 and 3/48 at 83 / 153, the
#: global score the mean of the growings and `FILL_REF` 25; 1/48 and 2/48 at 168 / 262,
#: the chance corrections of the local score's fill and the global null's density term;
#: 1/48 and 5/48 at 222 / 343, the density-aware global score and the pooled calibration;
#: 1/48 and 8/48 at 449 / 564;
#: 2/48 and 9/48 at 476 / 617 before the type-mismatch weight 0.2, 36 relaxation pairs and
#: the direction tolerance of 7 steps, 4/48 and 11/48 before the overlap exponent went to
#: 1): a regression floor, not the targets (5% and 10% at FMR 1% and 0.1% on the full
#: evaluation), which are not met yet.
HARD_FNMR_FLOOR = (0.03, 0.07)


def test_settings_are_the_issue_rows() -> None:
    hard, medium, easy = difficulty.HARD, difficulty.MEDIUM, difficulty.EASY
    assert hard.minutiae == (40, 60) and hard.rotation_deg == 20 and hard.translation_mm == 3
    assert (hard.distortion_shift_mm, hard.distortion_rotation_deg) == (1.5, 8.0)
    assert (hard.position_sd_mm, hard.angle_sd_deg, hard.type_flip) == (0.2, 6.0, 0.1)
    assert hard.miss_rate == (0.10, 0.25) and hard.spurious_rate == (0.05, 0.15)
    assert (hard.window_w_mm, hard.window_h_mm) == ((11.0, 14.0), (14.0, 19.0))
    assert not hard.aligned_windows
    assert medium.distortion_shift_mm == hard.distortion_shift_mm / 2 and medium.aligned_windows
    assert easy.distortion_shift_mm == 0 and easy.position_sd_mm == 0 and easy.miss_rate == (0, 0)
    assert set(difficulty.SETTINGS) == {"easy", "medium", "hard"}


def test_same_seed_same_data_and_seeds_differ() -> None:
    a = difficulty.make_dataset(3, 2, seed=7)
    b = difficulty.make_dataset(3, 2, seed=7)
    c = difficulty.make_dataset(3, 2, seed=8)
    assert a.impressions == b.impressions
    assert a.impressions != c.impressions


def test_finger_has_the_asked_minutiae_count() -> None:
    for i in range(5):
        f = difficulty.make_finger(1, i)
        assert 40 <= len(f.minutiae) <= 60


def test_easy_impressions_keep_every_minutia_of_the_window() -> None:
    f = difficulty.make_finger(3, 0, difficulty.EASY)
    imp = difficulty.make_labelled_impression(f, 3, 0, difficulty.EASY)
    assert all(index >= 0 for _, index in imp)  # no spurious minutiae
    assert len({index for _, index in imp}) == len(imp)


def test_hard_impressions_have_spurious_and_fit_the_card() -> None:
    f = difficulty.make_finger(3, 1)
    imps = [difficulty.make_labelled_impression(f, 3, k) for k in range(6)]
    assert any(index < 0 for imp in imps for _, index in imp)
    assert all(len(imp) <= matcher.MAX_MINUTIAE for imp in imps)


def test_knobs_change_the_data() -> None:
    f = difficulty.make_finger(4, 0)
    flat = dataclasses.replace(difficulty.HARD, distortion_shift_mm=0.0)
    assert difficulty.make_impression(f, 4, 0) != difficulty.make_impression(f, 4, 0, flat)


def test_genuine_beats_impostor_on_easy() -> None:
    ds = difficulty.make_dataset(2, 2, seed=11, d=difficulty.EASY)
    t = [[encode_minutiae(i) for i in f] for f in ds.impressions]
    assert matcher.score(t[0][0], t[0][1]) >= THRESHOLD_FMR_01PCT
    assert matcher.score(t[0][0], t[1][1]) < THRESHOLD_FMR_1PCT


def test_thresholds_are_ordered_and_default_is_documented() -> None:
    assert THRESHOLD_FMR_1PCT < THRESHOLD_FMR_01PCT
    assert DEFAULT_THRESHOLD == THRESHOLD_FMR_01PCT


def test_threshold_for_counts_allowed_false_matches() -> None:
    scores = list(range(1000))  # 0..999
    assert calibrate.threshold_for(scores, 0.01) == 990  # 990..999 match: 10 = 1%
    assert calibrate.threshold_for(scores, 0.001) == 999
    assert calibrate.threshold_for([5, 5, 5], 0.01) == 6


def _fmr_upper(scores: list[int], t: int) -> float:
    return det.wilson_interval(sum(s >= t for s in scores), len(scores))[1]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 3000), min_size=1, max_size=3000),
    st.sampled_from(calibrate.TARGETS),
)
def test_confident_threshold_bounds_the_fmr(scores: list[int], target: float) -> None:
    t = calibrate.threshold_for_upper(scores, target)
    assert t >= calibrate.threshold_for(scores, target)  # never laxer than the bare quantile
    if _fmr_upper(scores, t) <= target:
        # the lowest such threshold: one below it, the bound is over the target
        assert _fmr_upper(scores, t - 1) > target
    else:
        assert t == max(scores) + 1  # too few comparisons to claim the target anywhere


def test_confident_threshold_on_a_known_sample() -> None:
    scores = list(range(20000))  # 0..19999
    t1 = calibrate.threshold_for_upper(scores, 0.01)
    fmr = (20000 - t1) / 20000
    assert 0.0080 < fmr < 0.0090  # the bound leaves ~0.14 points for the sampling error
    assert (
        det.wilson_interval(20000 - t1, 20000)[1]
        <= 0.01
        < det.wilson_interval(20001 - t1, 20000)[1]
    )


def test_setting_confidence_is_bonferroni_over_the_settings() -> None:
    # each of 3 settings fails with at most 0.05 / 3 on one side: a two-sided 1 - 0.1 / 3
    assert calibrate.setting_confidence(3) == pytest.approx(1 - 0.1 / 3)
    assert calibrate.setting_confidence(1) == pytest.approx(0.9)


def test_calibration_takes_the_highest_pooled_setting_threshold() -> None:
    cal = calibrate.calibrate(
        seeds=(9001, 9002), settings=("easy", "hard"), fingers=8, impressions=2, impostors=60
    )
    assert set(cal.per_setting) == {"easy", "hard"}
    assert set(cal.per_run) == {(s, d) for s in ("easy", "hard") for d in (9001, 9002)}
    for t in calibrate.TARGETS:
        assert cal.thresholds[t] == max(r[t] for r in cal.per_setting.values())
    # each setting's bound is on its seeds pooled, at the joint confidence
    level = calibrate.setting_confidence(2)
    for setting in ("easy", "hard"):
        pooled = [
            s for seed in (9001, 9002) for s in calibrate.impostor_scores(setting, seed, 8, 2, 60)
        ]
        groups = [
            g
            for index, seed in enumerate((9001, 9002))
            for g in calibrate.finger_groups(
                index, calibrate.impostor_pairs(setting, seed, 8, 2, 60)
            )
        ]
        for t in calibrate.TARGETS:
            want = calibrate.threshold_for_clustered(pooled, groups, t, level)
            assert cal.per_setting[setting][t] == want


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 9), st.integers(0, 9)),
             min_size=1, max_size=3000),
    st.sampled_from(calibrate.TARGETS),
)  # fmt: skip
def test_clustered_threshold_is_never_laxer_than_the_independent_one(
    sample: list[tuple[int, int, int]], target: float
) -> None:
    scores = [s for s, _, _ in sample]
    groups = [(a, b) for _, a, b in sample]
    level = calibrate.setting_confidence(3)
    t = calibrate.threshold_for_clustered(scores, groups, target, level)
    assert t >= calibrate.threshold_for_upper(scores, target, level)


def test_clustered_threshold_widens_when_one_finger_carries_the_tail() -> None:
    # 20,000 comparisons of 100 groups; the 150 highest scores all involve group 0: the
    # same count of false matches, but from one group, is a much less certain FMR.
    n = 20000
    scores = list(range(n))
    spread = [(c % 100, (c * 7 + 1) % 100) for c in range(n)]
    clumped = [(0, 1 + c % 99) if c >= n - 150 else (1 + c % 99, 1 + (c * 7) % 99)
               for c in range(n)]  # fmt: skip
    level = calibrate.setting_confidence(3)
    independent = calibrate.threshold_for_upper(scores, 0.01, level)
    assert calibrate.threshold_for_clustered(scores, spread, 0.01, level) <= independent + 3
    assert calibrate.threshold_for_clustered(scores, clumped, 0.01, level) > independent + 20


def test_calibrate_cli_defaults_are_the_module_defaults() -> None:
    from host.commands.bio import calibrate_cmd

    defaults = {p.name: p.default for p in calibrate_cmd.params}
    assert defaults["fingers"] == calibrate.DEFAULT_FINGERS
    assert defaults["impressions"] == calibrate.DEFAULT_IMPRESSIONS
    assert defaults["impostors"] == calibrate.DEFAULT_IMPOSTORS


@pytest.mark.parametrize("k,n", [(0, 10), (1, 100), (50, 100), (100, 100)])
def test_wilson_interval_contains_the_rate(k: int, n: int) -> None:
    lo, hi = det.wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert hi - lo < 0.5


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500), st.data())
def test_wilson_interval_narrows_with_trials(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n))
    lo, hi = det.wilson_interval(k, n)
    lo4, hi4 = det.wilson_interval(4 * k, 4 * n)
    assert hi4 - lo4 <= hi - lo + 1e-12


def test_mcc_reference_runs_or_says_why() -> None:
    from host.bio import mcc

    ok, why = mcc.available()
    if not ok:
        assert "pip install afis" in why
        with pytest.raises(mcc.MccUnavailable):
            mcc.Mcc()
        pytest.skip(why)
    ds = difficulty.make_dataset(2, 2, seed=12, d=difficulty.EASY)
    ref = mcc.Mcc()
    p = [[ref.prepare(i) for i in f] for f in ds.impressions]
    assert 0.0 <= ref.score(p[0][0], p[1][1]) <= 1.0


def test_mcc_reference_matches_a_posed_copy() -> None:
    """On the easy setting two impressions of a finger are the same minutiae in another
    pose (turned up to 40 degrees apart): MCC must score them as a match and a stranger
    as none. With the ISO angle handed to afis unchanged the posed copies scored like
    strangers (the bridge's angle convention, `host.bio.mcc`)."""
    from host.bio import mcc

    ok, why = mcc.available()
    if not ok:
        pytest.skip(why)
    ds = difficulty.make_dataset(3, 2, seed=1, d=difficulty.EASY)
    ref = mcc.Mcc()
    p = [[ref.prepare(i) for i in f] for f in ds.impressions]
    for f in range(2):
        assert ref.score(p[f][0], p[f][1]) > 0.5
        assert ref.score(p[f][0], p[f + 1][0]) < 0.1


def test_shipped_thresholds_on_an_evaluation_seed() -> None:
    # Evaluation seed 1 (never a calibration seed), a sample small enough for CI. At the
    # shipped thresholds the FMR stays under its target on every setting, and the hard
    # setting's FNMR stays at or under what the matcher reached (a floor against regressions:
    # the targets of FNMR 5% / 10% there are not met yet; the figures are in the README).
    import random

    assert not set(calibrate.CALIBRATION_SEEDS) & {0, 1, 2, 3}
    fnmr: dict[str, tuple[float, float]] = {}
    for name, setting in difficulty.SETTINGS.items():
        ds = difficulty.make_dataset(16, 3, seed=1, d=setting)
        f = [[matcher.extract(encode_minutiae(i)) for i in row] for row in ds.impressions]
        genuine = [matcher.compare(r[a], r[b]) for r in f for a, b in ((0, 1), (0, 2), (1, 2))]
        rng = random.Random(f"test-shipped:{name}")
        impostor = []
        for _ in range(500):
            x, y = rng.sample(range(16), 2)
            impostor.append(matcher.compare(f[x][rng.randrange(3)], f[y][rng.randrange(3)]))
        for threshold, target in ((THRESHOLD_FMR_1PCT, 1e-2), (THRESHOLD_FMR_01PCT, 1e-3)):
            # Not over its target with confidence: 500 comparisons of 16 fingers scatter
            # (at an FMR of exactly 1% a sample holds 6 false matches or more 38% of the
            # time), so the sample's 95% Wilson interval must reach down to the target. A
            # threshold far too low (a wrong constant) still fails: 10 false matches of
            # 500 at FMR 1%, 2 at 0.1%.
            false = sum(s >= threshold for s in impostor)
            assert det.wilson_interval(false, len(impostor))[0] <= target, (name, false)
        n = len(genuine)
        fnmr[name] = (
            sum(s < THRESHOLD_FMR_1PCT for s in genuine) / n,
            sum(s < THRESHOLD_FMR_01PCT for s in genuine) / n,
        )
    assert fnmr["easy"] == (0.0, 0.0)
    assert fnmr["medium"][1] <= 0.05
    assert fnmr["hard"][0] <= HARD_FNMR_FLOOR[0] and fnmr["hard"][1] <= HARD_FNMR_FLOOR[1]
