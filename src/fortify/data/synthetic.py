"""Seeded synthetic image sets for tests and examples: tiny, learnable, no files needed."""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.types import FortifyError


def make_synthetic(
    n: int = 512,
    *,
    num_classes: int = 4,
    shape: tuple[int, ...] = (1, 8, 8),
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """``n`` images of ``shape`` in [0, 1], ``num_classes`` classes, each a fixed random prototype plus noise.

    The prototypes depend only on ``seed`` and the shape, so train and test sets drawn with different
    ``seed`` offsets (see ``fortify.data.load``) share their classes. Classes are balanced.
    """
    if n < 1 or num_classes < 2:
        raise FortifyError(f"need n >= 1 and num_classes >= 2, got n={n}, num_classes={num_classes}")
    protos = torch.rand((num_classes, *shape), generator=torch.Generator().manual_seed(1_000 + num_classes))
    protos = (protos > 0.5).float() * 0.6 + 0.2
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=gen)]
    x = protos[y] + noise * torch.randn((n, *shape), generator=gen)
    return x.clamp(0.0, 1.0), y
