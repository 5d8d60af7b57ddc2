"""Feature squeezing (Xu, Evans & Qi, "Feature Squeezing: Detecting Adversarial Examples in Deep
Neural Networks", NDSS 2018, arXiv:1704.01155).

An input whose prediction moves a lot when its features are squeezed (fewer bits per pixel, a median
filter) is suspicious: the score is the largest L1 distance between the softmax of the classifier on
the input and on each squeezed version. Carlini & Wagner showed such detectors fall to attacks that
include them in the objective; ``fortify.evaluation`` does that, crossing non-differentiable squeezers
(bit-depth reduction) with BPDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from fortify.defenses.preprocess import BitDepth, MedianFilter, Preprocessor
from fortify.detect.base import Detector
from fortify.model import Classifier
from fortify.types import FortifyError


class FeatureSqueezing(Detector):
    """``max_k || softmax(clf(x)) - softmax(clf(squeeze_k(x))) ||_1`` per sample, in ``[0, 2]``.

    ``clf`` is the classifier to protect (or None, to ``bind`` one later: ``ft.Guard`` does);
    ``squeezers`` (default ``BitDepth(5)``, ``MedianFilter(2)``, the paper's choices for MNIST-like
    images) are ``fortify.defenses`` preprocessing components, set to
    ``clf``'s bounds. Differentiable only if every squeezer is (``BitDepth`` is not); random if any is.

    >>> det = ft.detect.FeatureSqueezing(clf).calibrate(x_clean, fpr=0.05)
    >>> det.flagged(x_adv)          # bool (N,)
    """

    name = "squeeze"

    def __init__(
        self, clf: Classifier | None = None, squeezers: Sequence[Preprocessor] | None = None
    ) -> None:
        super().__init__()
        squeezers = [BitDepth(5), MedianFilter(2)] if squeezers is None else list(squeezers)
        if not squeezers:
            raise FortifyError("FeatureSqueezing needs at least one squeezer")
        for squeezer in squeezers:
            if not isinstance(squeezer, Preprocessor):
                raise TypeError(
                    f"squeezers must be fortify.defenses Preprocessors, got {type(squeezer).__name__}"
                )
        self.clf: Classifier | None = None
        self.squeezers = nn.ModuleList(squeezers)
        self.differentiable = all(s.differentiable for s in squeezers)
        self.randomized = any(s.randomized for s in squeezers)
        if clf is not None:
            self.bind(clf)
        self.eval()

    def bind(self, clf: Classifier) -> FeatureSqueezing:
        """Protect ``clf``: the squeezers take its bounds."""
        if not isinstance(clf, Classifier):
            raise TypeError(f"FeatureSqueezing protects a fortify Classifier, got {type(clf).__name__}")
        for squeezer in self.squeezers:
            cast(Preprocessor, squeezer).bounds = clf.bounds
        self.clf = clf
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.clf is None:
            raise FortifyError("FeatureSqueezing has no classifier: FeatureSqueezing(clf) or .bind(clf)")
        probs = self.clf(x).softmax(dim=1)
        distances = [(probs - self.clf(s(x)).softmax(dim=1)).abs().sum(dim=1) for s in self.squeezers]
        return torch.stack(distances).amax(dim=0)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "squeezers": [cast(Preprocessor, s).describe() for s in self.squeezers]}
