"""Differentially private training: DP-SGD (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar & Zhang,
"Deep Learning with Differential Privacy", CCS 2016, arXiv:1607.00133) through Opacus (Yousefpour et
al. 2021, arXiv:2109.12298).

Each step draws a Poisson sample of the training set (every sample independently with probability
``q = batch_size / N``), computes every sample's gradient, clips it to L2 norm ``max_grad_norm``, sums,
adds Gaussian noise of standard deviation ``noise_multiplier * max_grad_norm`` and takes the
optimizer's step. The accountant (RDP by default, or PRV) turns the steps into the ``(epsilon, delta)``
spent; the noise multiplier is the smallest that keeps ``target epsilon`` over the planned epochs.

Design: DP changes how gradients are computed and how batches are drawn, not the loss. So ``dp`` is a
method that wraps another method's loss (``base``: ``standard`` by default, or an adversarial one for
DP adversarial training) and declares a ``privacy`` spec; the loop sees the spec and asks
``fortify.training.private`` for Opacus's private optimizer and Poisson batches. The budget spent is
``TrainingHistory.privacy``.

What the guarantee covers: the weights. The history's per-epoch training loss and accuracy are
measured on training samples without noise (and are saved with the model by ``fortify train``), so
they are not private; validation, early stopping and the catastrophic-overfitting checks use ``val``
only (the checks are off in a DP run without it).

>>> hist = ft.train(clf, (x, y), method="dp", epsilon=3.0, delta=1e-5, max_grad_norm=1.0, epochs=5)
>>> hist.privacy["epsilon"], hist.privacy["noise_multiplier"]
>>> ft.train(clf, (x, y), method="dp", epsilon=8.0, base="pgd", threat=ft.Linf(0.1), steps=7)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from fortify._validate import choice, number
from fortify.model import Classifier
from fortify.training.methods import StepContext, TrainingMethod, build_method, register_method
from fortify.types import FortifyError

ACCOUNTANTS = ("rdp", "prv")
BASES = ("standard", "pgd", "fast", "trades", "noise")
"""Methods whose loss DP-SGD can wrap: each forward holds one row per sample, so a sample's gradient
is its own (a method that stacks copies of a batch into one forward, like ``consistency``, is not)."""


@dataclass(frozen=True)
class PrivacySpec:
    """What a private run must achieve: ``(epsilon, delta)``-DP over the planned epochs, per-sample
    clip norm ``max_grad_norm``, the ``accountant``; ``secure_rng`` draws noise and batches from
    Opacus's cryptographically secure generator (needs ``torchcsprng``); ``replace_batchnorm`` swaps
    BatchNorm layers for GroupNorm (Opacus's ``ModuleValidator.fix``) instead of refusing them."""

    epsilon: float
    delta: float
    max_grad_norm: float
    accountant: str = "rdp"
    secure_rng: bool = False
    replace_batchnorm: bool = False


@register_method("dp")
class DPTraining:
    """DP-SGD around a ``base`` method's loss.

    Options: ``epsilon`` (required) the target budget over the run's epochs, ``delta`` (1e-5; keep it
    well below 1 / N), ``max_grad_norm`` (1.0) per-sample clip norm, ``accountant`` (``"rdp"`` or
    ``"prv"``), ``secure_rng`` (False), ``replace_batchnorm`` (False), ``base`` (``"standard"``; also
    ``pgd``, ``fast``, ``trades``, ``noise``) and the base method's own options (``steps=7``...).
    """

    name = "dp"

    def __init__(
        self,
        *,
        epsilon: float,
        delta: float = 1e-5,
        max_grad_norm: float = 1.0,
        accountant: str = "rdp",
        secure_rng: bool = False,
        replace_batchnorm: bool = False,
        base: str = "standard",
        **base_options: Any,
    ) -> None:
        number("epsilon", epsilon, low=0, open_low=True, finite=True)
        number("delta", delta, low=0, high=1, open_low=True, open_high=True)
        number("max_grad_norm", max_grad_norm, low=0, open_low=True, finite=True)
        accountant = choice("accountant", accountant, ACCOUNTANTS)
        if base not in BASES:
            raise FortifyError(
                f"dp cannot wrap method {base!r}; choose a base among {list(BASES)} (their losses keep "
                "one row per sample, so each sample's gradient can be clipped on its own)"
            )
        self.privacy = PrivacySpec(
            float(epsilon),
            float(delta),
            float(max_grad_norm),
            accountant,
            bool(secure_rng),
            bool(replace_batchnorm),
        )
        self.base: TrainingMethod = build_method(base, base_options)
        if hasattr(self.base, "shrink_step"):  # the overfitting guard may shrink the base's step
            self.shrink_step = self.base.shrink_step

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        """The base method's loss; a zero loss for an empty Poisson batch (the step then adds only
        noise, as DP-SGD must: skipping it would reveal that the batch was empty)."""
        if x.shape[0] == 0:
            return clf(x).sum() * 0.0
        return self.base.loss(clf, x, y, ctx)
