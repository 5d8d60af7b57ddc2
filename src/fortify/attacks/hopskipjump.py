"""HopSkipJump (Chen, Jordan & Wainwright, "HopSkipJumpAttack: a query-efficient decision-based attack",
IEEE S&P 2020, arXiv:1904.02144).

Decision-based: only the predicted label is used. From an adversarial starting point (uniform noise,
pulled to the boundary by binary search), each iteration (1) estimates the gradient direction of the
decision function at the boundary point from ``B_t = B_0 sqrt(t)`` random probes of size ``delta_t``
(Monte Carlo with the mean-sign baseline of Eq. 16), (2) steps along it with a geometric step-size
search starting at ``||x_t - x|| / sqrt(t)``, and (3) binary-searches back to the boundary towards the
clean input, to tolerance ``theta`` (``d^{-3/2}`` for L2, ``d^{-2}`` for Linf). ``delta_t`` is
``sqrt(d) theta ||x_t - x||_2`` (L2) or ``d theta ||x_t - x||_inf`` (Linf); the first iteration uses
a tenth of the bounds' range, as the authors' implementation does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from fortify._validate import positive_int
from fortify.attacks.base import Attack, AttackOutput
from fortify.attacks.oracle import Oracle
from fortify.threat import L2, Linf, Threat
from fortify.types import FortifyError

_PROBE_ELEMENTS = 1 << 24
"""At most this many input elements per batch of gradient probes (bounds memory on large inputs)."""
_MAX_HALVINGS = 30


def _distance(delta: Tensor, linf: bool) -> Tensor:
    return delta.abs().amax(dim=1) if linf else delta.norm(dim=1)


@dataclass(frozen=True)
class _Decision:
    """The decision function ``phi``: is a flat point adversarial for the sample it belongs to?"""

    model: Oracle
    y: Tensor
    shape: tuple[int, ...]
    targeted: bool

    def __call__(self, points: Tensor, rows: Tensor) -> Tensor:
        labels = self.model.labels(points.reshape((-1,) + self.shape), rows)
        return labels == self.y[rows] if self.targeted else labels != self.y[rows]


class HopSkipJump(Attack):
    """HopSkipJump, L2 and Linf: decision-based black box with a query budget.

    Arguments (keyword-only):
      ``n_queries`` (5000) budget per sample; a sample starts an iteration only while it has queries
      left and its gradient probes are capped to what is left, so the last iteration can overrun by at
      most one step-size and one binary search (a few dozen queries);
      ``steps`` (50) iterations at most; ``init_evals`` (100) probes ``B_0`` of the first gradient
      estimate, ``max_evals`` (10000) the cap on ``B_t``; ``init_trials`` (100) random draws tried
      for an adversarial starting point (a sample with none is returned unchanged);
      ``targeted`` (``y`` holds targets; a sample starts from the nearest other input of the batch that
      the model labels as its target, else from noise that it does), ``seed``.
    Each sample stops as soon as its adversarial point lies inside the threat's ball.
    Shapes: ``x`` ``(N, ...)`` in the model's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.
    Accepts a ``Classifier`` or any ``BlackBox`` (labels suffice). ``attack(...)`` reports queries.

    >>> x_adv = ft.attacks.HopSkipJump(n_queries=2000)(bb, x, y, ft.L2(1.0))
    """

    name = "hopskipjump"
    requires = "labels"

    def __init__(
        self,
        *,
        n_queries: int = 5000,
        steps: int = 50,
        init_evals: int = 100,
        max_evals: int = 10_000,
        init_trials: int = 100,
        targeted: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        self.n_queries = positive_int("n_queries", n_queries)
        self.steps = positive_int("steps", steps)
        self.init_evals = positive_int("init_evals", init_evals)
        self.max_evals = positive_int("max_evals", max_evals)
        self.init_trials = positive_int("init_trials", init_trials)
        if self.max_evals < self.init_evals:
            raise FortifyError(f"max_evals ({max_evals}) must be >= init_evals ({init_evals})")

    def _run(
        self, model: Oracle, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> AttackOutput:
        if not isinstance(threat, (Linf, L2)):
            raise FortifyError(f"HopSkipJump supports ft.Linf and ft.L2 threats, got {threat!r}")
        linf = isinstance(threat, Linf)
        phi = _Decision(model, y, tuple(x.shape[1:]), self.targeted)
        flat = x.flatten(1)
        d = flat.shape[1]
        theta = d**-2.0 if linf else d**-1.5
        start, found = self._start(phi, flat, generator)
        live = found.nonzero().squeeze(1)
        adv = flat.clone()
        if live.numel():
            adv[live] = self._boundary(phi, flat[live], start[live], live, linf, theta)
        for t in range(1, self.steps + 1):
            dist = _distance(adv[live] - flat[live], linf)
            live = live[(dist > threat.eps) & (model.counts[live] < self.n_queries)]
            if live.numel() == 0:
                break
            dist = _distance(adv[live] - flat[live], linf)
            low, high = model.bounds
            delta = (
                dist * (d * theta if linf else math.sqrt(d) * theta)
                if t > 1
                else (torch.full_like(dist, 0.1 * (high - low)))
            )
            evals = min(int(self.init_evals * math.sqrt(t)), self.max_evals)
            direction = self._gradient(phi, adv[live], live, delta, evals, linf, generator)
            stepped = self._step(phi, adv[live], direction, dist / math.sqrt(t), live)
            adv[live] = self._boundary(phi, flat[live], stepped, live, linf, theta)
        return AttackOutput(adv.reshape(x.shape))

    def _start(self, phi: _Decision, flat: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Adversarial starting points and which samples have one: for a targeted attack the nearest
        other input of the batch that the model labels as the target (one query per sample), then
        uniform noise in the bounds."""
        low, high = phi.model.bounds
        start = flat.clone()
        found = torch.zeros(flat.shape[0], dtype=torch.bool, device=flat.device)
        if phi.targeted and flat.shape[0] > 1:
            labels = phi.model.labels(flat.reshape((-1,) + phi.shape))
            usable = labels[None, :] == phi.y[:, None]
            dist = torch.cdist(flat, flat).masked_fill(~usable, torch.inf)
            found = usable.any(dim=1)
            start[found] = flat[dist.argmin(dim=1)[found]]
        for _ in range(self.init_trials):
            todo = (~found).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            noise = low + (high - low) * torch.rand(
                (todo.numel(), flat.shape[1]), generator=generator, device=flat.device, dtype=flat.dtype
            )
            hit = phi(noise, todo)
            start[todo[hit]] = noise[hit]
            found[todo[hit]] = True
        return start, found

    def _project(self, x: Tensor, x_adv: Tensor, r: Tensor, linf: bool) -> Tensor:
        """The point at fraction ``r`` ``(n,)`` from ``x`` towards ``x_adv``: a blend (L2), or the clip of
        ``x_adv`` into the Linf ball of radius ``r ||x_adv - x||_inf`` (Linf)."""
        if not linf:
            return x + r[:, None] * (x_adv - x)
        radius = r[:, None] * (x_adv - x).abs().amax(dim=1, keepdim=True)
        return torch.minimum(torch.maximum(x_adv, x - radius), x + radius)

    def _boundary(
        self, phi: _Decision, x: Tensor, x_adv: Tensor, rows: Tensor, linf: bool, theta: float
    ) -> Tensor:
        """Binary search on the segment (L2) or radius (Linf) between ``x`` and adversarial ``x_adv`` to
        relative tolerance ``theta``; returns the adversarial end."""
        low = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        high = torch.ones_like(low)
        todo = torch.arange(x.shape[0], device=x.device)
        while todo.numel():
            mid = (low[todo] + high[todo]) / 2
            hit = phi(self._project(x[todo], x_adv[todo], mid, linf), rows[todo])
            high[todo[hit]] = mid[hit]
            low[todo[~hit]] = mid[~hit]
            todo = todo[(high[todo] - low[todo]) > theta]
        return self._project(x, x_adv, high, linf)

    def _gradient(
        self,
        phi: _Decision,
        boundary: Tensor,
        rows: Tensor,
        delta: Tensor,
        evals: int,
        linf: bool,
        generator: torch.Generator,
    ) -> Tensor:
        """Monte Carlo estimate (Eq. 16) of the direction towards the adversarial side, unit-norm (L2)
        or its sign (Linf), ``(n, d)``."""
        low, high = phi.model.bounds
        n, d = boundary.shape
        left = (self.n_queries - phi.model.counts[rows]).clamp_min(2)
        out = torch.zeros_like(boundary)
        chunk = max(1, _PROBE_ELEMENTS // (evals * d))
        for s in range(0, n, chunk):
            part = slice(s, s + chunk)
            m = boundary[part].shape[0]
            if linf:
                u = torch.rand(
                    (m, evals, d), generator=generator, device=boundary.device, dtype=boundary.dtype
                )
                u = 2 * u - 1
            else:
                u = torch.randn(
                    (m, evals, d), generator=generator, device=boundary.device, dtype=boundary.dtype
                )
                u = u / u.norm(dim=2, keepdim=True).clamp_min(1e-12)
            step = delta[part][:, None, None]
            probes = (boundary[part][:, None] + step * u).clamp(low, high)
            u = (probes - boundary[part][:, None]) / step
            used = torch.arange(evals, device=boundary.device)[None, :] < left[part][:, None]
            owner = rows[part][:, None].expand(m, evals)
            hit = phi(probes[used], owner[used])
            sign = torch.zeros((m, evals), device=boundary.device, dtype=boundary.dtype)
            sign[used] = hit.to(boundary.dtype) * 2 - 1
            count = used.sum(dim=1, keepdim=True).to(boundary.dtype)
            mean = sign.sum(dim=1, keepdim=True) / count
            centred = torch.where(mean.abs() == 1, sign, (sign - mean) * used)
            out[part] = (centred[:, :, None] * u).sum(dim=1) / count
        if linf:
            return out.sign()
        return out / out.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def _step(
        self, phi: _Decision, boundary: Tensor, direction: Tensor, size: Tensor, rows: Tensor
    ) -> Tensor:
        """Geometric step-size search: halve ``size`` until ``boundary + size * direction`` is adversarial
        (the boundary point itself when no step works)."""
        low, high = phi.model.bounds
        out = boundary.clone()
        size = size.clone()
        todo = torch.arange(boundary.shape[0], device=boundary.device)
        for _ in range(_MAX_HALVINGS):
            if todo.numel() == 0:
                break
            candidate = (boundary[todo] + size[todo, None] * direction[todo]).clamp(low, high)
            hit = phi(candidate, rows[todo])
            out[todo[hit]] = candidate[hit]
            size[todo] /= 2
            todo = todo[~hit]
        return out
