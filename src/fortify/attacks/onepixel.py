"""Few-pixel attack (Su, Vargas & Sakurai, "One pixel attack for fooling deep neural networks", IEEE
Trans. Evolutionary Computation 2019, arXiv:1710.08864).

Differential evolution over candidate perturbations, each a list of ``k`` pixels given as (row, column,
one value per channel). DE/rand/1 without crossover, as in the paper: every generation each member ``i``
proposes ``a + F (b - c)`` from three other random members and is replaced when the proposal is at
least as good. Positions are rounded down to whole pixels and clipped into the image; values into the
bounds. Approximation: fitness is the score margin (positive = fooled) rather than the true class's
probability, so the same code serves logits and black-box scores; initial values are uniform in the
bounds rather than Gaussian around mid-grey.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify._validate import positive_float, positive_int
from fortify.attacks.base import Attack, AttackOutput
from fortify.attacks.oracle import Oracle, margin
from fortify.threat import L0, Threat
from fortify.types import FortifyError

_ELEMENTS = 1 << 24
"""At most this many input elements per batch of candidate images."""


def _grid(x: Tensor) -> tuple[Tensor, int, int]:
    """``x`` as ``(N, C, H, W)``: images as they are, anything else as one row of one-channel pixels."""
    if x.dim() == 4:
        return x, x.shape[2], x.shape[3]
    flat = x.flatten(1)
    return flat[:, None, None, :], 1, flat.shape[1]


class OnePixel(Attack):
    """Change at most ``pixels`` pixels, found by differential evolution on the model's scores.

    Arguments (keyword-only):
      ``pixels`` (1) pixels changed per sample; the threat must be ``ft.L0(k)`` with ``k >= pixels``;
      ``population`` (400) and ``steps`` (100) generations, the paper's setting; ``mutation`` (0.5) the
      DE scale ``F``; ``targeted`` (``y`` holds targets), ``seed``.
    Costs ``population * (steps + 1)`` queries per sample at most; a sample stops in the generation
    where one candidate fools the model. A pixel of an image ``(N, C, H, W)`` is one position across all
    channels; other inputs ``(N, F...)`` treat every coordinate as a pixel.
    Accepts a ``Classifier`` or a score ``BlackBox``; ``attack(...)`` reports queries per sample.

    >>> x_adv = ft.attacks.OnePixel(pixels=3)(clf, x, y, ft.L0(3))
    """

    name = "onepixel"
    requires = "scores"

    def __init__(
        self,
        *,
        pixels: int = 1,
        population: int = 400,
        steps: int = 100,
        mutation: float = 0.5,
        targeted: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(targeted=targeted, seed=seed)
        self.pixels = positive_int("pixels", pixels)
        self.population = positive_int("population", population)
        if self.population < 4:
            raise FortifyError(f"population must be >= 4 (DE/rand/1 needs three others), got {population}")
        self.steps = positive_int("steps", steps)
        self.mutation = positive_float("mutation", mutation)

    def _run(
        self, model: Oracle, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> AttackOutput:
        if not isinstance(threat, L0):
            raise FortifyError(f"OnePixel needs a sparse threat ft.L0(k), got {threat!r}")
        if threat.pixels < self.pixels:
            raise FortifyError(f"OnePixel(pixels={self.pixels}) does not fit in {threat!r}")
        grid, h, w = _grid(x)
        low, high = model.bounds
        n, c = grid.shape[:2]
        scale = torch.tensor([h, w] + [high - low] * c, device=x.device, dtype=x.dtype)
        offset = torch.tensor([0.0, 0.0] + [low] * c, device=x.device, dtype=x.dtype)
        shape = (n, self.population, self.pixels, 2 + c)
        pop = offset + scale * torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)
        all_rows = torch.arange(n, device=x.device)
        fit = self._fitness(model, grid, y, pop, all_rows, x.shape)
        best = x.clone()
        live = all_rows[self._harvest(best, grid, pop, fit, all_rows, x.shape)]
        for _ in range(self.steps):
            if live.numel() == 0:
                break
            trial = self._mutate(pop[live], generator).clamp(offset, offset + scale)
            trial_fit = self._fitness(model, grid[live], y[live], trial, live, x.shape)
            better = trial_fit >= fit[live]
            pop[live] = torch.where(better[..., None, None], trial, pop[live])
            fit[live] = torch.where(better, trial_fit, fit[live])
            live = live[self._harvest(best, grid[live], pop[live], fit[live], live, x.shape)]
        return AttackOutput(best)

    def _mutate(self, pop: Tensor, generator: torch.Generator) -> Tensor:
        """DE/rand/1: ``a + F (b - c)`` with ``a, b, c`` distinct members other than the one replaced."""
        n, size = pop.shape[:2]
        picks = torch.rand((n, size, size), generator=generator, device=pop.device)
        picks.diagonal(dim1=1, dim2=2).fill_(2.0)  # never pick oneself
        abc = picks.argsort(dim=2)[:, :, :3]
        gather = torch.arange(n, device=pop.device)[:, None]
        a, b, c = (pop[gather, abc[:, :, j]] for j in range(3))
        return a + self.mutation * (b - c)

    def _apply(self, grid: Tensor, cand: Tensor) -> Tensor:
        """Images ``(n * P, C, H, W)`` with each candidate's pixels set; ``cand`` ``(n, P, k, 2 + C)``."""
        n, c, h, w = grid.shape
        size = cand.shape[1]
        rows = cand[..., 0].floor().clamp(0, h - 1).long()
        cols = cand[..., 1].floor().clamp(0, w - 1).long()
        index = (rows * w + cols).reshape(n * size, 1, -1).expand(-1, c, -1)
        values = cand[..., 2:].reshape(n * size, -1, c).transpose(1, 2)
        images = grid.flatten(2).repeat_interleave(size, dim=0).scatter(2, index, values)
        return images.reshape(n * size, c, h, w)

    def _fitness(
        self, model: Oracle, grid: Tensor, y: Tensor, cand: Tensor, rows: Tensor, shape: torch.Size
    ) -> Tensor:
        """Score margin ``(n, P)`` of every candidate, queried in chunks."""
        n, size = cand.shape[:2]
        chunk = max(1, _ELEMENTS // (size * grid[0].numel()))
        out = []
        for s in range(0, n, chunk):
            images = self._apply(grid[s : s + chunk], cand[s : s + chunk])
            owner = rows[s : s + chunk].repeat_interleave(size)
            scores = model.scores(images.reshape((-1,) + tuple(shape[1:])), owner)
            out.append(
                margin(scores, y[s : s + chunk].repeat_interleave(size), self.targeted).reshape(-1, size)
            )
        return torch.cat(out)

    def _harvest(
        self, best: Tensor, grid: Tensor, pop: Tensor, fit: Tensor, rows: Tensor, shape: torch.Size
    ) -> Tensor:
        """Write the best candidate of each sample ``rows`` (``grid`` holds those samples) into ``best``;
        return which of them are not fooled yet ``(len(rows),)``."""
        top = fit.argmax(dim=1)
        chosen = pop[torch.arange(pop.shape[0], device=pop.device), top][:, None]
        best[rows] = self._apply(grid, chosen).reshape((-1,) + tuple(shape[1:]))
        return fit.amax(dim=1) <= 0
