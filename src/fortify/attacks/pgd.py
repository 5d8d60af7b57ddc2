"""Projected Gradient Descent (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
Attacks", ICLR 2018, arXiv:1706.06083).

Iterated steepest ascent on the cross-entropy loss under the threat's norm, projected back into the
ball and the bounds after every step, from a uniformly random start in the ball, with restarts.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify._validate import positive_int
from fortify.attacks.base import Attack, attack_loss, confirm_success, input_gradient, is_success
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.types import FortifyError


class PGD(Attack):
    """PGD with random start and restarts, for any threat (Linf, L2).

    Arguments (keyword-only):
      ``steps`` (40) iterations per restart;
      ``step_size`` absolute step, or ``rel_stepsize`` step as a fraction of eps (default ``2.5 / steps``,
      Madry et al.'s choice, so the steps can cross the ball 2.5 times; one object serves every eps);
      ``restarts`` (1) independent random starts, the first success kept per sample;
      ``random_start`` (True) start uniformly in the ball, else at ``x``;
      ``early_stop`` (True) stop working on a sample as soon as it is misclassified (cheaper; set False to
      get the last iterate of every sample, as adversarial training wants);
      ``targeted``, ``seed``, ``precision`` (``fp32`` | ``bf16``) as for every attack (``Attack``).
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.PGD(steps=40)(clf, x, y, ft.Linf(0.1))
    """

    name = "pgd"
    supports_precision = True

    def __init__(
        self,
        *,
        steps: int = 40,
        step_size: float | None = None,
        rel_stepsize: float | None = None,
        restarts: int = 1,
        random_start: bool = True,
        early_stop: bool = True,
        targeted: bool = False,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, precision=precision)
        self.steps = positive_int("steps", steps)
        self.restarts = positive_int("restarts", restarts)
        if step_size is not None and rel_stepsize is not None:
            raise FortifyError("give step_size or rel_stepsize, not both")
        for label, value in (("step_size", step_size), ("rel_stepsize", rel_stepsize)):
            if value is not None and not value > 0:
                raise FortifyError(f"{label} must be > 0, got {value!r}")
        self.step_size = step_size
        self.rel_stepsize = rel_stepsize
        self.random_start = bool(random_start)
        self.early_stop = bool(early_stop)

    def step_for(self, threat: Threat) -> float:
        if self.step_size is not None:
            return self.step_size
        rel = self.rel_stepsize if self.rel_stepsize is not None else 2.5 / self.steps
        return rel * threat.eps

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        if self.restarts == 1:
            # nothing to choose between: skip the forward pass that ranks restarts (the caller checks anyway)
            return self._one_run(clf, x, y, threat, generator)[0]
        best = x.clone()
        best_loss = torch.full((x.shape[0],), -torch.inf, device=x.device, dtype=x.dtype)
        todo = torch.arange(x.shape[0], device=x.device)
        for _ in range(self.restarts):
            x_run, found = self._one_run(clf, x[todo], y[todo], threat, generator)
            with torch.no_grad():
                logits = clf(x_run)
                found |= is_success(logits, y[todo], self.targeted)
                loss = attack_loss(logits, y[todo], self.targeted)
            better = found | (loss > best_loss[todo])
            best[todo[better]] = x_run[better]
            best_loss[todo[better]] = loss[better]
            todo = todo[~found]
            if todo.numel() == 0:
                break
        return best

    def _one_run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """One restart: the points (first successful iterate, else the last) and which succeeded so far."""
        step = self.step_for(threat)
        low, high = clf.bounds
        x_adv = threat.random_start(x, clf.bounds, generator) if self.random_start else x.clone()
        result = x_adv.clone()
        found = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        live = torch.arange(x.shape[0], device=x.device)
        x0, y0 = x, y
        for _ in range(self.steps):
            x_var = x_adv.requires_grad_(True)
            logits = clf(x_var)
            grad = input_gradient(attack_loss(logits, y0, self.targeted), x_var)
            with torch.no_grad():
                if self.early_stop:
                    hit = confirm_success(
                        clf, x_adv, is_success(logits, y0, self.targeted), y0, self.targeted
                    )
                    if bool(hit.any()):
                        result[live[hit]] = x_adv[hit].detach()
                        found[live[hit]] = True
                        keep = ~hit
                        live, x0, y0 = live[keep], x0[keep], y0[keep]
                        x_adv, grad = x_adv[keep], grad[keep]
                        if live.numel() == 0:
                            return result, found
                x_adv = x_adv.detach() + step * threat.ascent_direction(grad)
                x_adv = threat.project(x_adv, x0).clamp_(low, high)
        result[live] = x_adv.detach()
        return result, found
