"""The matcher's impostor tails per difficulty setting, and what the highest costs the hard one.

The shipped thresholds are the highest setting's (`host.bio.calibrate`), so a matcher
change is judged by the hard setting's FNMR at the HIGHEST of the three settings'
empirical thresholds, not at its own: a change that lifts the easy setting's impostor
tail costs the hard setting's holders even when the hard DET improves. This is the
quick measure used while tuning (issue 24; the matcher's docstring quotes it); it has
no confidence margin, so it is not a calibration.

    python -m host.bio.tails                      # tuning seeds 11-13, 4,000 impostors a seed
    python -m host.bio.tails FILL_EXP=1.5 --seeds 14 15 16   # knobs before --seeds

`NAME=VALUE` arguments set module constants of `applets.biometric.matcher` for the run
(a knob's effect without editing the file). Figures depend on nothing else: the
generator and the pairs are seeded. The figures the matcher's docstring quotes were
taken with the quantile one comparison further down the order than
`calibrate.threshold_for`, which this uses, so they sit a point or three higher (tuning
seeds, easy: 166 / 256 there, 165 / 253 here).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from applets.biometric import matcher
from applets.biometric.iso19794 import encode_minutiae
from host.bio import calibrate, difficulty
from host.bio import eval as bio_eval

TARGETS = (1e-2, 1e-3)


@dataclass(frozen=True)
class Tails:
    """Per setting, the lowest threshold whose FMR is at most each of `TARGETS` (bare
    empirical quantiles), and the hard setting's FNMR at the highest of them."""

    thresholds: dict[str, tuple[int, ...]]
    hard_fnmr: tuple[float, ...]
    impostors: int
    genuine: int


def measure(seeds: Sequence[int] = (11, 12, 13), fingers: int = 60, impostors: int = 4000) -> Tails:
    """Score each setting's impostors (and the hard setting's genuine pairs) on `seeds`."""
    thresholds: dict[str, tuple[int, ...]] = {}
    genuine: list[int] = []
    total = 0
    for name, setting in difficulty.SETTINGS.items():
        scores: list[int] = []
        for seed in seeds:
            ds = difficulty.make_dataset(fingers, 4, seed, setting)
            f = [[matcher.extract(encode_minutiae(i)) for i in row] for row in ds.impressions]
            gen, imp = bio_eval.pairs(fingers, 4, impostors, seed)
            if name == "hard":
                genuine += [matcher.compare(f[a][i], f[b][j]) for a, i, b, j in gen]
            scores += [matcher.compare(f[a][i], f[b][j]) for a, i, b, j in imp]
        total = len(scores)
        thresholds[name] = tuple(calibrate.threshold_for(scores, t) for t in TARGETS)
    top = [max(v[k] for v in thresholds.values()) for k in range(len(TARGETS))]
    fnmr = tuple(sum(1 for g in genuine if g < t) / max(1, len(genuine)) for t in top)
    return Tails(thresholds, fnmr, total, len(genuine))


def _set_knob(assignment: str) -> None:
    name, _, value = assignment.partition("=")
    current = getattr(matcher, name, None)
    if not name.isupper() or not isinstance(current, int | float):
        raise SystemExit(f"not a numeric matcher constant: {name}")
    setattr(matcher, name, int(float(value)) if isinstance(current, int) else float(value))


def apply_knobs(assignments: Sequence[str]) -> None:
    """Set each `NAME=VALUE` matcher constant, then rebuild the cylinder's lookup tables
    (`matcher.build_tables`), which are computed from `NS`, `ND`, `RADIUS`,
    `SPREAD_CELLS`, `SPREAD_GROWTH` and `DIR_TOLERANCE` at import: without the rebuild
    those knobs would silently change nothing."""
    for knob in assignments:
        _set_knob(knob)
    if assignments:
        matcher.build_tables()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m host.bio.tails", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--impostors", type=int, default=4000, help="a seed and setting")
    parser.add_argument("knobs", nargs="*", metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    apply_knobs(args.knobs)
    tails = measure(args.seeds, impostors=args.impostors)
    for name, thr in tails.thresholds.items():
        print(f"{name:7s} {tails.impostors} impostors: FMR 1% at {thr[0]}, FMR 0.1% at {thr[1]}")
    for k, (target, fnmr) in enumerate(zip(TARGETS, tails.hard_fnmr, strict=True)):
        top = max(v[k] for v in tails.thresholds.values())
        print(f"hard FNMR at the highest FMR {100 * target:g}% threshold ({top}): {fnmr:.1%}")


if __name__ == "__main__":
    main()
