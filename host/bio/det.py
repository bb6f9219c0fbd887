"""Verification error rates from comparison scores, and the DET plot (ISO/IEC 19795-1 §4.6).

Scores are "higher is more similar"; a comparison is a match when its score is
at or above the decision threshold. FMR(t) is the share of impostor scores
>= t, FNMR(t) the share of genuine scores < t. `fnmr_at_fmr` answers the
question the PIV requirement asks: at the lowest threshold whose FMR does not
exceed the target, what is the FNMR? With N impostor comparisons no FMR below
1/N can be told apart from 0: `Rates.resolution` says so, and figures below it
are flagged.

The plot (`plot_det`) uses matplotlib (the `bio` extra). Without it,
`plot_det` raises `PlotUnavailable` with the command to install it; the rest of
this module is plain Python.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed, so no PNG can be drawn."""


@dataclass(frozen=True)
class OperatingPoint:
    target_fmr: float
    threshold: float  # the lowest threshold with FMR <= target
    fmr: float  # the FMR actually reached there
    fnmr: float
    resolved: bool  # False when target_fmr < 1 / impostor comparisons


@dataclass(frozen=True)
class Rates:
    """Error rates of one matcher on one set of comparisons."""

    genuine: int
    impostor: int
    points: tuple[OperatingPoint, ...]
    eer: float
    eer_threshold: float

    @property
    def resolution(self) -> float:
        """The smallest FMR that one false match can show."""
        return 1.0 / self.impostor if self.impostor else math.inf


class SortedScores:
    """Genuine and impostor scores, sorted, for rate queries by threshold."""

    def __init__(self, genuine: Sequence[float], impostor: Sequence[float]) -> None:
        if not genuine or not impostor:
            raise ValueError("need at least one genuine and one impostor score")
        self.g = sorted(genuine)
        self.i = sorted(impostor)

    def fmr(self, t: float) -> float:
        return (len(self.i) - bisect.bisect_left(self.i, t)) / len(self.i)

    def fnmr(self, t: float) -> float:
        return bisect.bisect_left(self.g, t) / len(self.g)

    def thresholds(self) -> list[float]:
        """Every threshold at which a rate changes, plus one above all scores."""
        values = sorted(set(self.g) | set(self.i))
        return values + [values[-1] + 1]


def fnmr_at_fmr(
    genuine: Sequence[float], impostor: Sequence[float], target: float
) -> OperatingPoint:
    """The FNMR at the lowest threshold whose FMR is at most `target`."""
    s = SortedScores(genuine, impostor)
    n = len(s.i)
    # FMR(t) <= target  <=>  at most floor(target * n) impostor scores are >= t.
    allowed = int(math.floor(target * n + 1e-9))
    if allowed >= n:
        t = s.i[0]
    else:
        # The threshold must exceed the (allowed+1)-th highest impostor score.
        t = _next_above(s.i[n - allowed - 1], s)
    return OperatingPoint(target, t, s.fmr(t), s.fnmr(t), target * n >= 1.0)


def _next_above(v: float, s: SortedScores) -> float:
    """The smallest score present in either set that is above v (or v plus a bit)."""
    candidates = []
    k = bisect.bisect_right(s.g, v)
    if k < len(s.g):
        candidates.append(s.g[k])
    k = bisect.bisect_right(s.i, v)
    if k < len(s.i):
        candidates.append(s.i[k])
    if candidates:
        return min(candidates)
    return v + 1 if isinstance(v, int) else math.nextafter(v, math.inf)


def equal_error_rate(genuine: Sequence[float], impostor: Sequence[float]) -> tuple[float, float]:
    """(EER, threshold): where FMR and FNMR cross, the mean of the two at the closest point."""
    s = SortedScores(genuine, impostor)
    best = (math.inf, 0.0, 0.0)
    for t in s.thresholds():
        a, b = s.fmr(t), s.fnmr(t)
        gap = abs(a - b)
        if gap < best[0]:
            best = (gap, (a + b) / 2, t)
    return best[1], best[2]


def rates(
    genuine: Sequence[float],
    impostor: Sequence[float],
    targets: Sequence[float] = (1e-2, 1e-3, 1e-4),
) -> Rates:
    eer, t = equal_error_rate(genuine, impostor)
    points = tuple(fnmr_at_fmr(genuine, impostor, x) for x in targets)
    return Rates(len(genuine), len(impostor), points, eer, t)


