"""Backdoor poisoning attacks: BadNets (dirty label) and the clean-label backdoor.

- ``BadNets`` (Gu, Dolan-Gavitt & Garg, "BadNets: Identifying Vulnerabilities in the Machine Learning
  Model Supply Chain", 2017, arXiv:1708.06733): a fraction ``rate`` of the training samples of other
  classes get the trigger and the label ``target`` (all-to-one), or the label ``(y + 1) mod K``
  (all-to-all).
- ``CleanLabel`` (Turner, Tsipras & Madry, "Label-Consistent Backdoor Attacks", 2019,
  arXiv:1912.02771): only images of the target class are poisoned and their labels stay correct; each
  is first made hard to classify with a bounded PGD perturbation against a surrogate model (so the
  model must lean on the trigger to fit it), then the trigger is added.

``success_rate`` is the attack success rate of a model trained on the poisoned set: the share of test
inputs *not of the target class* (all-to-one) that, with the trigger, are classified as the target;
report it beside the model's clean accuracy (a constant model scores 100%).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify import _validate as check
from fortify.attacks import PGD
from fortify.audits.poisoning.triggers import BlendTrigger, PatchTrigger
from fortify.model import Classifier
from fortify.threat import Linf
from fortify.types import Bounds, FortifyError

MODES = ("all-to-one", "all-to-all")
TRIGGERS = ("patch", "blend")


class BadNets:
    """``BadNets(trigger="patch", size=3, alpha=0.1, rate=0.05, target=0, mode="all-to-one", seed=0)``.

    ``poison(x, y)`` returns ``(x_poisoned, y_poisoned, indices)``: copies of the training set with
    ``round(rate * N)`` samples (drawn from ``seed`` among those not of ``target``, for all-to-one)
    triggered and relabelled; ``indices`` ``(M,)`` int64 are the changed samples.
    """

    def __init__(
        self,
        *,
        trigger: str = "patch",
        size: int = 3,
        alpha: float = 0.1,
        rate: float = 0.05,
        target: int = 0,
        mode: str = "all-to-one",
        seed: int = 0,
        bounds: Bounds = (0.0, 1.0),
    ) -> None:
        kind = check.choice("trigger", trigger, TRIGGERS)
        self.trigger = (
            PatchTrigger(size, bounds) if kind == "patch" else BlendTrigger(alpha, seed=seed, bounds=bounds)
        )
        self.rate = check.fraction("rate", rate)
        self.target = check.integer("target", target, low=0)
        self.mode = check.choice("mode", mode, MODES)
        self.seed = seed

    def _check(self, x: Tensor, y: Tensor) -> int:
        if not isinstance(x, Tensor) or x.dim() != 4 or not isinstance(y, Tensor) or y.shape != (x.shape[0],):
            raise FortifyError("poisoning takes images x (N, C, H, W) and labels y (N,)")
        k = int(y.max()) + 1
        if self.target >= max(k, 2):
            raise FortifyError(f"target class {self.target} is out of range for labels 0..{k - 1}")
        return k

    def candidates(self, y: Tensor) -> Tensor:
        """Indices that may be poisoned: samples not of the target (all-to-one), every sample otherwise."""
        if self.mode == "all-to-one":
            return (y != self.target).nonzero().squeeze(1)
        return torch.arange(y.shape[0])

    def relabel(self, y: Tensor, num_classes: int) -> Tensor:
        return torch.full_like(y, self.target) if self.mode == "all-to-one" else (y + 1) % num_classes

    def poison(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        k = self._check(x, y)
        pool = self.candidates(y)
        count = max(1, round(self.rate * x.shape[0]))
        if count > pool.numel():
            raise FortifyError(
                f"rate {self.rate:g} asks for {count} poisoned samples but only {pool.numel()} qualify"
            )
        generator = torch.Generator().manual_seed(self.seed)
        chosen = pool[torch.randperm(pool.numel(), generator=generator)[:count]].sort().values
        x_p, y_p = x.clone(), y.clone()
        x_p[chosen] = self.trigger(x[chosen])
        y_p[chosen] = self.relabel(y[chosen], k)
        return x_p, y_p, chosen

    def apply(self, x: Tensor) -> Tensor:
        """``x`` with the trigger (what an attacker sends at run time)."""
        return self.trigger(x)

    @torch.no_grad()
    def success_rate(self, clf: Classifier, x: Tensor, y: Tensor) -> float:
        """Share of test inputs (not of the target class, for all-to-one) that the trigger sends to the
        attacker's label."""
        keep = y != self.target if self.mode == "all-to-one" else torch.ones_like(y, dtype=torch.bool)
        if not bool(keep.any()):
            raise FortifyError("no test inputs outside the target class to measure attack success on")
        wanted = self.relabel(y[keep], clf.num_classes)
        return float((clf.predict(self.apply(x[keep])).cpu() == wanted.cpu()).double().mean())

    def describe(self) -> dict[str, object]:
        return {
            "attack": type(self).__name__,
            **self.trigger.describe(),
            "rate": self.rate,
            "target": self.target,
            "mode": self.mode,
            "seed": self.seed,
        }


class CleanLabel(BadNets):
    """The clean-label backdoor: target-class images, PGD-perturbed against ``surrogate`` within Linf
    ``eps`` (10 steps), then triggered; labels untouched. ``rate`` is the share of the whole training
    set (all drawn from the target class). ``poison(x, y, surrogate)``."""

    def __init__(self, *, eps: float = 0.1, **options: object) -> None:
        mode = options.pop("mode", "all-to-one")
        if mode != "all-to-one":
            raise FortifyError("the clean-label backdoor is all-to-one: it poisons the target class only")
        super().__init__(**options)  # type: ignore[arg-type]
        self.eps = check.number("eps", eps, low=0, finite=True)

    def candidates(self, y: Tensor) -> Tensor:
        return (y == self.target).nonzero().squeeze(1)

    def poison(
        self, x: Tensor, y: Tensor, surrogate: Classifier | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        if not isinstance(surrogate, Classifier):
            raise FortifyError(
                "the clean-label backdoor needs a surrogate Classifier: poison(x, y, surrogate)"
            )
        self._check(x, y)
        pool = self.candidates(y)
        count = max(1, round(self.rate * x.shape[0]))
        if count > pool.numel():
            raise FortifyError(
                f"rate {self.rate:g} asks for {count} target-class images; there are {pool.numel()}"
            )
        generator = torch.Generator().manual_seed(self.seed)
        chosen = pool[torch.randperm(pool.numel(), generator=generator)[:count]].sort().values
        hard = (
            PGD(steps=10, seed=self.seed)(surrogate, x[chosen], y[chosen], Linf(self.eps))
            if self.eps > 0
            else x[chosen]
        )
        x_p = x.clone()
        x_p[chosen] = self.trigger(hard.cpu())
        return x_p, y.clone(), chosen

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "eps": self.eps}
