"""Momentum iterative FGSM and input diversity: attacks that transfer from a surrogate to a black box.

- MI-FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018, arXiv:1710.06081):
  ``g <- mu * g + grad / ||grad||_1``, then a step of ``eps / steps`` along the threat's ascent
  direction of ``g``, projected into the ball and the bounds.
- Input diversity (Xie et al., "Improving Transferability of Adversarial Examples with Input
  Diversity", CVPR 2019, arXiv:1803.06978): with probability ``diversity`` the gradient is taken on a
  randomly resized and padded copy of the input (resized back to the model's input size, since fortify
  models take a fixed shape), which keeps the perturbation from overfitting the surrogate.

Made for transfer: run it on a stolen or substitute white-box model, then judge its points on the victim
(``fortify.audits.extraction.transfer``). No early stop: the last iterate of every sample is returned,
so a point that barely fools the surrogate keeps moving while the steps last.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify import _validate as check
from fortify.attacks.base import Attack, attack_loss, input_gradient
from fortify.model import Classifier
from fortify.threat import Threat

RESIZE_LIMIT = 1 / 0.875  # Xie et al.: resize to [W, W / 0.875), pad to W / 0.875


class MIFGSM(Attack):
    """MI-FGSM with optional input diversity (DI-MI-FGSM).

    Arguments (keyword-only): ``steps`` (10); ``decay`` (1.0, the paper's ``mu``); ``diversity`` (0.0)
    probability of the random resize-and-pad transform per step; ``targeted``, ``seed``.
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds (images ``(N, C, H, W)`` for ``diversity > 0``),
    ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.MIFGSM(steps=10, diversity=0.5)(surrogate, x, y, ft.Linf(0.1))
    """

    name = "mi-fgsm"

    def __init__(
        self,
        *,
        steps: int = 10,
        decay: float = 1.0,
        diversity: float = 0.0,
        targeted: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        self.steps = check.positive_int("steps", steps)
        self.decay = check.number("decay", decay, low=0, finite=True)
        self.diversity = check.number("diversity", diversity, low=0, high=1)

    def config(self) -> dict[str, object]:
        return {"steps": self.steps, "decay": self.decay, "diversity": self.diversity}

    def _diverse(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if (
            self.diversity == 0
            or x.dim() != 4
            or float(torch.rand((), generator=generator)) >= self.diversity
        ):
            return x
        h, w = x.shape[-2:]
        big_h, big_w = math.ceil(h * RESIZE_LIMIT), math.ceil(w * RESIZE_LIMIT)
        size = int(torch.randint(h, big_h, (), generator=generator))
        resized = F.interpolate(x, size=(size, round(size * w / h)), mode="nearest")
        pad_h, pad_w = big_h - resized.shape[-2], max(0, big_w - resized.shape[-1])
        top, left = (int(torch.randint(0, p + 1, (), generator=generator)) for p in (pad_h, pad_w))
        padded = F.pad(resized, (left, pad_w - left, top, pad_h - top))
        return F.interpolate(padded, size=(h, w), mode="bilinear", align_corners=False)

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        step = threat.eps / self.steps
        low, high = clf.bounds
        x_adv, momentum = x.clone(), torch.zeros_like(x)
        for _ in range(self.steps):
            x_var = x_adv.requires_grad_(True)
            grad = input_gradient(attack_loss(clf(self._diverse(x_var, generator)), y, self.targeted), x_var)
            with torch.no_grad():
                norm = grad.abs().flatten(1).sum(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
                momentum = self.decay * momentum + grad / norm
                x_adv = x_adv.detach() + step * threat.ascent_direction(momentum)
                x_adv = threat.project(x_adv, x).clamp_(low, high)
        return x_adv.detach()