def det_curve(genuine: Sequence[float], impostor: Sequence[float]) -> list[tuple[float, float]]:
    """(FMR, FNMR) at every threshold, FMR decreasing."""
    s = SortedScores(genuine, impostor)
    return [(s.fmr(t), s.fnmr(t)) for t in s.thresholds()]


def plot_det(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    path: str,
    *,
    title: str = "DET",
    note: str = "",
) -> None:
    """Draw DET curves (normal-deviate axes, ISO/IEC 19795-1) into a PNG file.

    Args:
        curves: (label, genuine scores, impostor scores) for each matcher.
        path: the PNG file to write.
        title: the plot title.
        note: a line of small print under the plot (the data's provenance).

    Raises:
        PlotUnavailable: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "no DET plot: matplotlib is not installed (pip install 'cardemu[bio]')"
        ) from None
    nd = NormalDist()
    lo, hi = 1e-5, 0.5

    def dev(p: float) -> float:
        return nd.inv_cdf(min(max(p, lo), hi))

    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=100)
    drawn = 0
    for label, genuine, impostor in curves:
        # Points where either rate is 0 lie at minus infinity on these axes.
        pts = [(a, b) for a, b in det_curve(genuine, impostor) if a > 0 and b > 0]
        if not pts:
            label += " (no error at any threshold with both rates > 0)"
        ax.plot([dev(a) for a, _ in pts], [dev(b) for _, b in pts], label=label, linewidth=1.6)
        drawn += 1
    ticks = [1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5]
    labels = ["0.01%", "0.1%", "1%", "5%", "20%", "50%"]
    ax.set_xticks([dev(t) for t in ticks], labels)
    ax.set_yticks([dev(t) for t in ticks], labels)
    ax.set_xlim(dev(lo), dev(hi))
    ax.set_ylim(dev(lo), dev(hi))
    ax.set_xlabel("FMR (false match rate)")
    ax.set_ylabel("FNMR (false non-match rate)")
    ax.set_title(title)
    ax.grid(True, linestyle=":", linewidth=0.6)
    ax.axvline(dev(1e-2), color="grey", linewidth=0.6)
    ax.axhline(dev(1e-2), color="grey", linewidth=0.6)
    if drawn:
        ax.legend(loc="upper right")
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="dimgray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, format="png")
    plt.close(fig)


def wilson_interval(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of an error rate `errors / trials` (ISO/IEC 19795-1 §B.2
    asks for the uncertainty of every rate; Wilson behaves at 0 and at small counts, where
    the normal approximation does not).
    """
    if trials <= 0:
        return 0.0, 1.0
    return wilson_bounds(errors / trials, trials, confidence)


