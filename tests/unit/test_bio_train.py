"""The offline training of the on-card score (host.bio.train) and the score it feeds."""

from __future__ import annotations

import math
import random

from applets.biometric import matcher
from host.bio import calibrate, train


def test_training_seeds_are_neither_calibration_nor_evaluation_seeds() -> None:
    assert not set(train.TRAINING_SEEDS) & set(calibrate.CALIBRATION_SEEDS)
    assert not set(train.TRAINING_SEEDS) & {0, 1, 2, 3}


def test_solve_a_small_system() -> None:
    x = train._solve([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]], [3.0, 5.0, 5.0])
    assert all(abs(a - b) < 1e-12 for a, b in zip(x, [1.0, 1.0, 1.0], strict=True))


def test_fit_recovers_a_known_logistic_model() -> None:
    rng = random.Random(3)
    rows, labels = [], []
    for _ in range(3000):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        z = 0.5 + 2.0 * a - 1.0 * b
        rows.append((a, b))
        labels.append(rng.random() < 1 / (1 + math.exp(-z)))
    beta = train.fit(rows, labels, [1.0] * len(rows), ridge=0.0)
    assert abs(beta[0] - 0.5) < 0.2 and abs(beta[1] - 2.0) < 0.3 and abs(beta[2] + 1.0) < 0.2


def test_train_gives_one_constant_per_feature_and_separates() -> None:
    samples = [
        s
        for setting in ("easy", "hard")
        for s in train.collect(setting, 5001, fingers=6, impressions=2, impostors=30)
    ]
    assert sum(s.genuine for s in samples) == 12 and len(samples) == 72
    coef = train.train(samples, rounds=1)
    assert len(coef) == len(matcher.SCORE_COEFFICIENTS)
    assert all(math.isfinite(c) for c in coef)

    def z(ev: matcher.Evidence | None) -> float:
        if ev is None:
            return -math.inf
        feats = matcher.score_features(ev)
        return coef[0] + sum(c * v for c, v in zip(coef[1:], feats, strict=True))

    genuine = sorted(z(s.evidence) for s in samples if s.genuine)
    impostor = sorted(z(s.evidence) for s in samples if not s.genuine)
    assert genuine[len(genuine) // 2] > impostor[-len(impostor) // 10]


def test_shipped_constants_fit_the_features() -> None:
    from applets.biometric.iso19794 import encode_minutiae
    from host.bio import difficulty

    ds = difficulty.make_dataset(2, 2, seed=5002, d=difficulty.MEDIUM)
    f = [[matcher.extract(encode_minutiae(i)) for i in row] for row in ds.impressions]
    ev = matcher.evidence(f[0][0], f[0][1])
    assert ev is not None
    assert len(matcher.score_features(ev)) == len(matcher.SCORE_COEFFICIENTS) - 1
    expected = matcher.SCORE_OFFSET + matcher.SCORE_SCALE * matcher.log_odds(ev)
    assert matcher.compare(f[0][0], f[0][1]) == max(0, min(matcher.SCORE_MAX, round(expected)))
    assert "Evidence of" in repr(ev)  # never the statistics
