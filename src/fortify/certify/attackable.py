"""A differentiable stand-in for the smoothed classifier, so gradient attacks can aim at it.

The smoothed classifier ``g`` of ``Smooth`` takes a hard majority vote, which has no useful gradient.
Salman et al. ("Provably Robust Deep Learning via Adversarially Trained Smoothed Classifiers", NeurIPS
2019, arXiv:1906.04584) attack its soft version instead, ``G(x) = E[softmax f(x + eps)]``, estimated by
averaging over ``samples`` fresh noise draws per forward pass (expectation over transformation). This
module is that estimate; it is an approximation of ``G``, and ``G`` is a proxy for ``g``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify._validate import integer
from fortify.certify.smooth import check_sigma
from fortify.model import Classifier

_TINY = 1e-12


class NoiseAveraged(Classifier):
    """``log mean_k softmax(clf(x + sigma * eps_k))`` over ``samples`` Gaussian draws, as logits.

    A randomized, differentiable ``Classifier``: ``ft.attacks.PGD`` on it is PGD with EOT over the
    smoothing noise. Each forward pass draws fresh noise from a generator seeded with ``seed``.
    Input ``(N, ...)`` in ``clf.bounds``; output ``(N, num_classes)`` log-probabilities.

    >>> x_adv = ft.attacks.PGD(steps=40)(NoiseAveraged(clf, 0.25, samples=32), x, y, ft.L2(0.5))
    """

    randomized = True

    def __init__(self, clf: Classifier, sigma: float, *, samples: int = 32, seed: int = 0) -> None:
        if not isinstance(clf, Classifier):
            raise TypeError(f"NoiseAveraged takes a fortify Classifier, got {type(clf).__name__}")
        integer("samples", samples, low=1)
        super().__init__(clf, num_classes=clf.num_classes, bounds=clf.bounds, batch_size=clf.batch_size)
        self.sigma = check_sigma(sigma)
        self.samples = samples
        self.seed = int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def forward(self, x: Tensor) -> Tensor:
        copies = x.repeat_interleave(self.samples, dim=0)
        noise = torch.randn(copies.shape, generator=self._generator(x.device), device=x.device, dtype=x.dtype)
        probs = self.module(copies + self.sigma * noise).softmax(dim=1)
        mean = probs.reshape(x.shape[0], self.samples, -1).mean(dim=1)
        return mean.clamp_min(_TINY).log()

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "sigma": self.sigma, "samples": self.samples}
