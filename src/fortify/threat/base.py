"""The threat contract: a norm ball the adversary stays in, the hooks attacks call, and the registry of norms.

A threat is a norm ball of radius ``eps`` around each clean input, intersected with the input bounds
of the classifier. Attacks never branch on the norm; they call the small hooks here instead:
``random_start`` (a uniform point in the ball), ``ascent_direction`` (the steepest-ascent direction of
a gradient under the norm), ``project`` (back into the ball), ``norm_of`` (per-sample distance), and
for minimum-norm attacks ``dual_norm`` (per-sample dual norm of a gradient) and ``project_radius``
(projection onto balls whose radius differs per sample).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor

from fortify._registry import Registry
from fortify._validate import is_number
from fortify.types import Bounds, FortifyError

TINY = 1e-12
MAX_NUDGES = 16
"""Ulp steps ``Threat.inside`` takes towards the clean input before giving up on a sample."""


def flat(t: Tensor) -> Tensor:
    return t.flatten(1)


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """Reshape a per-sample vector ``(N,)`` so it broadcasts against ``like`` ``(N, ...)``."""
    return values.reshape((-1,) + (1,) * (like.dim() - 1))


class Threat(ABC):
    """A norm ball of radius ``eps``: the perturbations an adversary may add to an input.

    Subclasses implement the norm-specific hooks; everything else is shared.
    """

    norm: ClassVar[str]

    def __init__(self, eps: float) -> None:
        if not is_number(eps):
            raise TypeError(f"eps must be a number, got {type(eps).__name__} {eps!r}")
        eps = float(eps)
        if not math.isfinite(eps) or eps < 0:
            raise FortifyError(f"eps must be a finite number >= 0, got {eps!r}")
        self.eps = eps

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.eps:g})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Threat) and type(other) is type(self) and other.eps == self.eps

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.eps))

    def with_eps(self, eps: float) -> Threat:
        """The same kind of threat with another radius (used by sweeps)."""
        return type(self)(eps)

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm, "eps": self.eps}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Threat:
        return make_threat(str(data["norm"]), float(data["eps"]))

    @abstractmethod
    def norm_of(self, delta: Tensor) -> Tensor:
        """Per-sample norm of a batch of perturbations ``(N, ...)`` -> ``(N,)``."""

    @abstractmethod
    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Closest point to ``x_adv`` in the ball around ``x`` (no bound clipping)."""

    @abstractmethod
    def ascent_direction(self, grad: Tensor) -> Tensor:
        """Unit-norm steepest-ascent direction of ``grad`` under this norm, per sample."""

    @abstractmethod
    def random_delta(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A perturbation drawn uniformly from the ball, same shape as ``x``."""

    def dual_norm(self, grad: Tensor) -> Tensor:
        """Per-sample dual norm ``(N,)`` of gradients ``(N, ...)``: the first-order change of the loss per
        unit of this norm (L1 for L-infinity, L2 for L2). Norms without one raise ``FortifyError``."""
        raise FortifyError(f"{type(self).__name__} has no dual norm; minimum-norm attacks use Linf or L2")

    def project_radius(self, delta: Tensor, radius: Tensor) -> Tensor:
        """Each perturbation ``delta[i]`` ``(N, ...)`` projected onto this norm's ball of radius
        ``radius[i]`` (``(N,)``, >= 0). Norms without per-sample radii raise ``FortifyError``."""
        raise FortifyError(
            f"{type(self).__name__} has no per-sample radius; minimum-norm attacks use Linf or L2"
        )

    def contains(self, x_adv: Tensor, x: Tensor, *, tol: float = 1e-5) -> Tensor:
        """Per-sample boolean: is ``x_adv`` inside the ball around ``x`` (relative tolerance ``tol``)?"""
        return self.norm_of(x_adv - x) <= self.eps * (1 + tol) + tol * 1e-2

    def clip(self, x_adv: Tensor, x: Tensor, bounds: Bounds) -> Tensor:
        """Project into the ball, then clip into ``bounds``.

        Clipping moves every coordinate towards the clean input (which lies inside the bounds), so the
        result is inside both sets for every norm defined here.
        """
        return self.inside(self.project(x_adv, x).clamp(bounds[0], bounds[1]), x)

    def inside(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """``x_adv`` with every sample made exactly inside the ball: ``norm_of(x_adv - x) <= eps`` with
        no tolerance, in ``x``'s dtype, so ``contains`` agrees with every point an attack returns.

        ``x + delta`` rounds, which can leave a projected point an ulp or two outside; such samples
        step one ulp towards ``x`` per coordinate until they are inside (a few steps at most). The
        step moves towards ``x``, so points inside the bounds stay inside them; a sample still
        outside after ``MAX_NUDGES`` steps is returned as ``x`` itself.
        """
        for _ in range(MAX_NUDGES):
            outside = self.norm_of(x_adv - x) > self.eps
            if not bool(outside.any()):
                return x_adv
            x_adv = torch.where(per_sample(outside, x_adv), torch.nextafter(x_adv, x), x_adv)
        outside = self.norm_of(x_adv - x) > self.eps
        return torch.where(per_sample(outside, x_adv), x, x_adv)

    def random_start(self, x: Tensor, bounds: Bounds, generator: torch.Generator | None = None) -> Tensor:
        """A uniformly random point of the ball around ``x``, clipped into ``bounds``."""
        return (x + self.random_delta(x, generator)).clamp(bounds[0], bounds[1])


_THREATS: Registry[type[Threat]] = Registry("norm")


ThreatClass = TypeVar("ThreatClass", bound=type[Threat])


def register_threat(cls: ThreatClass) -> ThreatClass:
    """Make a threat class known to ``make_threat`` and to result deserialisation."""
    _THREATS.add(cls.norm, cls)
    return cls


def make_threat(norm: str, eps: float) -> Threat:
    """Build a threat from its norm name (``"linf"``, ``"l2"``, ...) and radius."""
    key = norm.lower().replace("-", "").replace("_", "")
    aliases = {"inf": "linf", "linfinity": "linf", "2": "l2"}
    key = aliases.get(key, key)
    return _THREATS.get(key, shown=norm)(eps)
