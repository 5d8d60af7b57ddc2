"""Training methods: how one mini-batch turns into a loss.

A method is registered by name; ``ft.train(..., method=NAME, **options)`` builds it with its options.
Adversarial methods (PGD-AT, fast AT, TRADES...) and noise augmentation plug in here without touching
the training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._registry import Registry
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.types import FortifyError


@dataclass
class StepContext:
    """What a method may need besides the batch: the threat, where we are, and a seeded generator.

    ``inner`` is the context an inner maximisation runs in (``attacking`` enters it): differentially
    private training pauses its per-sample gradient capture there, so that an attack's backward pass
    never counts as a training gradient."""

    threat: Threat | None
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    generator: torch.Generator
    inner: Callable[[], AbstractContextManager[object]] = nullcontext


class TrainingMethod(Protocol):
    """How a batch becomes a loss. ``ctx.threat`` is the threat for this step (already scaled by the
    epsilon curriculum when one is used).

    A method whose inner attack has a step size may also define ``shrink_step(factor) -> bool`` (return
    True when it shrank); the training loop calls it to recover from catastrophic overfitting.

    A method may also declare ``privacy`` (a ``fortify.training.dp.PrivacySpec``): the loop then
    trains it with DP-SGD through Opacus (``fortify.training.private``): per-sample gradients, Poisson
    sampling, clipping, noise and the accountant replace the plain optimizer step and batches; the
    method still only turns a batch into a loss (``dp`` wraps another method's loss this way).
    """

    name: str

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        """Scalar loss for a batch; the classifier's module is in train mode."""
        ...


def require_threat(ctx: StepContext, method: str) -> Threat:
    """The step's threat, or a clear error when an adversarial method was started without one."""
    if ctx.threat is None:
        raise FortifyError(f"training method {method!r} needs a threat, e.g. threat=ft.Linf(0.1)")
    return ctx.threat


def attack_seed(ctx: StepContext) -> int:
    """A fresh seed for this step's inner attack, drawn from the run's seeded generator."""
    return int(torch.randint(0, 2**62, (1,), generator=ctx.generator, device=ctx.generator.device))


@contextmanager
def attacking(clf: Classifier, ctx: StepContext | None = None) -> Iterator[None]:
    """Run the inner maximisation with the module in eval mode, then switch back to train mode.

    The attack targets the model as it is deployed (dropout off; BatchNorm uses its running statistics
    and the k attack forwards do not pollute them); the outer loss is then computed in train mode.
    Weight gradients are switched off by the attack itself and restored when it returns. Pass the
    step's ``ctx`` so that its ``inner`` context (DP training's pause) covers the attack.
    """
    was_training = clf.module.training
    clf.module.eval()
    try:
        with ctx.inner() if ctx is not None else nullcontext():
            yield
    finally:
        clf.module.train(was_training)


MethodFactory = Callable[..., TrainingMethod]
_METHODS: Registry[MethodFactory] = Registry("training method")


def register_method(name: str) -> Callable[[MethodFactory], MethodFactory]:
    """Decorator: make a method factory known to ``ft.train(method=name)``."""
    return _METHODS.register(name)


def method_names() -> list[str]:
    return _METHODS.names()


def build_method(name: str, options: dict[str, Any]) -> TrainingMethod:
    """The method ``name`` built with ``options``; ``FortifyError`` for an unknown name or bad options."""
    factory = _METHODS.get(name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise FortifyError(f"bad options for training method {name!r}: {exc}") from exc


@register_method("standard")
class Standard:
    """Plain empirical risk minimisation with cross-entropy."""

    name = "standard"

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        return F.cross_entropy(clf(x), y)
