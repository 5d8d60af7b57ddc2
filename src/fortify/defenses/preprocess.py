"""Input preprocessing defenses: modules applied to inputs before the classifier.

Every component is an ``nn.Module`` mapping a batch ``(N, ...)`` in ``bounds`` to a batch of the same
shape in ``bounds`` and declares two flags that adaptive evaluation reads (Athalye, Carlini & Wagner,
"Obfuscated Gradients Give a False Sense of Security", ICML 2018):

- ``differentiable``: its autograd gradient is informative. When False (rounding, quantisation),
  gradients through ``forward`` are zero or meaningless, and an attack must use BPDA: replace the
  component by a differentiable approximation on the backward pass. ``straight_through(x)`` does that
  with the identity approximation (forward value of the component, gradient of the identity), which is
  sound for components that keep ``g(x) ~ x``, as all of these do. (``fortify.evaluation.adaptive``
  applies the same identity approximation to any component marked non-differentiable.)
- ``randomized``: each call draws fresh randomness (from torch's global generator, so a seeded run is
  reproducible); an attack must average gradients over draws (EOT).

Components know the classifier's input ``bounds`` (default ``[0, 1]``; ``defend`` sets them from the
classifier) and work on inputs rescaled to ``[0, 1]`` where a pixel scale matters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fortify._validate import integer, number
from fortify.types import Bounds, FortifyError


class Preprocessor(nn.Module):
    """Base class: subclasses implement ``forward`` and set ``differentiable`` / ``randomized``."""

    differentiable: bool = True
    randomized: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.bounds: Bounds = (0.0, 1.0)

    def straight_through(self, x: Tensor) -> Tensor:
        """The component's output on the forward pass, the identity's gradient on the backward (BPDA)."""
        return x + (self(x) - x).detach()

    def describe(self) -> dict[str, object]:
        """JSON-ready description: name, flags and hyperparameters (recorded in results)."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "training"}
        return {"name": type(self).__name__, **params}

    def _unit(self, x: Tensor) -> Tensor:
        low, high = self.bounds
        return (x - low) / (high - low)

    def _from_unit(self, u: Tensor) -> Tensor:
        low, high = self.bounds
        return u.clamp(0.0, 1.0) * (high - low) + low


class BitDepth(Preprocessor):
    """Reduce every coordinate to ``bits`` bits (Xu, Evans & Qi, "Feature Squeezing", NDSS 2018).

    ``round(u * (2**bits - 1)) / (2**bits - 1)`` on inputs rescaled to ``[0, 1]``. Not differentiable
    (zero gradient almost everywhere): attack it with BPDA (``straight_through``).
    """

    differentiable = False

    def __init__(self, bits: int = 4) -> None:
        super().__init__()
        self.bits = integer("bits", bits, low=1, high=16)

    def forward(self, x: Tensor) -> Tensor:
        levels = 2**self.bits - 1
        return self._from_unit(torch.round(self._unit(x) * levels) / levels)


class MedianFilter(Preprocessor):
    """Median over a ``size x size`` window of each channel, reflect-padded (Xu et al., NDSS 2018).

    Inputs ``(N, C, H, W)``. Differentiable almost everywhere: the gradient flows to the pixel that is the
    median, so plain gradient attacks apply (Athalye et al. 2018 attack it directly or with BPDA).
    For even sizes the lower median is used, as ``torch.median`` does.
    """

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = integer("size", size, low=1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise FortifyError(f"MedianFilter takes images (N, C, H, W), got shape {tuple(x.shape)}")
        if self.size == 1:
            return x
        before = (self.size - 1) // 2
        after = self.size - 1 - before
        mode = "reflect" if min(x.shape[-2:]) > max(before, after) else "replicate"
        padded = F.pad(x, (before, after, before, after), mode=mode)
        windows = padded.unfold(2, self.size, 1).unfold(3, self.size, 1)  # (N, C, H, W, k, k)
        return windows.flatten(-2).median(dim=-1).values


class GaussianNoise(Preprocessor):
    """Add ``N(0, sigma^2)`` noise (in ``[0, 1]`` units of the bounds) and clip into the bounds.

    Randomized: evaluate it with EOT. Differentiable (the noise is additive).
    """

    randomized = True

    def __init__(self, sigma: float = 0.1) -> None:
        super().__init__()
        self.sigma = number("sigma", sigma, low=0)

    def forward(self, x: Tensor) -> Tensor:
        noise = torch.randn_like(x) * self.sigma
        return self._from_unit(self._unit(x) + noise)
