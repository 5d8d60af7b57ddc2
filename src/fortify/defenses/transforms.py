"""Random geometric transforms as defenses, one affine warp per image, vectorised with ``grid_sample``.

- ``RandomResizePad(max_scale)``: Xie, Wang, Zhang, Ren & Yuille, "Mitigating Adversarial Effects
  Through Randomization", ICLR 2018: resize the image to a random size, pad it at a random offset into a
  larger frame. The model here keeps its input size, so the frame is mapped back to ``H x W``: the image
  is shrunk by a random factor in ``[1 / max_scale, 1]`` and placed at a random offset, the border filled
  with the lower bound (zero padding). Bilinear, so differentiable; randomized (evaluate with EOT).
- ``RandomRotation(degrees)``: rotation by an angle uniform in ``[-degrees, degrees]`` about the
  centre, bilinear, zero padding. Differentiable; randomized.

Randomness comes from torch's global generator (reproducible under a seed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._validate import number
from fortify.defenses.preprocess import Preprocessor
from fortify.types import FortifyError


def _warp(u: Tensor, theta: Tensor) -> Tensor:
    """Apply per-image affine maps ``theta`` ``(N, 2, 3)`` (output -> input coords) to ``u`` in [0, 1]."""
    grid = F.affine_grid(theta, list(u.shape), align_corners=False)
    return F.grid_sample(u, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _check_images(name: str, x: Tensor) -> None:
    if x.dim() != 4:
        raise FortifyError(f"{name} takes images (N, C, H, W), got shape {tuple(x.shape)}")


class RandomResizePad(Preprocessor):
    """Random shrink (factor in ``[1 / max_scale, 1]``) and random placement, per image; see module doc."""

    randomized = True

    def __init__(self, max_scale: float = 1.15) -> None:
        super().__init__()
        self.max_scale = number("max_scale", max_scale, low=1.0, high=4.0)

    def forward(self, x: Tensor) -> Tensor:
        _check_images("RandomResizePad", x)
        n = x.shape[0]
        scale = 1.0 / self.max_scale + (1.0 - 1.0 / self.max_scale) * torch.rand(
            n, device=x.device, dtype=x.dtype
        )
        # the content (size ``scale`` in normalised units) must stay inside the frame: |shift| <= 1 - scale
        shift = (2 * torch.rand(n, 2, device=x.device, dtype=x.dtype) - 1) * (1 - scale).unsqueeze(1)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / scale
        theta[:, :, 2] = -shift / scale.unsqueeze(1)
        return self._from_unit(_warp(self._unit(x), theta))


class RandomRotation(Preprocessor):
    """Rotation by a uniform random angle in ``[-degrees, degrees]`` per image; see module doc."""

    randomized = True

    def __init__(self, degrees: float = 10.0) -> None:
        super().__init__()
        self.degrees = number("degrees", degrees, low=0, high=180)

    def forward(self, x: Tensor) -> Tensor:
        _check_images("RandomRotation", x)
        n = x.shape[0]
        angle = (2 * torch.rand(n, device=x.device, dtype=x.dtype) - 1) * math.radians(self.degrees)
        cos, sin = angle.cos(), angle.sin()
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
        theta[:, 1, 0], theta[:, 1, 1] = sin, cos
        return self._from_unit(_warp(self._unit(x), theta))
