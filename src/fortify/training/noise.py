"""Training for randomized smoothing: the base classifier must classify well under Gaussian noise.

- ``noise``: Gaussian data augmentation (Cohen, Rosenfeld & Kolter, ICML 2019, arXiv:1902.02918,
  Section 4): cross-entropy on ``x + sigma * eps``, ``eps ~ N(0, I)``, with the same ``sigma`` that
  will later smooth the model. The noisy inputs are not clipped into the bounds, as at certification.
- ``consistency``: Jeong & Shin, "Consistency Regularization for Certified Robustness of Smoothed
  Classifiers", NeurIPS 2020 (arXiv:2006.04062): ``m`` noisy copies per input; the mean cross-entropy,
  plus ``lbd`` times the mean KL divergence from the copies' average prediction to each copy, plus
  ``eta`` times the entropy of that average. This is the paper's loss with the entropy term written as
  the entropy of the mean prediction (the form its authors state as the corrected one).

>>> ft.train(clf, (x, y), method="noise", sigma=0.25, epochs=2)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._validate import integer, number
from fortify.model import Classifier
from fortify.training.methods import StepContext, register_method


def _check_sigma(sigma: float) -> float:
    return number("sigma", sigma, low=0, open_low=True, finite=True)


def _noisy(x: Tensor, sigma: float, ctx: StepContext) -> Tensor:
    noise = torch.randn(x.shape, generator=ctx.generator, device=x.device, dtype=x.dtype)
    return x + sigma * noise


@register_method("noise")
class GaussianNoise:
    """Gaussian data augmentation for smoothing. Option: ``sigma`` (0.25), the noise level."""

    name = "noise"

    def __init__(self, *, sigma: float = 0.25) -> None:
        self.sigma = _check_sigma(sigma)

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        return F.cross_entropy(clf(_noisy(x, self.sigma, ctx)), y)


@register_method("consistency")
class ConsistencyRegularized:
    """Gaussian augmentation with consistency regularisation (Jeong & Shin 2020).

    Options: ``sigma`` (0.25) noise level, ``m`` (2) noisy copies per input, ``lbd`` (10.0) weight of
    the consistency (KL) term, ``eta`` (0.5) weight of the entropy term. Costs ``m`` forward/backward
    passes per batch.
    """

    name = "consistency"

    def __init__(self, *, sigma: float = 0.25, m: int = 2, lbd: float = 10.0, eta: float = 0.5) -> None:
        self.sigma = _check_sigma(sigma)
        self.m = integer("m", m, low=2, note=" (noisy copies per input)")
        self.lbd, self.eta = number("lbd", lbd, low=0), number("eta", eta, low=0)

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        copies = _noisy(x.repeat(self.m, *([1] * (x.dim() - 1))), self.sigma, ctx)
        logits = clf(copies)
        ce = F.cross_entropy(logits, y.repeat(self.m))
        log_probs = logits.log_softmax(dim=1).reshape(self.m, x.shape[0], -1)
        mean = log_probs.exp().mean(dim=0).clamp_min(1e-7)
        kl = (mean * (mean.log() - log_probs)).sum(dim=2).mean()
        entropy = -(mean * mean.log()).sum(dim=1).mean()
        return ce + self.lbd * kl + self.eta * entropy
