"""The statistics of randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019, arXiv:1902.02918).

Three small functions that turn counts of noisy predictions into decisions:

- ``binomial_pvalue``: the two-sided binomial test behind PREDICT (is the top class really ahead?);
- ``lower_confidence_bound``: the one-sided Clopper–Pearson lower bound on ``pA`` behind CERTIFY;
- ``certified_radius``: ``sigma * Phi^-1(pA_lower)``, the L2 radius of Theorem 1 with ``pB = 1 - pA``.
"""

from __future__ import annotations

import math

from scipy.stats import beta, binomtest, norm


def binomial_pvalue(count_a: int, count_b: int) -> float:
    """Two-sided p-value of ``count_a`` successes in ``count_a + count_b`` fair coin flips.

    PREDICT abstains unless this is at most ``alpha``: the top two classes then differ with confidence.
    Equal counts give 1.0 (always abstain); no counts at all also give 1.0.
    """
    total = count_a + count_b
    if total == 0:
        return 1.0
    return float(binomtest(count_a, total, 0.5).pvalue)


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """One-sided ``(1 - alpha)`` Clopper–Pearson lower bound on a binomial proportion.

    With probability at least ``1 - alpha`` over the draws, the true proportion is at least this value.
    It is the ``alpha`` quantile of ``Beta(successes, trials - successes + 1)``; 0.0 when there is no
    success.
    """
    if successes <= 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def certified_radius(sigma: float, p_lower: float) -> float:
    """The L2 radius ``sigma * Phi^-1(p_lower)``, certified when ``p_lower > 1/2`` (else 0.0)."""
    if p_lower <= 0.5:
        return 0.0
    return float(sigma * norm.ppf(p_lower))


def max_certifiable_radius(sigma: float, n: int, alpha: float) -> float:
    """The largest radius ``n`` estimation samples can ever certify: every draw votes for the top class.

    ``sigma * Phi^-1(alpha ** (1 / n))`` — e.g. about 2.46 sigma at n = 1,000, alpha = 0.001.
    """
    return certified_radius(sigma, math.pow(alpha, 1.0 / n))
