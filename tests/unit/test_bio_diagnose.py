"""The stage-by-stage diagnostic of the matcher against the generator's ground truth."""

from __future__ import annotations

from applets.biometric import matcher
from applets.biometric.iso19794 import encode_minutiae
from host.bio import diagnose, difficulty


def test_trace_does_not_change_the_score() -> None:
    ds = difficulty.make_dataset(2, 2, seed=5)
    f = [[matcher.extract(encode_minutiae(i)) for i in row] for row in ds.impressions]
    for a, b in ((f[0][0], f[0][1]), (f[0][0], f[1][1])):
        t = matcher.Trace()
        assert matcher.compare(a, b, t) == matcher.compare(a, b)
        assert t.seeds and t.paired and len(t.relaxed) == len(t.chosen)
        assert len({i for i, _ in t.paired}) == len(t.paired)  # one-to-one
        assert len({j for _, j in t.paired}) == len(t.paired)


def test_easy_pairs_are_found_whole_and_hard_ones_are_counted() -> None:
    easy = diagnose.analyse("easy", 1, 3, 2)
    assert len(easy) == 3
    for r in easy:  # no noise, no distortion: every shared minutia paired, none false
        assert r.shared >= diagnose.FLOOR and r.found >= r.shared - 1 and r.false <= 1
        assert r.seed_true == r.seeds
    hard = diagnose.analyse("hard", 1, 4, 3)
    assert len(hard) == 12
    for r in hard:
        assert 0 <= r.found <= r.shared and r.chosen_true <= r.candidate_true <= r.shared
        assert r.kept_true <= r.chosen_true and r.seed_true <= r.seeds
    lines = diagnose.report(hard, 10001)  # every pair rejected: each in one stage
    assert lines[0] == "genuine 12, rejected at 10001: 12"
    assert sum(int(line.split()[0]) for line in lines[1 : 1 + len(diagnose.STAGES)]) == 12
