"""Significance tests: t-test against scipy, randomization/bootstrap properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from jaxrank.eval import (
    bonferroni,
    bootstrap_ci,
    holm,
    paired_t_test,
    randomization_test,
    student_t_sf,
)


@pytest.mark.parametrize("n", [2, 3, 10, 50, 300])
def test_t_test_equals_scipy_ttest_rel(n):
    rng = np.random.default_rng(n)
    a = rng.random(n)
    b = a + rng.normal(0.02, 0.1, n)
    t, p = paired_t_test(a, b)
    ref = scipy.stats.ttest_rel(a, b)
    assert t == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)


@pytest.mark.parametrize("df", [1, 2, 5, 30, 1000])
@pytest.mark.parametrize("t", [-3.0, -0.5, 0.0, 0.7, 2.5, 12.0])
def test_student_t_survival_equals_scipy(t, df):
    assert student_t_sf(t, df) == pytest.approx(scipy.stats.t.sf(t, df), rel=1e-10, abs=1e-300)


def test_zero_variance_gives_nan_like_scipy():
    t, p = paired_t_test([1.0, 2.0], [0.5, 1.5])
    assert np.isnan(t) and np.isnan(p)


def test_randomization_identical_systems_is_not_significant():
    a = np.random.default_rng(0).random(50)
    assert randomization_test(a, a.copy(), trials=999) == 1.0


def test_randomization_p_lower_bound_and_agreement_with_t_test():
    rng = np.random.default_rng(1)
    a = rng.random(40)
    b = a - 0.2 - rng.normal(0, 0.05, 40)  # every difference positive
    # no sign flip pattern reaches |mean| except all-same signs: p = (1 + hits)/(1 + trials)
    assert randomization_test(a, b, trials=999) == pytest.approx(1 / 1000, abs=2 / 1000)
    c = a + rng.normal(0, 0.3, 40)
    p_rand = randomization_test(a, c, trials=20_000)
    p_t = paired_t_test(a, c)[1]
    assert abs(p_rand - p_t) < 0.05  # both test the same null on a large sample


def test_bootstrap_ci_contains_mean_difference():
    rng = np.random.default_rng(2)
    a, b = rng.random(100), rng.random(100)
    lo, hi = bootstrap_ci(a, b, trials=2000)
    assert lo < (a - b).mean() < hi


def test_corrections_hand_computed():
    p = [0.01, 0.04, 0.03, 0.005]
    # Bonferroni: 4 * p capped at 1
    np.testing.assert_allclose(bonferroni(p), [0.04, 0.16, 0.12, 0.02])
    # Holm: sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> cummax 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_t_test([1.0], [2.0])
