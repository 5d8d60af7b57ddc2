"""Two-sample drift tests between a reference set and a recent window of feature vectors.

- ``ks_drift``: a Kolmogorov-Smirnov test per feature with a Bonferroni correction (the smallest
  per-feature p-value times the number of features, capped at 1), as Alibi Detect's ``KSDrift``.
- ``mmd_drift``: the maximum mean discrepancy with a Gaussian kernel whose bandwidth is the median
  pairwise distance of the pooled sample (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012), with
  a permutation test for its p-value (``n_permutations`` relabellings of the pooled sample).

Both return a ``DriftTest``: the p-value, the statistic and whether it is below ``p_val``. Large windows
make every small shift significant (an issue users report for Alibi Detect): choose windows of a few
hundred and a reference of similar size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from fortify.types import FortifyError

DEFAULT_P_VAL = 0.05


@dataclass(frozen=True)
class DriftTest:
    """``p_value`` (corrected where there are several features), ``statistic`` and ``drift``."""

    p_value: float
    statistic: float
    drift: bool


def _check(reference: Tensor, window: Tensor) -> tuple[np.ndarray, np.ndarray]:
    if reference.dim() != 2 or window.dim() != 2 or reference.shape[1] != window.shape[1]:
        raise FortifyError(
            f"drift tests compare (n, d) feature sets of equal d, got {tuple(reference.shape)} and "
            f"{tuple(window.shape)}"
        )
    if reference.shape[0] < 2 or window.shape[0] < 2:
        raise FortifyError("drift tests need at least 2 samples on each side")
    return reference.double().cpu().numpy(), window.double().cpu().numpy()


def ks_drift(reference: Tensor, window: Tensor, *, p_val: float = DEFAULT_P_VAL) -> DriftTest:
    """Per-feature two-sample KS tests, Bonferroni-corrected; ``statistic`` is the largest KS distance."""
    ref, win = _check(reference, window)
    result = stats.ks_2samp(ref, win, axis=0)
    p_values = np.atleast_1d(result.pvalue)
    corrected = float(min(1.0, np.nanmin(p_values) * p_values.shape[0]))
    return DriftTest(corrected, float(np.nanmax(np.atleast_1d(result.statistic))), corrected < p_val)


def mmd_drift(
    reference: Tensor,
    window: Tensor,
    *,
    p_val: float = DEFAULT_P_VAL,
    n_permutations: int = 100,
    seed: int = 0,
) -> DriftTest:
    """Biased squared-MMD estimate with a median-heuristic Gaussian kernel and a permutation p-value."""
    ref, win = _check(reference, window)
    pooled = torch.from_numpy(np.concatenate([ref, win]))
    dist2 = torch.cdist(pooled, pooled).pow(2)
    off_diagonal = dist2[~torch.eye(dist2.shape[0], dtype=torch.bool)]
    bandwidth = float(off_diagonal.median().clamp_min(1e-12))
    kernel = torch.exp(-dist2 / bandwidth)
    n = ref.shape[0]

    def mmd(order: Tensor) -> float:
        k = kernel[order][:, order]
        return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())

    observed = mmd(torch.arange(pooled.shape[0]))
    generator = torch.Generator().manual_seed(seed)
    null = [mmd(torch.randperm(pooled.shape[0], generator=generator)) for _ in range(n_permutations)]
    p_value = (1 + sum(v >= observed for v in null)) / (1 + n_permutations)
    return DriftTest(float(p_value), observed, p_value < p_val)
