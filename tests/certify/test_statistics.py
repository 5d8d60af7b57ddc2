"""The confidence bound, the binomial test and the radius formula on their own."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, norm

from fortify.certify import binomial_pvalue, certified_radius, lower_confidence_bound, max_certifiable_radius


def test_lower_bound_covers_the_true_proportion_in_at_least_1_minus_alpha_of_trials() -> None:
    rng = np.random.default_rng(0)
    trials, n, alpha = 2000, 100, 0.05
    for p in (0.6, 0.9, 0.99):
        misses = sum(lower_confidence_bound(int(k), n, alpha) > p for k in rng.binomial(n, p, trials))
        assert misses <= binom.ppf(0.999, trials, alpha), (p, misses)


def test_lower_bound_is_exact_at_the_extremes_and_grows_with_successes() -> None:
    assert lower_confidence_bound(0, 50, 0.01) == 0.0
    assert lower_confidence_bound(50, 50, 0.01) == pytest.approx(0.01 ** (1 / 50))
    bounds = [lower_confidence_bound(k, 50, 0.01) for k in range(51)]
    assert bounds == sorted(bounds)
    assert all(b < max(k, 1) / 50 for k, b in enumerate(bounds))


def test_binomial_pvalue_is_one_for_a_tie_and_exact_for_a_sweep() -> None:
    assert binomial_pvalue(7, 7) == 1.0
    assert binomial_pvalue(0, 0) == 1.0
    assert binomial_pvalue(10, 0) == pytest.approx(2 * 0.5**10)


def test_radius_is_sigma_times_inverse_normal_and_zero_without_a_majority() -> None:
    assert certified_radius(0.5, float(norm.cdf(1.0))) == pytest.approx(0.5)
    assert certified_radius(0.5, 0.5) == 0.0
    assert certified_radius(0.5, 0.3) == 0.0
    assert max_certifiable_radius(1.0, 1000, 0.001) == pytest.approx(norm.ppf(math.pow(0.001, 1 / 1000)))