def wilson_bounds(rate: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of `rate` observed over `trials`, which may be an effective,
    fractional count (`clustered_fmr`): `wilson_interval`'s formula on a rate."""
    if trials <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = rate
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    lo = 0.0 if p <= 0 else max(0.0, centre - half)
    hi = 1.0 if p >= 1 else min(1.0, centre + half)
    return lo, hi


def jackknife_variance(
    errors: int, trials: int, group_errors: Sequence[int], group_trials: Sequence[int]
) -> float:
    """The delete-a-group jackknife variance of the rate `errors / trials` of comparisons
    that share groups (ISO/IEC 19795-1 §B.2 leaves the variance estimate open).

    `group_errors[g]` and `group_trials[g]` count the errors and the comparisons that
    involve group g (a comparison of two groups counts in both, once in one): dropping
    group g drops all of them, and the replicate is the rate of the rest. Groups that
    every comparison involves leave no replicate and are skipped.
    """
    rate = errors / trials
    est = [
        (errors - h) / (trials - t)
        for h, t in zip(group_errors, group_trials, strict=True)
        if t < trials
    ]
    mean = sum(est) / len(est) if est else rate
    return (len(est) - 1) / len(est) * sum((e - mean) ** 2 for e in est) if est else 0.0


def design_effect(errors: int, trials: int, variance: float) -> float:
    """The design effect (Kish) of the rate `errors / trials`: `variance` over the binomial
    variance of as many independent trials, at least 1."""
    rate = errors / trials
    var_b = rate * (1 - rate) / trials
    return max(1.0, variance / var_b) if var_b > 0 else 1.0


@dataclass(frozen=True)
class ClusteredRate:
    """An FMR at one threshold with its interval on the effective sample (`clustered_fmr`)."""

    threshold: float
    errors: int  # false matches
    trials: int  # impostor comparisons
    groups: int  # fingers
    design_effect: float
    interval: tuple[float, float]  # Wilson on trials / design_effect
    plain: tuple[float, float]  # Wilson on trials, as if independent

    @property
    def rate(self) -> float:
        return self.errors / self.trials if self.trials else 0.0

    @property
    def effective_trials(self) -> float:
        return self.trials / self.design_effect


def clustered_fmr(
    impostor: Sequence[float],
    fingers: Sequence[tuple[int, int]],
    threshold: float,
    confidence: float = 0.95,
) -> ClusteredRate:
    """The FMR at `threshold` (scores at or above it match) with a Wilson interval on the
    effective sample size n / deff, deff the `design_effect` of the comparisons' fingers.

    `fingers[c]` names the two fingers of impostor comparison c. Impostor comparisons are
    not independent trials: with F fingers, each finger is in about 2n/F of them, and a
    finger whose minutiae resemble many others' (a "wolf") makes many of the false
    matches, so the plain `wilson_interval` over n is too narrow.

    Groups: each finger its own (delete-one-finger jackknife, `jackknife_variance`): the
    finger is the unit the dependence comes from, one threshold costs O(n + F) whatever F,
    and F groups give the variance F - 1 degrees of freedom (60 fingers: 59).
    `host.bio.calibrate` groups fingers mod 25 instead, as it evaluates the jackknife at
    every candidate threshold of 80,000 pooled comparisons. A comparison is in two
    fingers' groups, so the finger jackknife counts its own (independent) variance twice:
    on independent comparisons it gives deff about 2, not 1 (measured: 2.0 over 20 draws
    of 10,000 comparisons of 60 fingers). The variance used is therefore the finger
    jackknife's minus the delete-a-finger-pair one (the pair's comparisons: the variance
    the two finger groups share), the inclusion-exclusion of two-way clustered variances
    (Cameron, Gelbach & Miller 2011; for dyadic data Fafchamps & Gubert 2007). With
    independent comparisons deff is about 1 and the interval the plain one; with a wolf
    it grows (deff 4 makes 10,000 comparisons count as 2,500).
    """
    n = len(impostor)
    if n != len(fingers):
        raise ValueError("one pair of fingers per impostor score")
    index: dict[int, int] = {}  # finger -> group
    pair_index: dict[tuple[int, int], int] = {}  # unordered pair of fingers -> group
    counts: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    touched, hits, pair_touched, pair_hits = counts
    errors = 0
    for score, (a, b) in zip(impostor, fingers, strict=True):
        match = int(score >= threshold)
        errors += match
        for f in (a,) if a == b else (a, b):
            g = index.setdefault(f, len(index))
            if g == len(touched):
                touched.append(0)
                hits.append(0)
            touched[g] += 1
            hits[g] += match
        g = pair_index.setdefault((min(a, b), max(a, b)), len(pair_index))
        if g == len(pair_touched):
            pair_touched.append(0)
            pair_hits.append(0)
        pair_touched[g] += 1
        pair_hits[g] += match
    if n == 0:
        return ClusteredRate(threshold, 0, 0, 0, 1.0, (0.0, 1.0), (0.0, 1.0))
    variance = jackknife_variance(errors, n, hits, touched) - jackknife_variance(
        errors, n, pair_hits, pair_touched
    )
    deff = design_effect(errors, n, variance)
    return ClusteredRate(
        threshold,
        errors,
        n,
        len(index),
        deff,
        wilson_bounds(errors / n, n / deff, confidence),
        wilson_interval(errors, n, confidence),
    )


def fnmr_interval(rate: float, genuine: int, confidence: float = 0.95) -> tuple[float, float]:
    """`wilson_interval` of an FNMR given as a rate over `genuine` comparisons."""
    return wilson_interval(int(round(rate * genuine)), genuine, confidence)
