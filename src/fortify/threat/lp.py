"""The Lp balls: ``Linf`` (every coordinate moves by at most ``eps``) and ``L2`` (Euclidean length)."""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.threat.base import TINY, Threat, flat, per_sample, register_threat


@register_threat
class Linf(Threat):
    """L-infinity ball: every coordinate may move by at most ``eps``."""

    norm = "linf"

    def norm_of(self, delta: Tensor) -> Tensor:
        return flat(delta).abs().amax(dim=1)

    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        return x + (x_adv - x).clamp(-self.eps, self.eps)

    def ascent_direction(self, grad: Tensor) -> Tensor:
        return grad.sign()

    def dual_norm(self, grad: Tensor) -> Tensor:
        return flat(grad).abs().sum(dim=1)

    def project_radius(self, delta: Tensor, radius: Tensor) -> Tensor:
        r = per_sample(radius, delta)
        return torch.maximum(torch.minimum(delta, r), -r)

    def random_delta(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (2 * u - 1) * self.eps


@register_threat
class L2(Threat):
    """L2 ball: the Euclidean length of the perturbation is at most ``eps``."""

    norm = "l2"

    def norm_of(self, delta: Tensor) -> Tensor:
        return flat(delta).norm(p=2, dim=1)

    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        delta = x_adv - x
        norms = self.norm_of(delta)
        factor = torch.where(norms > self.eps, self.eps / norms.clamp_min(TINY), torch.ones_like(norms))
        return x + delta * per_sample(factor, delta)

    def ascent_direction(self, grad: Tensor) -> Tensor:
        norms = self.norm_of(grad).clamp_min(TINY)
        return grad / per_sample(norms, grad)

    def dual_norm(self, grad: Tensor) -> Tensor:
        return self.norm_of(grad)

    def project_radius(self, delta: Tensor, radius: Tensor) -> Tensor:
        r = per_sample(radius, delta)
        length = per_sample(self.norm_of(delta), delta)
        return delta * torch.where(length > r, r / length.clamp_min(TINY), torch.ones_like(length))

    def random_delta(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, d = x.shape[0], x[0].numel()
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / per_sample(self.norm_of(direction).clamp_min(TINY), direction)
        # radius ~ eps * U^(1/d) makes the point uniform in the d-dimensional ball
        u = torch.rand(n, generator=generator, device=x.device, dtype=x.dtype)
        radius = self.eps * u.pow(1.0 / d)
        return direction * per_sample(radius, direction)
