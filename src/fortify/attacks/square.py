"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, arXiv:1912.00049).

Score-based random search: every iteration changes the perturbation inside one random square window
(side ``s`` set by the schedule of the fraction ``p`` of pixels) and keeps the change only when the
margin loss improves. Linf: the window gets a random ``+-eps`` per channel (Algorithm 2), from vertical
stripes. L2: the window gets a "pseudo-Gaussian" pattern of concentric rectangles (Sec. 3.2) that takes
the perturbation mass of a second window, so the norm stays at ``eps`` (Algorithm 3), from a grid of
such patterns. Each iteration costs one query per sample still unbroken.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from fortify._validate import fraction, positive_int
from fortify.attacks.base import Attack, AttackOutput
from fortify.attacks.oracle import Oracle, margin
from fortify.threat import L2, Linf, Threat
from fortify.types import FortifyError

_TINY = 1e-12
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
"""Iterations (out of 10,000) after which ``p`` halves (the paper's schedule, rescaled to the budget)."""


def p_schedule(p_init: float, iteration: int, n_queries: int) -> float:
    """The fraction of pixels changed at ``iteration``: ``p_init`` halved at each point of the schedule."""
    scaled = int(iteration / max(n_queries, 1) * 10_000)
    halvings = sum(scaled > point for point in _SCHEDULE)
    return p_init / 2**halvings


