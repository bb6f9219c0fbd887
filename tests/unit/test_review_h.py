"""Review H: reproducers (strict xfail) for the runtime / ISD-R fixes and the pooled matcher.

Each test states what the code or its docstring promises and fails today; when the defect
is fixed the test passes and its xfail must go.
"""

from __future__ import annotations

import pytest

from applets.biometric import matcher
from applets.biometric.iso19794 import encode_minutiae
from host.bio import difficulty

UNDEFINED_ERROR = 127


@pytest.mark.xfail(
    strict=True,
    reason="review H: with GLOBAL_POOL 1 a template against itself need not score "
    "SCORE_MAX: the growings from different seeds pair the whole template but reach "
    "different significances (1.0 for one, 0.922 for five), and their mean is < 1",
)
def test_a_generator_template_against_itself_scores_score_max() -> None:
    """`matcher._pooled`'s docstring: 'a template against itself (every seed growing the
    whole template) still scores SCORE_MAX'. Hard setting, seed 1, finger 32, impression 0
    (25 minutiae, a valid enrolment: the applet's minimum is 12): 9670 pooled, 10000 with
    the best growing's score (GLOBAL_POOL 0). 1 of 720 generator templates so."""
    ds = difficulty.make_dataset(60, 2, seed=1, d=difficulty.HARD)
    t = matcher.extract(encode_minutiae(ds.impressions[32][0]))
    assert len(t) == 25
    assert matcher.compare(t, t) == matcher.SCORE_MAX
