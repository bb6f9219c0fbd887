"""Offline training of the on-card score: a logistic regression on a comparison's evidence.

The matcher (`applets.biometric.matcher`) turns one comparison into an
`Evidence` record (pairs made, their summed weight W, the minutiae each
template has inside the other's area, their local similarity, type agreement,
residuals, the area they cover, how the seeds' consolidations agree) and
`matcher.score_features` into a short feature vector. The score is a fixed
linear function of those features: the log-likelihood ratio of "same finger"
against "different fingers" as a logistic regression estimates it, mapped onto
0..SCORE_MAX. This is the score normalisation production matchers do (a
learned fusion of match statistics instead of a hand-made formula), and a card
can afford it: one dot product of a few numbers with constants.

The constants (`matcher.SCORE_COEFFICIENTS`) come from here, fitted on
`host.bio.difficulty` data of every setting on `TRAINING_SEEDS`, which are
neither calibration seeds (`host.bio.calibrate.CALIBRATION_SEEDS`, where the
thresholds are set) nor evaluation seeds (0..3). The fit is Newton's method
(iteratively reweighted least squares) with a small ridge penalty, in pure
Python: a few thousand genuine and some tens of thousands of impostor
comparisons, `FEATURES` columns. Genuine and impostor comparisons weigh the
same in total (the rates are measured per class), and each setting weighs the
same.

Reproduce with `cardemu bio train` (prints the constants to paste into the
matcher), then `cardemu bio calibrate` for the thresholds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from applets.biometric import matcher
from applets.biometric.iso19794 import encode_minutiae
from host.bio import difficulty

TRAINING_SEEDS = tuple(range(5001, 5011))
DEFAULT_FINGERS = 60
DEFAULT_IMPRESSIONS = 4
DEFAULT_IMPOSTORS = 3000
RIDGE = 1e-3  # the ridge penalty on the coefficients (not the intercept), per sample weight
TAIL_ROUNDS = 4  # fits, each reweighting the comparisons near the tail of the previous one
TAIL_SHARE = 0.004  # the impostor quantile (per setting, the highest) the tail is placed at
TAIL_MARGIN = 1.0  # log-odds: impostors scoring above the tail minus this ...
TAIL_MARGIN_GENUINE = 1.5  # ... and hard genuine comparisons this close to it
TAIL_BOOST = 10.0  # how much more those weigh


@dataclass(frozen=True)
class Sample:
    """One comparison: its setting and seed, whether it is genuine, its evidence."""

    setting: str
    seed: int
    genuine: bool
    evidence: matcher.Evidence | None


def collect(
    setting: str,
    seed: int,
    fingers: int = DEFAULT_FINGERS,
    impressions: int = DEFAULT_IMPRESSIONS,
    impostors: int = DEFAULT_IMPOSTORS,
) -> list[Sample]:
    """Every genuine pair of a seeded dataset and a seeded sample of impostor pairs."""
    ds = difficulty.make_dataset(fingers, impressions, seed, difficulty.SETTINGS[setting])
    feats = [[matcher.extract(encode_minutiae(i)) for i in f] for f in ds.impressions]
    out = [
        Sample(setting, seed, True, matcher.evidence(feats[f][i], feats[f][j]))
        for f in range(fingers)
        for i in range(impressions)
        for j in range(i + 1, impressions)
    ]
    rng = random.Random(f"training:{setting}:{seed}")
    chosen: set[tuple[int, int, int, int]] = set()
    limit = fingers * (fingers - 1) * impressions * impressions
    while len(chosen) < min(impostors, limit):
        a, b = rng.sample(range(fingers), 2)
        chosen.add((a, rng.randrange(impressions), b, rng.randrange(impressions)))
    out += [
        Sample(setting, seed, False, matcher.evidence(feats[a][i], feats[b][j]))
        for a, i, b, j in sorted(chosen)
    ]
    return out


def fit(
    rows: Sequence[Sequence[float]],
    labels: Sequence[bool],
    weights: Sequence[float],
    ridge: float = RIDGE,
    iterations: int = 30,
) -> list[float]:
    """Weighted logistic regression by Newton's method: [intercept, coefficients...]."""
    d = len(rows[0]) + 1
    xs = [(1.0, *r) for r in rows]
    beta = [0.0] * d
    total = sum(weights)
    for _ in range(iterations):
        grad = [0.0] * d
        hess = [[0.0] * d for _ in range(d)]
        for x, y, w in zip(xs, labels, weights, strict=True):
            z = sum(b * v for b, v in zip(beta, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0
            g = w * ((1.0 if y else 0.0) - p)
            h = w * p * (1.0 - p)
            for a in range(d):
                grad[a] += g * x[a]
                xa = h * x[a]
                row = hess[a]
                for b in range(a, d):
                    row[b] += xa * x[b]
        for a in range(1, d):
            grad[a] -= ridge * total * beta[a]
            hess[a][a] += ridge * total
        for a in range(d):
            for b in range(a):
                hess[a][b] = hess[b][a]
        step = _solve(hess, grad)
        beta = [b + s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < 1e-9:
            break
    return beta


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a x = b by Gaussian elimination with partial pivoting (a is small)."""
    n = len(b)
    m = [row[:] + [v] for row, v in zip(a, b, strict=True)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        piv = m[c][c]
        if abs(piv) < 1e-300:
            continue
        for r in range(c + 1, n):
            f = m[r][c] / piv
            if f:
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    x = [0.0] * n
    for c in range(n - 1, -1, -1):
        piv = m[c][c]
        s = m[c][n] - sum(m[c][k] * x[k] for k in range(c + 1, n))
        x[c] = s / piv if abs(piv) >= 1e-300 else 0.0
    return x


def train(
    samples: Sequence[Sample],
    ridge: float = RIDGE,
    features: Callable[[matcher.Evidence], Sequence[float]] = matcher.score_features,
    rounds: int = TAIL_ROUNDS,
) -> list[float]:
    """[intercept, coefficients...] of the score's logistic regression, from `samples`.

    Features are standardised for the fit and the standardisation is folded
    back into the returned coefficients, which apply to the raw features. The
    thresholds sit far in the impostor tail (FMR 1 % and 0.1 %, the highest over
    the settings), where a plain fit, driven by the bulk of easy comparisons, is
    not at its best; so after each fit the impostors scoring above the highest
    `TAIL_SHARE` quantile over the settings less `TAIL_MARGIN`, and the hard
    setting's genuine comparisons within `TAIL_MARGIN_GENUINE` of it, weigh
    `TAIL_BOOST` times more in the next one (`rounds` fits in all).
    """
    usable = [s for s in samples if s.evidence is not None]
    rows = [features(s.evidence) for s in usable if s.evidence is not None]
    labels = [s.genuine for s in usable]
    # each (setting, class) weighs the same in total
    counts: dict[tuple[str, bool], int] = {}
    for s in usable:
        counts[(s.setting, s.genuine)] = counts.get((s.setting, s.genuine), 0) + 1
    base = [1.0 / counts[(s.setting, s.genuine)] for s in usable]
    n, d = len(rows), len(rows[0])
    mean = [sum(r[k] for r in rows) / n for k in range(d)]
    sd = [math.sqrt(sum((r[k] - mean[k]) ** 2 for r in rows) / n) or 1.0 for k in range(d)]
    z = [[(r[k] - mean[k]) / sd[k] for k in range(d)] for r in rows]
    settings = sorted({s.setting for s in usable})
    weights = base
    beta = [0.0] * (d + 1)
    for _ in range(rounds):
        beta = fit(z, labels, weights, ridge)
        scores = [beta[0] + sum(b * v for b, v in zip(beta[1:], r, strict=True)) for r in z]
        tail = max(
            sorted(scores[k] for k in range(n) if not labels[k] and usable[k].setting == st)[
                -max(1, int(TAIL_SHARE * counts[(st, False)]))
            ]
            for st in settings
            if (st, False) in counts
        )
        near = [
            scores[k] >= tail - TAIL_MARGIN
            if not labels[k]
            else usable[k].setting == "hard" and abs(scores[k] - tail) < TAIL_MARGIN_GENUINE
            for k in range(n)
        ]
        weights = [b * TAIL_BOOST if f else b for b, f in zip(base, near, strict=True)]
    coef = [beta[k + 1] / sd[k] for k in range(d)]
    intercept = beta[0] - sum(c * m for c, m in zip(coef, mean, strict=True))
    return [intercept, *coef]


def gather(
    seeds: Sequence[int] = TRAINING_SEEDS,
    settings: Sequence[str] = ("easy", "medium", "hard"),
    fingers: int = DEFAULT_FINGERS,
    impressions: int = DEFAULT_IMPRESSIONS,
    impostors: int = DEFAULT_IMPOSTORS,
    progress: Callable[[str], None] | None = None,
) -> list[Sample]:
    """`collect` over every (setting, seed)."""
    out: list[Sample] = []
    for setting in settings:
        for seed in seeds:
            out += collect(setting, seed, fingers, impressions, impostors)
            if progress is not None:
                progress(f"{setting} seed {seed}: {len(out)} comparisons")
    return out