@functools.lru_cache(maxsize=64)
def pseudo_gaussian(s: int, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Unit-norm ``(s, s)`` pattern: two halves of concentric-rectangle bumps with opposite signs
    (cached: treat the result as read-only).

    A pixel in ring ``k`` of a half (Chebyshev distance to its centre) gets ``sum_{j >= k} 1/(j+1)^2``,
    the sum over the nested rectangles that contain it.
    """
    top = s // 2

    def bump(rows: int) -> Tensor:
        r = torch.arange(rows, device=device, dtype=dtype)
        c = torch.arange(s, device=device, dtype=dtype)
        ring = torch.maximum((r - rows // 2).abs()[:, None], (c - s // 2).abs()[None, :]).long()
        weights = 1.0 / torch.arange(1, s + 1, device=device, dtype=dtype) ** 2
        tail = weights.flip(0).cumsum(0).flip(0)
        return tail[ring]

    pattern = torch.cat([bump(top), -bump(s - top)]) if top else bump(s)
    return pattern / pattern.norm().clamp_min(_TINY)


class Square(Attack):
    """Square Attack, Linf and L2: score-based black box with a query budget.

    Arguments (keyword-only):
      ``n_queries`` (5000) budget per sample, including the query of the initial point;
      ``p_init`` (0.8) initial fraction of pixels in the window, halved on the paper's schedule (the
      paper uses 0.05 on ImageNet; 0.8 is AutoAttack's setting and suits small images);
      ``targeted`` (then ``y`` holds targets; the margin to the target is used where the paper uses
      cross-entropy), ``seed``.
    Loss: the margin ``max_{j != y} f_j - f_y`` on the model's scores (logits for a ``Classifier``).
    Each sample stops as soon as it is misclassified. ``attack(...)`` reports queries per sample.
    Shapes: ``x`` ``(N, C, H, W)`` images in the model's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.
    Accepts a ``Classifier`` or a score ``BlackBox``.

    >>> out = ft.attacks.Square(n_queries=1000).attack(bb, x, y, ft.Linf(0.1)); out.queries
    """

    name = "square"
    requires = "scores"

    def __init__(
        self, *, n_queries: int = 5000, p_init: float = 0.8, targeted: bool = False, seed: int = 0
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        self.n_queries = positive_int("n_queries", n_queries)
        self.p_init = p_init if p_init == 1 else fraction("p_init", p_init)

    def _run(
        self, model: Oracle, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> AttackOutput:
        if x.dim() != 4:
            raise FortifyError(f"Square attacks images (N, C, H, W), got shape {tuple(x.shape)}")
        if not isinstance(threat, (Linf, L2)):
            raise FortifyError(f"Square supports ft.Linf and ft.L2 threats, got {threat!r}")
        low, high = model.bounds
        linf = isinstance(threat, Linf)
        start = self._init_linf if linf else self._init_l2
        best = (x + start(x, threat.eps, generator)).clamp(low, high)
        loss = margin(model.scores(best), y, self.targeted)
        live = (loss <= 0).nonzero().squeeze(1)
        n, c, h, w = x.shape
        for it in range(self.n_queries - 1):
            if live.numel() == 0:
                break
            p = p_schedule(self.p_init, it, self.n_queries)
            side = min(max(round(math.sqrt(p * h * w)), 1), h - 1 if h > 1 else 1, w)
            xs, current = x[live], best[live]
            step = self._step_linf if linf else self._step_l2
            candidate = step(xs, current - xs, threat.eps, side, generator).clamp(low, high)
            new_loss = margin(model.scores(candidate, live), y[live], self.targeted)
            better = new_loss > loss[live]
            best[live[better]] = candidate[better]
            loss[live[better]] = new_loss[better]
            live = live[loss[live] <= 0]
        return AttackOutput(best)

    @staticmethod
    def _window(
        n: int, h: int, w: int, side: int, generator: torch.Generator, device: torch.device
    ) -> Tensor:
        """A boolean mask ``(n, 1, h, w)`` with one random ``side x side`` square per sample."""
        top = torch.randint(0, h - side + 1, (n,), generator=generator, device=device)
        left = torch.randint(0, w - side + 1, (n,), generator=generator, device=device)
        rows = torch.arange(h, device=device)[None, :]
        cols = torch.arange(w, device=device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
        return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]

    @staticmethod
    def _signs(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
        return torch.randint(0, 2, shape, generator=generator, device=like.device).to(like.dtype) * 2 - 1

    def _init_linf(self, x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
        """Vertical stripes: one random ``+-eps`` per channel and column."""
        n, c, _, w = x.shape
        return eps * self._signs((n, c, 1, w), generator, x).expand_as(x)

    def _step_linf(
        self, x: Tensor, delta: Tensor, eps: float, side: int, generator: torch.Generator
    ) -> Tensor:
        n, c, h, w = x.shape
        window = self._window(n, h, w, side, generator, x.device)
        fresh = eps * self._signs((n, c, 1, 1), generator, x)
        return x + torch.where(window, fresh, delta)

    def _init_l2(self, x: Tensor, eps: float, generator: torch.Generator) -> Tensor:
        """A grid of ``h // 5``-sized pseudo-Gaussian patterns with random signs, scaled to norm ``eps``."""
        n, c, h, w = x.shape
        s = max(h // 5, 1)
        pattern = pseudo_gaussian(s, device=x.device, dtype=x.dtype)
        delta = torch.zeros_like(x)
        top0, left0 = (h - s * (h // s)) // 2, (w - s * (w // s)) // 2
        for i in range(h // s):
            for j in range(w // s):
                r, q = top0 + i * s, left0 + j * s
                delta[:, :, r : r + s, q : q + s] += pattern * self._signs((n, c, 1, 1), generator, x)
        norms = delta.flatten(1).norm(dim=1).clamp_min(_TINY)
        return delta * (eps / norms).reshape(-1, 1, 1, 1)

    def _step_l2(self, x: Tensor, delta: Tensor, eps: float, side: int, generator: torch.Generator) -> Tensor:
        """Move the mass of window 2 (and any unused budget) into a fresh pattern in window 1, per channel."""
        n, c, h, w = x.shape
        side = min(max(side, 3) + (1 - max(side, 3) % 2), h, w)
        first = self._window(n, h, w, side, generator, x.device)
        second = self._window(n, h, w, side, generator, x.device)
        both = first | second
        unused = (eps**2 - delta.pow(2).flatten(1).sum(1)).clamp_min(0).reshape(-1, 1, 1, 1)
        mass = (delta * both).pow(2).sum(dim=(2, 3), keepdim=True) + unused / c
        old = torch.where(first, delta, torch.zeros_like(delta))
        old = old / old.pow(2).sum(dim=(2, 3), keepdim=True).sqrt().clamp_min(_TINY)
        eta = torch.zeros_like(delta)
        pattern = pseudo_gaussian(side, device=x.device, dtype=x.dtype)
        if bool(torch.rand((), generator=generator, device=x.device) < 0.5):
            pattern = pattern.T
        eta[first.expand_as(eta)] = (pattern * self._signs((n, c, 1, 1), generator, x)).flatten()
        fresh = eta + old
        fresh = fresh / fresh.pow(2).sum(dim=(2, 3), keepdim=True).sqrt().clamp_min(_TINY) * mass.sqrt()
        return x + torch.where(first, fresh, torch.where(second, torch.zeros_like(delta), delta))
