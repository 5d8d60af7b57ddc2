"""Constraint-aware attack on tabular models: projected gradient ascent inside user-declared constraints.

Every iterate is projected onto the intersection of the ``TabularConstraints`` (immutable, integer and
grid columns, per-column ranges, allowed directions, one-hot groups), the threat's ball and the bounds;
the gradient step moves a continuous relaxation (grids and one-hot groups relaxed) and every step is
judged at its discrete projection, so each returned point satisfies every constraint. White box
(a ``Classifier``): exact input gradients of the cross-entropy, as in PGD (Madry et al. 2018,
arXiv:1706.06083). Black box (a score ``BlackBox``): the gradient of the score margin is estimated with
antithetic Gaussian finite differences (NES, Ilyas et al., ICML 2018, arXiv:1804.08598).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify._validate import choice, positive_float, positive_int
from fortify.attacks.base import Attack, AttackOutput, attack_loss, input_gradient
from fortify.attacks.constraints import TabularConstraints
from fortify.attacks.oracle import Oracle, margin
from fortify.threat import Threat
from fortify.types import FortifyError


class ConstrainedPGD(Attack):
    """PGD for tables that keeps every declared feature constraint; white or black box.

    Arguments (keyword-only):
      ``constraints`` (``TabularConstraints``; default: none beyond the bounds);
      ``steps`` (50); ``rel_stepsize`` (``2.5 / steps``) step as a fraction of eps;
      ``gradient`` (``"auto"``): ``"exact"`` needs a ``Classifier``, ``"estimate"`` uses queries only,
      ``"auto"`` picks exact when the model is a ``Classifier``;
      ``samples`` (20, even) probes per NES estimate and ``sigma`` (0.01) their scale, as a fraction
      of the bounds' range; ``targeted``, ``seed``.
    Threats: ``ft.Linf`` and ``ft.L2``. Each sample stops once its constrained point is misclassified.
    Shapes: ``x`` ``(N, F)`` rows in the model's bounds that satisfy the constraints, ``y`` ``(N,)``.

    >>> rules = ft.attacks.TabularConstraints(30, immutable=[0, 1], directions={5: "+"}, integer=[7])
    >>> x_adv = ft.attacks.ConstrainedPGD(constraints=rules)(clf, x, y, ft.Linf(0.1))
    """

    name = "constrained-pgd"
    requires = "scores"

    def __init__(
        self,
        *,
        constraints: TabularConstraints | None = None,
        steps: int = 50,
        rel_stepsize: float | None = None,
        gradient: str = "auto",
        samples: int = 20,
        sigma: float = 0.01,
        targeted: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        if constraints is not None and not isinstance(constraints, TabularConstraints):
            raise TypeError(f"constraints must be TabularConstraints, got {type(constraints).__name__}")
        self.constraints = constraints
        self.steps = positive_int("steps", steps)
        self.rel_stepsize = (
            2.5 / steps if rel_stepsize is None else positive_float("rel_stepsize", rel_stepsize)
        )
        self.gradient = choice("gradient", gradient, ("auto", "exact", "estimate"))
        self.samples = positive_int("samples", samples)
        if self.samples % 2:
            raise FortifyError(f"samples must be even (antithetic pairs), got {samples}")
        self.sigma = positive_float("sigma", sigma)

    def config(self) -> dict[str, object]:
        out = super().config()
        out["constraints"] = repr(self.constraints)
        return out

    def _run(
        self, model: Oracle, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> AttackOutput:
        rules = self.constraints or TabularConstraints(x[0].numel())
        rules.check(x, model.bounds)
        if self.gradient == "exact" and model.classifier is None:
            raise FortifyError("gradient='exact' needs a white-box Classifier")
        exact = model.classifier is not None and self.gradient != "estimate"
        step = self.rel_stepsize * threat.eps
        relaxed, best = x.clone(), x.clone()
        best_margin = torch.full((x.shape[0],), -torch.inf, device=x.device, dtype=x.dtype)
        live = torch.arange(x.shape[0], device=x.device)
        allowed = self._allowed_signs(rules, x)
        for _ in range(self.steps):
            grad = (
                self._exact(model, relaxed[live], y[live], live)
                if exact
                else (self._estimate(model, relaxed[live], y[live], live, rules, generator))
            )
            grad = torch.where(grad * allowed >= 0, grad, torch.zeros_like(grad)) * rules.mutable(x)
            moved = relaxed[live] + step * threat.ascent_direction(grad)
            relaxed[live] = rules.project(moved, x[live], threat, model.bounds, discrete=False)
            point = rules.project(relaxed[live], x[live], threat, model.bounds)
            value = margin(model.scores(point, live), y[live], self.targeted).to(best_margin.dtype)
            better = value > best_margin[live]
            best[live[better]], best_margin[live[better]] = point[better], value[better]
            live = live[best_margin[live] <= 0]
            if live.numel() == 0:
                break
        return AttackOutput(best)

    @staticmethod
    def _allowed_signs(rules: TabularConstraints, x: Tensor) -> Tensor:
        """``(F,)``: +1 / -1 for columns that may only grow / shrink, 0 where both are allowed."""
        signs = torch.zeros(x.shape[1], device=x.device, dtype=x.dtype)
        for col, sign in rules.directions.items():
            signs[col] = sign
        return signs

    def _exact(self, model: Oracle, x: Tensor, y: Tensor, rows: Tensor) -> Tensor:
        x_var = x.clone().requires_grad_(True)
        return input_gradient(attack_loss(model.differentiable(x_var, rows), y, self.targeted), x_var)

    def _estimate(
        self,
        model: Oracle,
        x: Tensor,
        y: Tensor,
        rows: Tensor,
        rules: TabularConstraints,
        generator: torch.Generator,
    ) -> Tensor:
        """NES estimate ``(n, F)`` of the margin's gradient from ``samples`` antithetic probes."""
        low, high = model.bounds
        n, f = x.shape
        half = self.samples // 2
        sigma = self.sigma * (high - low)
        u = torch.randn((n, half, f), generator=generator, device=x.device, dtype=x.dtype) * rules.mutable(x)
        probes = torch.cat([x[:, None] + sigma * u, x[:, None] - sigma * u], dim=1).clamp(low, high)
        owner = rows.repeat_interleave(self.samples)
        values = margin(
            model.scores(probes.reshape(-1, f), owner), y.repeat_interleave(self.samples), self.targeted
        )
        values = values.reshape(n, self.samples).to(x.dtype)
        diff = values[:, :half] - values[:, half:]
        return (diff[:, :, None] * u).sum(dim=1) / (self.samples * sigma)
