"""What an attack will cost before it runs: an upper bound on model passes from its options, and a
time from a quick measurement of the model's speed.

``cost_of(attack, num_classes)`` bounds the model rows one attacked sample costs when the attack spends
its whole budget (iterations x restarts x targets, or its query budget), plus the contract's clean and
final checks. Attacks stop early on samples they break, so the real cost is usually lower; the bound
is what a sample the attack cannot break costs. ``estimate`` turns it into seconds of model time by
timing one forward pass (and one with input gradients) at the size of the attack's calls;
``Estimate.line`` says both in one sentence for a log. The attacks' own arithmetic is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fortify.attacks.apgd import APGD
from fortify.attacks.base import Attack
from fortify.attacks.cw import CW
from fortify.attacks.deepfool import DeepFool
from fortify.attacks.fgsm import FGSM
from fortify.attacks.fmn import FMN
from fortify.attacks.hopskipjump import HopSkipJump
from fortify.attacks.momentum import MIFGSM
from fortify.attacks.onepixel import OnePixel
from fortify.attacks.pgd import PGD
from fortify.attacks.square import Square
from fortify.model import BlackBox, Classifier

CHECKS = 2
"""Forward rows of the contract around every attack: the clean check and the final check."""


@dataclass(frozen=True)
class Cost:
    """Model rows per attacked sample, at most: ``forward`` in all, ``gradient`` of them with input
    gradients (a backward pass each)."""

    forward: float
    gradient: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.forward + other.forward, self.gradient + other.gradient)

    def __mul__(self, k: float) -> Cost:
        return Cost(self.forward * k, self.gradient * k)


def _gradient_steps(steps: float) -> Cost:
    return Cost(steps + CHECKS, steps)


def _apgd(attack: APGD, num_classes: int) -> Cost:
    targets = getattr(attack, "n_target_classes", None) or 1
    targets = max(1, min(int(targets), num_classes - 1 - int(getattr(attack, "skip_targets", 0) or 0)))
    return _gradient_steps(attack.steps * attack.restarts * targets)


HSJ_OVERRUN = 50
"""Queries HopSkipJump may spend past its budget: the last iteration's step and boundary searches
(about 2 log2 of the input size each)."""

_RULES: list[tuple[type[Attack], Callable[[Any, int], Cost]]] = [
    (FGSM, lambda a, k: _gradient_steps(1)),
    (PGD, lambda a, k: _gradient_steps(a.steps * a.restarts)),
    (APGD, _apgd),
    (MIFGSM, lambda a, k: _gradient_steps(a.steps)),
    (FMN, lambda a, k: _gradient_steps(a.steps)),
    (CW, lambda a, k: _gradient_steps(a.steps * a.binary_search_steps)),
    (DeepFool, lambda a, k: _gradient_steps(a.steps * min(a.candidates, k))),
    (Square, lambda a, k: Cost(a.n_queries + CHECKS)),
    (OnePixel, lambda a, k: Cost(a.population * (a.steps + 1) + CHECKS)),
    (HopSkipJump, lambda a, k: Cost(a.n_queries + HSJ_OVERRUN + CHECKS)),
]


def cost_of(attack: Attack, num_classes: int) -> Cost | None:
    """The most model rows one sample costs under ``attack`` (see the module docstring); ``None`` for
    an attack this table does not know. An attack wrapping another (``inner``, e.g. the detector
    evasion) over ``n_targets`` targets costs the inner attack's once per target."""
    inner = getattr(attack, "inner", None)
    if isinstance(inner, Attack):
        base = cost_of(inner, num_classes)
        targets = max(1, min(int(getattr(attack, "n_targets", 1)), num_classes - 1))
        return None if base is None else base * targets
    for kind, rule in _RULES:
        if isinstance(attack, kind):
            return rule(attack, num_classes)
    return None


@dataclass(frozen=True)
class Rate:
    """Measured model speed on one batch size: rows per second forward, and forward with input
    gradients."""

    forward: float
    gradient: float


MAX_TIMING_ROWS = 4096
"""Largest batch the model is timed on; larger calls are assumed to run at its speed."""


def measure_rate(model: Classifier | BlackBox, x: Tensor, rows: int) -> Rate:
    """Time one forward pass of a batch of ``rows`` rows (at most ``MAX_TIMING_ROWS``) of ``x``, repeated
    as needed, after a one-row warm-up; and, for a ``Classifier``, one forward and backward pass with
    input gradients. Costs two or three passes of that batch."""
    x = x[torch.arange(max(1, min(rows, MAX_TIMING_ROWS))) % x.shape[0]]
    n = x.shape[0]
    if isinstance(model, Classifier):
        xd = x.to(model.device)
        with torch.no_grad():
            model(xd[:1])
            t0 = time.perf_counter()
            model(xd)
            forward = time.perf_counter() - t0
        probe = xd.clone().requires_grad_(True)
        t0 = time.perf_counter()
        with torch.enable_grad():
            model(probe).sum().backward()
        gradient = time.perf_counter() - t0
    else:
        model.predict(x[:1], check=False)
        t0 = time.perf_counter()
        model.predict(x, check=False)
        forward = gradient = time.perf_counter() - t0
    return Rate(n / max(forward, 1e-9), n / max(gradient, 1e-9))


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of attacking ``samples`` samples: model rows and seconds of model time."""

    samples: int
    cost: Cost
    seconds: float
    unknown: tuple[str, ...] = ()
    note: str = "at most: attacks stop early on the samples they break; the time is the model's alone"

    def line(self) -> str:
        """One sentence for a log: ``estimated cost: ~N model passes ... (note)``."""
        grads = f" ({_count(self.cost.gradient)} with input gradients)" if self.cost.gradient else ""
        unknown = f"; not counted: {', '.join(self.unknown)}" if self.unknown else ""
        return (
            f"estimated cost: ~{_count(self.cost.forward)} model passes{grads} for {self.samples} samples, "
            f"{_duration(self.seconds)} of model time at the speed just measured ({self.note}){unknown}"
        )


def estimate(
    attacks: list[tuple[str, Attack, int]],
    model: Classifier | BlackBox,
    x: Tensor,
    *,
    batch_size: int,
) -> Estimate:
    """The cost of ``attacks`` on ``x``, each ``(name, attack, samples it may attack)``, run in batches
    of ``batch_size`` samples. The model is timed once per distinct call size (the samples of a batch,
    times the population of a population-based attack), since small calls cost more per row."""
    total, seconds, unknown = Cost(0.0), 0.0, []
    rates: dict[int, Rate] = {}
    for name, attack, count in attacks:
        cost = cost_of(attack, model.num_classes)
        if cost is None:
            unknown.append(name)
            continue
        if count == 0:
            continue
        rows = min(count, batch_size) * int(getattr(attack, "population", 1))
        rate = rates.get(rows) or rates.setdefault(rows, measure_rate(model, x, rows))
        work = cost * count
        total = total + work
        seconds += (work.forward - work.gradient) / rate.forward + work.gradient / rate.gradient
    return Estimate(x.shape[0], total, seconds, tuple(unknown))


def _count(rows: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rows >= scale:
            return f"{rows / scale:.3g}{suffix}"
    return f"{rows:.0f}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1s"
    if seconds < 60:
        return f"~{seconds:.0f}s"
    if seconds < 3600:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"
