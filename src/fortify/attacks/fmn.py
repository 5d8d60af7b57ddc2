"""Fast Minimum-Norm attack (Pintor, Roli, Brendel & Biggio, "Fast Minimum-norm Adversarial Attacks
through Adaptive Norm Constraints", NeurIPS 2021, arXiv:2102.12827), for L2 and L-infinity.

Normalised gradient steps on the logit margin, each projected onto a ball whose radius ``eps_k`` adapts
per sample: it shrinks by ``(1 - gamma_k)`` (never above the best norm) while the point is adversarial,
grows by ``(1 + gamma_k)`` once an adversarial point has been seen but the current one is not, and before
any success jumps to the linear estimate ``||delta|| + |margin| / ||grad||_dual`` of the boundary's
distance. Step size ``alpha_k`` and factor ``gamma_k`` follow cosine annealing. The smallest adversarial
point seen is returned.

One change to the paper: coordinates that sit at a bound and whose gradient points out of the box are
dropped from the gradient before the step and the boundary estimate. Otherwise the step is spent on
coordinates that clipping then undoes, and the search can stall just short of the boundary.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fortify._validate import fraction, positive_float, positive_int
from fortify.attacks.base import input_gradient, is_success
from fortify.attacks.cw import logit_margin
from fortify.attacks.minimal import MinNormAttack
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.threat.base import TINY, per_sample
from fortify.types import FortifyError


def _cosine(start: float, end: float, k: int, steps: int) -> float:
    return end + (start - end) * (1 + math.cos(math.pi * k / steps)) / 2


def _feasible(grad: Tensor, point: Tensor, low: float, high: float) -> Tensor:
    """The gradient without the coordinates that the bounds block (at a bound and pushing outwards)."""
    blocked = ((point <= low) & (grad < 0)) | ((point >= high) & (grad > 0))
    return grad.masked_fill(blocked, 0.0)


class FMN(MinNormAttack):
    """FMN: minimum-norm adversarial examples in ``steps`` gradient steps, L2 or L-infinity.

    Distance: L2 and Linf (a minimum-norm attack: see ``min_norm``; with a threat of radius eps the
    result is projected into the ball).
    Arguments (keyword-only):
      ``steps`` (100) gradient steps; ``alpha_init`` (1.0) and ``alpha_final`` (``alpha_init / 100``)
      the L2 length of a step, cosine-annealed; ``gamma_init`` (0.05) and ``gamma_final`` (0.001) the
      radius factor, cosine-annealed; ``targeted`` (``y`` are targets), ``seed`` (unused: deterministic).
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> d = ft.attacks.FMN(steps=100).min_norm(clf, x, y, "linf").distances
    """

    name = "fmn"

    def __init__(
        self,
        *,
        steps: int = 100,
        alpha_init: float = 1.0,
        alpha_final: float | None = None,
        gamma_init: float = 0.05,
        gamma_final: float = 0.001,
        targeted: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        self.steps = positive_int("steps", steps)
        self.alpha_init = positive_float("alpha_init", alpha_init)
        if alpha_final is None:
            alpha_final = self.alpha_init / 100
        self.alpha_final = positive_float("alpha_final", alpha_final)
        self.gamma_init = fraction("gamma_init", gamma_init)
        self.gamma_final = fraction("gamma_final", gamma_final)
        if self.gamma_final > self.gamma_init:
            raise FortifyError(f"gamma_final ({gamma_final!r}) must not exceed gamma_init ({gamma_init!r})")

    def _search(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        low, high = clf.bounds
        n = x.shape[0]
        delta = torch.zeros_like(x)
        radius = torch.zeros(n, device=x.device, dtype=x.dtype)
        best_norm = torch.full_like(radius, math.inf)
        best_adv = x.clone()
        worst = threat.norm_of(torch.maximum(x - low, high - x))
        for k in range(self.steps):
            alpha = _cosine(self.alpha_init, self.alpha_final, k, self.steps)
            gamma = _cosine(self.gamma_init, self.gamma_final, k, self.steps)
            delta.requires_grad_(True)
            logits = clf(x + delta)
            margin = logit_margin(logits, y, self.targeted)
            grad = input_gradient(-margin, delta)
            with torch.no_grad():
                delta = delta.detach()
                grad = _feasible(grad, x + delta, low, high)
                size = threat.norm_of(delta)
                adv = is_success(logits, y, self.targeted)
                better = adv & (size < best_norm)
                best_norm = torch.where(better, size, best_norm)
                best_adv = torch.where(per_sample(better, x), x + delta, best_adv)
                seen = torch.isfinite(best_norm)
                to_boundary = margin.detach().abs() / threat.dual_norm(grad).clamp_min(TINY)
                radius = torch.where(
                    adv,
                    torch.minimum(radius * (1 - gamma), best_norm),
                    torch.where(seen, radius * (1 + gamma), size + to_boundary),
                )
                radius = torch.nan_to_num(torch.minimum(radius, worst), nan=0.0)
                # the step is L2-normalised for every norm (the paper's choice); the ball is the threat's
                step = grad / per_sample(grad.flatten(1).norm(p=2, dim=1).clamp_min(TINY), grad)
                delta = threat.project_radius(delta + alpha * step, radius)
                delta = (x + delta).clamp(low, high) - x
        return best_adv
