"""TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, "Theoretically Principled Trade-off between
Robustness and Accuracy", ICML 2019, arXiv:1901.08573).

Loss per batch: ``CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x'))``, where ``x'`` maximises the
KL term inside the ball (projected steepest ascent from ``x + 0.001 * N(0, I)``, as in the paper's code).
``beta`` trades clean accuracy (small) for robustness (large; the paper uses 6).

Why not ``fortify.attacks.PGD`` for the inner step: the attack contract is label-based (cross-entropy
to ``y``, samples already misclassified left alone, points worse than clean reverted), and TRADES'
inner objective is the label-free KL to the clean prediction, which must move every sample. The loop
below uses the threat's own hooks (``ascent_direction``, ``clip``) and the attacks' ``frozen`` weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._validate import integer, positive_number
from fortify.attacks.base import frozen, input_gradient
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.training.methods import StepContext, attacking, register_method, require_threat

START_SCALE = 0.001


def _kl(clean_logits: Tensor, adv_logits: Tensor) -> Tensor:
    """Per-sample KL(softmax clean || softmax adv)."""
    return F.kl_div(
        adv_logits.log_softmax(1), clean_logits.log_softmax(1), log_target=True, reduction="none"
    ).sum(1)


def kl_ascent(
    clf: Classifier, x: Tensor, threat: Threat, steps: int, step: float, generator: torch.Generator
) -> Tensor:
    """Points in the ball around ``x`` (and the bounds) that maximise the KL to the clean prediction."""
    with frozen(clf), torch.enable_grad():
        with torch.no_grad():
            clean = clf(x)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = threat.clip(x + START_SCALE * noise, x, clf.bounds)
        for _ in range(steps):
            x_var = x_adv.detach().requires_grad_(True)
            grad = input_gradient(_kl(clean, clf(x_var)), x_var)
            x_adv = threat.clip(x_var.detach() + step * threat.ascent_direction(grad), x, clf.bounds)
    return x_adv.detach()


@register_method("trades")
class TradesTraining:
    """TRADES with ``beta`` (6.0), ``steps`` (10) KL-ascent iterations, ``rel_stepsize`` (``2.5 / steps``).

    >>> ft.train(clf, (x, y), method="trades", threat=ft.Linf(0.1), beta=6.0, epochs=5)
    """

    name = "trades"

    def __init__(self, *, beta: float = 6.0, steps: int = 10, rel_stepsize: float | None = None) -> None:
        integer("steps", steps, low=1)
        self.beta = positive_number("beta", beta)
        self.steps = steps
        self.rel_stepsize = positive_number(
            "rel_stepsize", rel_stepsize if rel_stepsize is not None else 2.5 / steps
        )

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        threat = require_threat(ctx, self.name)
        if threat.eps == 0:
            return F.cross_entropy(clf(x), y)
        with attacking(clf, ctx):
            x_adv = kl_ascent(
                clf, x.detach(), threat, self.steps, self.rel_stepsize * threat.eps, ctx.generator
            )
        logits = clf(x)
        return F.cross_entropy(logits, y) + self.beta * _kl(logits, clf(x_adv)).mean()
