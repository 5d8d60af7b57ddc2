"""Sparse threat: the adversary may change at most ``k`` pixels, each to any value inside the bounds.

``ft.L0(k)`` counts pixels, not coordinates: for images ``(N, C, H, W)`` a pixel is changed when any
of its ``C`` channels changes (the few-pixel attack of Su, Vargas & Sakurai 2019 sets whole pixels);
for any other shape ``(N, F...)`` every coordinate is its own pixel. ``eps`` is the pixel count ``k``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.threat.base import Threat, register_threat
from fortify.types import Bounds, FortifyError


def pixel_magnitude(delta: Tensor) -> Tensor:
    """Per-pixel squared change: ``(N, H*W)`` for images ``(N, C, H, W)``, else ``(N, numel/N)``."""
    if delta.dim() == 4:
        return delta.pow(2).sum(dim=1).flatten(1)
    return delta.pow(2).flatten(1)


def _pixel_mask_to_shape(mask: Tensor, like: Tensor) -> Tensor:
    """Expand a per-pixel mask ``(N, P)`` back to ``like``'s shape."""
    if like.dim() == 4:
        n, c, h, w = like.shape
        return mask.reshape(n, 1, h, w).expand(n, c, h, w)
    return mask.reshape(like.shape)


@register_threat
class L0(Threat):
    """At most ``pixels`` changed pixels per sample (``eps`` is that count, an integer >= 0).

    ``project`` keeps the ``pixels`` pixels whose change is largest (squared change summed over
    channels) and resets the others to the clean input; ``ascent_direction`` keeps the sign of the
    gradient on the ``pixels`` pixels where it is largest; a random start sets ``pixels`` random pixels
    to uniform values inside the bounds.

    >>> x_adv = ft.attacks.OnePixel()(clf, x, y, ft.L0(1))
    """

    norm = "l0"

    def __init__(self, pixels: float) -> None:
        super().__init__(pixels)
        if self.eps != int(self.eps):
            raise FortifyError(f"L0 counts pixels: eps must be a whole number, got {pixels!r}")
        self.pixels = int(self.eps)

    def __repr__(self) -> str:
        return f"L0({self.pixels})"

    def norm_of(self, delta: Tensor) -> Tensor:
        return (pixel_magnitude(delta) > 0).sum(dim=1).to(delta.dtype)

    def _top_pixels(self, magnitude: Tensor) -> Tensor:
        """Per-pixel mask ``(N, P)`` of the ``pixels`` largest entries of ``magnitude`` that are non-zero."""
        k = min(self.pixels, magnitude.shape[1])
        mask = torch.zeros_like(magnitude, dtype=torch.bool)
        if k:
            top = magnitude.topk(k, dim=1).indices
            mask.scatter_(1, top, True)
        return mask & (magnitude > 0)

    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        delta = x_adv - x
        mask = _pixel_mask_to_shape(self._top_pixels(pixel_magnitude(delta)), delta)
        return torch.where(mask, x_adv, x)

    def ascent_direction(self, grad: Tensor) -> Tensor:
        mask = _pixel_mask_to_shape(self._top_pixels(pixel_magnitude(grad)), grad)
        return torch.where(mask, grad.sign(), torch.zeros_like(grad))

    def _random_mask(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        pixels = pixel_magnitude(x).shape[1]
        scores = torch.rand((x.shape[0], pixels), generator=generator, device=x.device)
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask.scatter_(1, scores.argsort(dim=1)[:, : min(self.pixels, pixels)], True)
        return _pixel_mask_to_shape(mask, x)

    def random_delta(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Uniform changes in ``[-1, 1]`` on ``pixels`` random pixels (``random_start`` uses the bounds)."""
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1
        return torch.where(self._random_mask(x, generator), u, torch.zeros_like(u))

    def random_start(self, x: Tensor, bounds: Bounds, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        values = bounds[0] + (bounds[1] - bounds[0]) * u
        return torch.where(self._random_mask(x, generator), values, x)
