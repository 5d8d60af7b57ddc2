"""Training methods: how one mini-batch turns into a loss.

A method is registered by name; ``ft.train(..., method=NAME, **options)`` builds it with its options.
Adversarial methods (PGD-AT, fast AT, TRADES...) and noise augmentation plug in here without touching
the training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify.model import Classifier
from fortify.threat import Threat
from fortify.types import FortifyError


@dataclass
class StepContext:
    """What a method may need besides the batch: the threat, where we are, and a seeded generator."""

    threat: Threat | None
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    generator: torch.Generator


class TrainingMethod(Protocol):
    name: str

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        """Scalar loss for a batch; the classifier's module is in train mode."""
        ...


MethodFactory = Callable[..., TrainingMethod]
_METHODS: dict[str, MethodFactory] = {}


def register_method(name: str) -> Callable[[MethodFactory], MethodFactory]:
    def add(factory: MethodFactory) -> MethodFactory:
        _METHODS[name] = factory
        return factory

    return add


def method_names() -> list[str]:
    return sorted(_METHODS)


def build_method(name: str, options: dict[str, Any]) -> TrainingMethod:
    if name not in _METHODS:
        raise FortifyError(f"unknown training method {name!r}; choose one of {method_names()}")
    try:
        return _METHODS[name](**options)
    except TypeError as exc:
        raise FortifyError(f"bad options for training method {name!r}: {exc}") from exc


@register_method("standard")
class Standard:
    """Plain empirical risk minimisation with cross-entropy."""

    name = "standard"

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        return F.cross_entropy(clf(x), y)
