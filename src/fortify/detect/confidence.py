"""Prediction confidence as a detector (Hendrycks & Gimpel, "A Baseline for Detecting Misclassified
and Out-of-Distribution Examples in Neural Networks", ICLR 2017, arXiv:1610.02136).

``kind="msp"``: the score is ``1 - max_c p_c(x)`` (one minus the maximum softmax probability);
``kind="entropy"``: the entropy ``-sum_c p_c log p_c`` of the softmax, in nats. Both are higher for
less confident predictions. Adversarial points made by a minimal-perturbation attack sit near the
decision boundary and score high; points made with a high-confidence objective do not, which is why
this detector is always reported against an adaptive attack that has it in its objective.
"""

from __future__ import annotations

from torch import Tensor

from fortify.detect.base import Detector
from fortify.model import Classifier
from fortify.types import FortifyError

KINDS = ("msp", "entropy")


class Confidence(Detector):
    """``1 - max softmax`` (``"msp"``) or the softmax entropy (``"entropy"``) of ``clf(x)``; ``(N,)``."""

    name = "confidence"

    def __init__(self, clf: Classifier | None = None, *, kind: str = "msp") -> None:
        super().__init__()
        if kind not in KINDS:
            raise FortifyError(f"unknown confidence kind {kind!r}; choose one of {list(KINDS)}")
        self.kind = kind
        self.clf: Classifier | None = None
        if clf is not None:
            self.bind(clf)
        self.eval()

    def bind(self, clf: Classifier) -> Confidence:
        if not isinstance(clf, Classifier):
            raise TypeError(f"Confidence protects a fortify Classifier, got {type(clf).__name__}")
        self.clf = clf
        return self

    def forward(self, x: Tensor) -> Tensor:
        if self.clf is None:
            raise FortifyError("Confidence has no classifier: Confidence(clf) or .bind(clf)")
        log_probs = self.clf(x).log_softmax(dim=1)
        if self.kind == "msp":
            return 1.0 - log_probs.amax(dim=1).exp()
        return -(log_probs.exp() * log_probs).sum(dim=1)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "kind": self.kind}
