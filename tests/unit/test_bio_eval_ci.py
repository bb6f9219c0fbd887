"""The FMR's interval clustered by finger (`det.clustered_fmr`) and its place in
`cardemu bio eval`'s report and JSON (issue 24: FNMR/FMR with confidence intervals)."""

from __future__ import annotations

import json
import random

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from host.bio import det
from host.bio.eval import EvalConfig, pairs, report, run
from host.cli import cli

FINGERS = 60
N = 10000


def _fingers(seed: int) -> list[tuple[int, int]]:
    rng = random.Random(f"fingers:{seed}")
    return [(a, b) for a, b in (rng.sample(range(FINGERS), 2) for _ in range(N))]


def test_independent_comparisons_have_design_effect_about_1() -> None:
    # 10,000 comparisons of 60 fingers, each a false match with probability 1 % on its own.
    deffs = []
    for seed in range(5):
        rng = random.Random(f"scores:{seed}")
        scores = [int(rng.random() < 0.01) for _ in range(N)]
        c = det.clustered_fmr(scores, _fingers(seed), 1)
        assert c.plain == det.wilson_interval(c.errors, N)
        deffs.append(c.design_effect)
        if c.design_effect == 1.0:
            assert c.interval == c.plain  # the same formula on the same count
    assert sum(deffs) / len(deffs) < 1.4  # the finger jackknife alone gives about 2


def test_false_matches_of_one_finger_pair_widen_the_interval() -> None:
    fingers = _fingers(0)
    # 20 false matches: all from fingers 0 and 1, or one each from 20 disjoint pairs.
    clumped = [(0, 1) if c < 20 else f for c, f in enumerate(fingers)]
    spread = [(2 * c, 2 * c + 1) if c < 20 else f for c, f in enumerate(fingers)]
    scores = [1] * 20 + [0] * (N - 20)
    one = det.clustered_fmr(scores, clumped, 1)
    many = det.clustered_fmr(scores, spread, 1)
    assert one.rate == many.rate == 0.002 and one.plain == many.plain
    assert one.design_effect > 10 and many.design_effect < 2
    assert one.interval[1] > 3 * one.plain[1]
    assert one.interval[0] < one.plain[0] / 3
    assert one.interval[1] > many.interval[1] >= many.plain[1]


def test_clustered_interval_is_monotone_in_the_threshold() -> None:
    # Scores 0..99; finger 7 (a wolf) is in most of the high ones.
    rng = random.Random("wolf")
    fingers = _fingers(1)
    scores = [rng.randrange(100) for _ in range(N)]
    wolfish = [(7, b if b != 7 else 8) if s >= 95 and rng.random() < 0.6 else (a, b)
               for s, (a, b) in zip(scores, fingers, strict=True)]  # fmt: skip
    last = None
    for t in range(80, 101):
        c = det.clustered_fmr(scores, wolfish, t)
        assert c.interval[0] <= c.rate <= c.interval[1]
        if last is not None:
            assert c.errors <= last.errors
            assert c.interval[1] <= last.interval[1]
        last = c
    assert det.clustered_fmr(scores, wolfish, 97).design_effect > 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 9), st.integers(0, 9)),
        min_size=1,
        max_size=300,
    ),
    st.integers(0, 21),
)
def test_clustered_interval_contains_the_plain_one(
    rows: list[tuple[int, int, int]], threshold: int
) -> None:
    scores = [s for s, _, _ in rows]
    fingers = [(a, b) for _, a, b in rows]
    c = det.clustered_fmr(scores, fingers, threshold)
    assert c.errors == sum(s >= threshold for s in scores)
    assert c.design_effect >= 1.0
    assert c.interval[0] <= c.plain[0] + 1e-12 and c.plain[1] <= c.interval[1] + 1e-12
    assert c.interval[0] <= c.rate <= c.interval[1]


def test_eval_reports_the_clustered_interval_in_text_and_json() -> None:
    cfg = EvalConfig(
        fingers=12, impressions=3, seed=1, impostors=400, apdu_sample=4, bozorth=False,
        setting="easy",
    )  # fmt: skip
    result = run(cfg)
    assert set(result.clustered) == {"card", *result.shipped}
    _, impostor = pairs(cfg.fingers, cfg.impressions, cfg.impostors, cfg.seed)
    fingers = [(a, b) for a, _, b, _ in impostor]
    for name, (thr, fmr, _) in result.shipped.items():
        want = det.clustered_fmr(result.ours.impostor, fingers, thr)
        assert result.clustered[name] == want and want.rate == fmr
    text = "\n".join(report(result))
    c = result.clustered["fmr_1pct"]
    assert (
        f"FMR {100 * c.rate:.2f}% [{100 * c.plain[0]:.2f}-{100 * c.plain[1]:.2f}%], "
        f"clustered by finger [{100 * c.interval[0]:.2f}-{100 * c.interval[1]:.2f}%] "
        f"(design effect {c.design_effect:.1f})"
    ) in text
    assert "clustered by finger: the FMR's over the impostor comparisons divided by" in text
    args = ["bio", "eval", "--setting", "easy", "--fingers", "12", "--impressions", "3",
            "--impostors", "400", "--seed", "1", "--no-bozorth", "--apdu-sample", "4"]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code in (0, 1), res.output
    assert "clustered by finger [" in res.output and "(design effect " in res.output
    js = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    shipped = js["shipped_thresholds"]["fmr_1pct"]
    assert shipped["fmr"] == c.rate  # existing keys unchanged
    assert shipped["fmr_ci95_clustered"] == list(c.interval)
    assert shipped["fmr_design_effect"] == c.design_effect
    assert shipped["fmr_false_matches"] == c.errors and shipped["fmr_fingers"] == 12
    card = js["card_threshold"]
    assert {"fmr", "fmr_ci95", "fnmr", "fnmr_ci95", "fmr_ci95_clustered"} <= set(card)
    assert card["fmr_design_effect"] == result.clustered["card"].design_effect
