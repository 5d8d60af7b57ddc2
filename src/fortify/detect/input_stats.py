"""Statistics of the input itself: the entropy of image regions and the share of values at the bounds.

Production teams watch inputs for patches of unusual entropy (flat, saturated regions; noisy,
high-entropy ones) and for pixels pushed to the ends of the range, which Linf attacks and adversarial
patches tend to produce. ``InputStatistics`` computes, per input, four features: the mean, lowest and
highest entropy of its ``patch x patch`` regions and the fraction of its values within ``1/255`` of a
bound; ``fit`` records their mean and standard deviation on clean data, and the score is the largest
absolute z-score of the four. It reads no model.

Approximation: region entropies come from a *soft* histogram (each value spread over ``bins`` bins by
a Gaussian kernel of one bin's width) so that the score has a useful gradient and adaptive attacks can
aim at it; the share at the bounds is a smooth count (a steep sigmoid of the distance to the bound).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._validate import integer
from fortify.detect.base import Detector
from fortify.types import Bounds, FortifyError

FEATURES = ("mean_patch_entropy", "min_patch_entropy", "max_patch_entropy", "at_bounds")
_AT_BOUND = 1.0 / 255.0


class InputStatistics(Detector):
    """Largest ``|z|`` of four input statistics against clean data; ``(N,)``. Images ``(N, C, H, W)``.

    ``patch`` (4): region side in pixels (regions tile the image; the last partial ones are dropped);
    ``bins`` (16): histogram bins over the bounds. ``bounds`` default to ``[0, 1]`` (``ft.Guard`` sets
    its classifier's). Needs ``fit`` (``calibrate`` does it on half of the clean set).
    """

    name = "input-stats"
    fits = True

    def __init__(self, *, patch: int = 4, bins: int = 16, bounds: Bounds = (0.0, 1.0)) -> None:
        super().__init__()
        self.patch, self.bins = integer("patch", patch, low=2), integer("bins", bins, low=2)
        self.bounds: Bounds = (float(bounds[0]), float(bounds[1]))
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("std", torch.empty(0))

    def bind(self, clf: object) -> InputStatistics:
        self.bounds = getattr(clf, "bounds", self.bounds)
        return self

    def statistics(self, x: Tensor) -> Tensor:
        """The four features ``(N, 4)`` in the order of ``FEATURES``."""
        if x.dim() != 4 or x.shape[2] < self.patch or x.shape[3] < self.patch:
            raise FortifyError(
                f"InputStatistics reads images (N, C, H, W) of at least {self.patch}x{self.patch}, "
                f"got {tuple(x.shape)}"
            )
        low, high = self.bounds
        u = ((x - low) / (high - low)).clamp(0, 1)
        regions = F.unfold(u, kernel_size=self.patch, stride=self.patch)  # (N, C*p*p, R)
        centres = (torch.arange(self.bins, dtype=u.dtype, device=u.device) + 0.5) / self.bins
        width = 1.0 / self.bins
        weights = torch.exp(-0.5 * ((regions[..., None] - centres) / width) ** 2)  # (N, P, R, B)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        hist = weights.mean(dim=1)  # (N, R, B)
        entropy = -(hist * hist.clamp_min(1e-12).log()).sum(dim=-1) / math.log(self.bins)
        sharp = 4.0 / _AT_BOUND
        near = torch.sigmoid(sharp * (_AT_BOUND - u)) + torch.sigmoid(sharp * (u - 1 + _AT_BOUND))
        at_bounds = near.flatten(1).mean(dim=1)
        return torch.stack([entropy.mean(1), entropy.amin(1), entropy.amax(1), at_bounds], dim=1)

    @torch.no_grad()
    def fit(self, x: Tensor, y: Tensor | None = None) -> None:
        stats = torch.cat([self.statistics(chunk) for chunk in x.split(512)]).double()
        self.mean = stats.mean(dim=0).float()
        self.std = stats.std(dim=0).clamp_min(1e-6).float()

    def forward(self, x: Tensor) -> Tensor:
        if self.mean.numel() == 0:
            raise FortifyError("InputStatistics is not fitted: call .calibrate(x_clean) (or .fit(x)) first")
        z = (self.statistics(x) - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return z.abs().amax(dim=1)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "patch": self.patch, "bins": self.bins, "features": list(FEATURES)}
