"""The thief's query sets: natural images, noise, or perturbed seeds.

- ``"natural"``: the pool as given (in-distribution or public out-of-distribution images: Knockoff's
  setting, whose queries look like any client's).
- ``"noise"``: uniform noise in the bounds (no data at all).
- ``"perturbed"``: a few seed images, each sent again and again with a fresh random sign perturbation of
  ``eps`` (the random synthetic queries PRADA was built against: Juuti et al. 2019's T-RND, in the spirit
  of Papernot et al. 2017's augmentation around seeds). Consecutive queries sit close to an earlier
  one, so PRADA's distance distribution is far from normal.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify import _validate as check
from fortify.types import Bounds, FortifyError

KINDS = ("natural", "noise", "perturbed")


def query_set(
    kind: str,
    pool: Tensor,
    n: int,
    *,
    bounds: Bounds = (0.0, 1.0),
    eps: float = 0.1,
    seeds: int = 10,
    seed: int = 0,
) -> Tensor:
    """``n`` queries ``(n, *pool.shape[1:])`` of ``kind`` (see the module docstring), inside ``bounds``.

    ``pool`` supplies the natural images (its first ``n``) and the seeds (its first ``seeds``); noise only
    uses its shape. Raises ``FortifyError`` for an unknown kind or a pool too small.
    """
    check.integer("n", n, low=1)
    generator = torch.Generator().manual_seed(seed)
    low, high = bounds
    shape = tuple(pool.shape[1:])
    if kind == "natural":
        if pool.shape[0] < n:
            raise FortifyError(f"natural queries: {n} asked, the pool holds {pool.shape[0]}")
        return pool[:n]
    if kind == "noise":
        return low + (high - low) * torch.rand((n, *shape), generator=generator)
    if kind == "perturbed":
        check.integer("seeds", seeds, low=1)
        if pool.shape[0] < seeds:
            raise FortifyError(f"perturbed queries: {seeds} seeds asked, the pool holds {pool.shape[0]}")
        base = pool[:seeds].repeat(-(-n // seeds), *([1] * len(shape)))[:n]  # seed 0, 1, ..., 0, 1, ...
        signs = torch.randint(0, 2, base.shape, generator=generator).to(base.dtype) * 2 - 1
        return (base + eps * (high - low) * signs).clamp(low, high)
    raise FortifyError(f"unknown query set {kind!r}; choose from {', '.join(KINDS)}")
