"""Carlini & Wagner L2 attack (Carlini & Wagner, "Towards Evaluating the Robustness of Neural
Networks", IEEE S&P 2017, arXiv:1608.04644).

Minimises ``||delta||_2^2 + c * f(x + delta)`` with Adam, where ``f = max(Z_y - max_{i!=y} Z_i, -kappa)``
(untargeted; targeted ``max(max_{i!=t} Z_i - Z_t, -kappa)``) on the logits ``Z``, and binary-searches the
constant ``c`` per sample: halve the interval after a success, multiply ``c`` by 10 until the first one.

Box constraint: instead of the paper's tanh change of variables, each Adam step is followed by clipping
``x + delta`` into the bounds (the "projected gradient descent" box method the paper also describes).
In tanh space a pixel at exactly 0 or 1 sits where the gradient vanishes and can never move; here it
can, which matters on data such as Fashion-MNIST where about half the pixels are exactly 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fortify._validate import positive_float, positive_int
from fortify.attacks.base import input_gradient, is_success
from fortify.attacks.minimal import MinNormAttack
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.threat.base import per_sample

_BETA1, _BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8


def logit_margin(logits: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """Per-sample margin that is <= 0 exactly when the attack succeeds (ties aside).

    Untargeted: ``Z_y - max_{i!=y} Z_i``; targeted: ``max_{i!=t} Z_i - Z_t``. Infinite logits are clipped.
    """
    z = torch.nan_to_num(logits, nan=0.0, posinf=1e30, neginf=-1e30)
    z_y = z.gather(1, y[:, None]).squeeze(1)
    z_other = z.scatter(1, y[:, None], -math.inf).amax(dim=1)
    return z_other - z_y if targeted else z_y - z_other


class CW(MinNormAttack):
    """C&W L2: minimum-L2 adversarial examples by Adam on the C&W objective, binary search over ``c``.

    Distance: L2 (a minimum-norm attack: see ``min_norm``; with ``ft.L2(eps)`` the result is projected
    into the ball).
    Arguments (keyword-only):
      ``steps`` (100) Adam steps per constant; ``binary_search_steps`` (5) constants tried per sample;
      ``initial_const`` (1.0) the first ``c``; ``confidence`` (0.0) the margin ``kappa`` required;
      ``lr`` (0.01) Adam learning rate; ``abort_early`` (True) stop a constant's optimisation when the
      total objective has not fallen by 0.01% over the last ``steps // 10`` steps; ``targeted``, ``seed``.
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.CW(steps=100)(clf, x, y, ft.L2(1.0))
    >>> d = ft.attacks.CW().min_norm(clf, x, y, "l2").distances
    """

    name = "cw"
    norms = ("l2",)

    def __init__(
        self,
        *,
        steps: int = 100,
        binary_search_steps: int = 5,
        initial_const: float = 1.0,
        confidence: float = 0.0,
        lr: float = 0.01,
        abort_early: bool = True,
        targeted: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        self.steps = positive_int("steps", steps)
        self.binary_search_steps = positive_int("binary_search_steps", binary_search_steps)
        self.initial_const = positive_float("initial_const", initial_const)
        self.confidence = positive_float("confidence", confidence, allow_zero=True)
        self.lr = positive_float("lr", lr)
        self.abort_early = bool(abort_early)

    def _search(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        n = x.shape[0]
        const = torch.full((n,), self.initial_const, device=x.device, dtype=x.dtype)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, math.inf)
        best_adv, best_l2 = x.clone(), torch.full_like(const, math.inf)
        for _ in range(self.binary_search_steps):
            adv, l2 = self._optimise(clf, x, y, const)
            ok = torch.isfinite(l2)
            better = l2 < best_l2
            best_adv = torch.where(per_sample(better, x), adv, best_adv)
            best_l2 = torch.minimum(l2, best_l2)
            upper = torch.where(ok, torch.minimum(upper, const), upper)
            lower = torch.where(ok, lower, torch.maximum(lower, const))
            const = torch.where(torch.isfinite(upper), (lower + upper) / 2, const * 10)
        return best_adv

    def _optimise(self, clf: Classifier, x: Tensor, y: Tensor, const: Tensor) -> tuple[Tensor, Tensor]:
        """Adam on the objective for fixed constants: (smallest successful point, its L2 or inf)."""
        low, high = clf.bounds
        delta = torch.zeros_like(x)
        m, v = torch.zeros_like(x), torch.zeros_like(x)
        best_adv, best_l2 = x.clone(), torch.full_like(const, math.inf)
        check_every = max(self.steps // 10, 1)
        previous = math.inf
        for t in range(1, self.steps + 1):
            delta.requires_grad_(True)
            logits = clf(x + delta)
            margin = logit_margin(logits, y, self.targeted)
            squared = delta.flatten(1).pow(2).sum(dim=1)
            objective = squared + const * (margin + self.confidence).clamp_min(0)
            grad = input_gradient(objective, delta)
            with torch.no_grad():
                delta = delta.detach()
                l2 = squared.detach().sqrt()
                success = is_success(logits, y, self.targeted) & (margin <= -self.confidence)
                better = success & (l2 < best_l2)
                best_adv = torch.where(per_sample(better, x), x + delta, best_adv)
                best_l2 = torch.where(better, l2, best_l2)
                m.mul_(_BETA1).add_(grad, alpha=1 - _BETA1)
                v.mul_(_BETA2).addcmul_(grad, grad, value=1 - _BETA2)
                m_hat, v_hat = m / (1 - _BETA1**t), v / (1 - _BETA2**t)
                delta = (x + delta - self.lr * m_hat / (v_hat.sqrt() + _ADAM_EPS)).clamp(low, high) - x
                if self.abort_early and t % check_every == 0:
                    total = float(objective.detach().sum())
                    if total > previous * 0.9999:
                        break
                    previous = total
        return best_adv, best_l2
