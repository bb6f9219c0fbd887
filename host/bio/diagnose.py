"""Where the matcher loses genuine pairs: each stage of `matcher.compare` against the truth.

`host.bio.difficulty.make_labelled_impression` gives the master index of every
minutia, so for two impressions of a finger the true pairs are known. For the
genuine comparisons of a setting that score under a threshold, this counts, stage by
stage (`matcher.Trace`): the true minutiae the two share; whether a true pair is
among the local-similarity candidates and among the `MAX_PAIRS` pairs chosen for the
relaxation, whether it kept weight there, whether a consolidation seed was true; and
how many true pairs the best consolidation made, missed, and how many false ones it
made. Each rejected pair is put in the first stage that failed it.

Run: `python -m host.bio.diagnose --setting hard --seeds 1 2 3 --threshold 449`.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from dataclasses import dataclass

from applets.biometric import matcher
from applets.biometric.applet import THRESHOLD_FMR_1PCT
from applets.biometric.iso19794 import encode_minutiae
from host.bio import difficulty

#: fewer true minutiae in common than this is the floor no matcher can be blamed for
FLOOR = 6
STAGES = (
    "shared < 6 (floor)",
    "no true pair among the candidates",
    "no true pair chosen for the relaxation",
    "no true pair kept weight in the relaxation",
    "no consolidation seed true",
    "true seed, score under the threshold",
)


@dataclass(frozen=True)
class PairStats:
    """One genuine comparison against its truth."""

    score: int
    shared: int  # true minutiae in common
    candidate_true: int  # true pairs among the local-similarity candidates
    chosen_true: int  # ... among the pairs chosen for the relaxation
    kept_true: int  # ... that kept a positive relaxed weight
    chosen: int
    seed_true: int  # consolidation seeds that are true pairs
    seeds: int
    found: int  # true pairs of the best consolidation
    false: int  # its false pairs
    local: float
    glob: float

    @property
    def stage(self) -> str:
        """The first stage that lost the pair (for a rejected one)."""
        checks = (
            self.shared >= FLOOR,
            self.candidate_true > 0,
            self.chosen_true > 0,
            self.kept_true > 0,
            self.seed_true > 0,
        )
        for name, ok in zip(STAGES, checks, strict=False):
            if not ok:
                return name
        return STAGES[-1]


def analyse(setting: str, seed: int, fingers: int, impressions: int) -> list[PairStats]:
    """Every genuine comparison of one (setting, seed), traced stage by stage."""
    d = difficulty.SETTINGS[setting]
    out = []
    for f in range(fingers):
        finger = difficulty.make_finger(seed, f, d)
        imps = [difficulty.make_labelled_impression(finger, seed, k, d) for k in range(impressions)]
        feats = [matcher.extract(encode_minutiae(m for m, _ in imp)) for imp in imps]
        labels = [[lab for _, lab in imp][: matcher.MAX_MINUTIAE] for imp in imps]
        for a in range(impressions):
            for b in range(a + 1, impressions):
                out.append(_one(feats[a], feats[b], labels[a], labels[b]))
    return out


def _one(ref: matcher.Features, probe: matcher.Features, la: list[int], lb: list[int]) -> PairStats:
    t = matcher.Trace()
    score = matcher.compare(ref, probe, t)
    truth = {(i, j) for i, x in enumerate(la) for j, y in enumerate(lb) if x >= 0 and x == y}
    shared = len(truth)
    kept = [c for c, w in zip(t.chosen, t.relaxed, strict=True) if w > 0.0]
    return PairStats(
        score=score,
        shared=shared,
        candidate_true=sum((i, j) in truth for _, i, j in t.candidates),
        chosen_true=sum((i, j) in truth for _, i, j in t.chosen),
        kept_true=sum((i, j) in truth for _, i, j in kept),
        chosen=len(t.chosen),
        seed_true=sum(p in truth for p in t.seeds),
        seeds=len(t.seeds),
        found=sum(p in truth for p in t.paired),
        false=sum(p not in truth for p in t.paired),
        local=t.local,
        glob=t.glob,
    )


def _summary(rows: list[PairStats], title: str) -> list[str]:
    if not rows:
        return [f"{title}: none"]

    def med(key: str) -> float:
        return statistics.median(getattr(r, key) for r in rows)

    return [
        f"{title}: {len(rows)}",
        f"  median true shared {med('shared'):.0f}; chosen {med('chosen'):.0f} of which true "
        f"{med('chosen_true'):.0f}, kept weight {med('kept_true'):.0f}; seeds true "
        f"{med('seed_true'):.0f} of {med('seeds'):.0f}",
        f"  consolidation: true pairs found {med('found'):.0f} (missed "
        f"{statistics.median(r.shared - r.found for r in rows):.0f}), false {med('false'):.0f};"
        f" local {med('local'):.2f}, global {med('glob'):.3f}",
    ]


def report(rows: list[PairStats], threshold: int) -> list[str]:
    """The rejected pairs by the stage that lost them, and rejected vs accepted medians."""
    rejected = [r for r in rows if r.score < threshold]
    lines = [f"genuine {len(rows)}, rejected at {threshold}: {len(rejected)}"]
    stages = Counter(r.stage for r in rejected)
    for name in STAGES:
        lines.append(f"  {stages[name]:4d}  {name}")
    lines += _summary(rejected, "rejected")
    lines += _summary([r for r in rows if r.score >= threshold], "accepted")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setting", default="hard", choices=sorted(difficulty.SETTINGS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--fingers", type=int, default=60)
    ap.add_argument("--impressions", type=int, default=4)
    ap.add_argument("--threshold", type=int, default=THRESHOLD_FMR_1PCT)
    a = ap.parse_args(argv)
    rows = [r for s in a.seeds for r in analyse(a.setting, s, a.fingers, a.impressions)]
    print("\n".join(report(rows, a.threshold)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
