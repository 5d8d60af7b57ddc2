"""Backdoor triggers: a patch stamped into a corner, or a pattern blended over the whole image.

Both map images ``(N, C, H, W)`` in ``bounds`` to images of the same shape in ``bounds``:

- ``PatchTrigger(size)``: a ``size x size`` checkerboard of the two bounds in the bottom-right corner
  (BadNets' pixel pattern, Gu, Dolan-Gavitt & Garg 2017, arXiv:1708.06733).
- ``BlendTrigger(alpha)``: ``(1 - alpha) * x + alpha * pattern`` with a fixed random pattern drawn from
  ``seed`` (the blended-injection attack of Chen et al. 2017, arXiv:1712.05526).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify._validate import positive_int
from fortify.types import Bounds, FortifyError


class PatchTrigger:
    """A ``size x size`` checkerboard of ``low`` and ``high`` in the bottom-right corner."""

    def __init__(self, size: int = 3, bounds: Bounds = (0.0, 1.0)) -> None:
        self.size = positive_int("size", size)
        self.bounds = bounds

    def __call__(self, x: Tensor) -> Tensor:
        _check_images(x)
        h, w = x.shape[-2:]
        if self.size > min(h, w):
            raise FortifyError(f"a {self.size}x{self.size} trigger does not fit {h}x{w} images")
        low, high = self.bounds
        rows = torch.arange(self.size, device=x.device)
        board = ((rows[:, None] + rows[None, :]) % 2 == 0).to(x.dtype) * (high - low) + low
        out = x.clone()
        out[..., h - self.size :, w - self.size :] = board
        return out

    def describe(self) -> dict[str, object]:
        return {"trigger": "patch", "size": self.size}


class BlendTrigger:
    """``(1 - alpha) * x + alpha * pattern``, ``pattern`` uniform in the bounds, fixed by ``seed``."""

    def __init__(self, alpha: float = 0.1, *, seed: int = 0, bounds: Bounds = (0.0, 1.0)) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
            raise FortifyError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
        self.alpha, self.seed, self.bounds = float(alpha), seed, bounds

    def __call__(self, x: Tensor) -> Tensor:
        _check_images(x)
        low, high = self.bounds
        generator = torch.Generator().manual_seed(self.seed)
        pattern = torch.rand(x.shape[1:], generator=generator, dtype=torch.float32) * (high - low) + low
        return ((1 - self.alpha) * x + self.alpha * pattern.to(x)).clamp(low, high)

    def describe(self) -> dict[str, object]:
        return {"trigger": "blend", "alpha": self.alpha, "seed": self.seed}


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise FortifyError(f"triggers are stamped on images (N, C, H, W), got {shape}")
