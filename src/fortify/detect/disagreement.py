"""Disagreement between the members of an ensemble as a detector.

Adversarial points crafted against one model transfer imperfectly to others, so members that agree on
clean inputs may disagree on attacked ones. The score is the mean total-variation distance between each
member's softmax and the ensemble's mean softmax, ``mean_k 0.5 * || p_k(x) - mean_j p_j(x) ||_1``, in
``[0, 1]``. Differentiable: adaptive evaluation attacks all members and the disagreement together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fortify.detect.base import Detector
from fortify.model import Classifier
from fortify.types import FortifyError


class Disagreement(Detector):
    """Mean total-variation distance of the members' softmax to their average; ``(N,)`` in ``[0, 1]``.

    ``members``: two or more classifiers over the same classes and bounds (``ft.Guard`` passes its
    models; ``bind`` takes an ``Ensemble``'s members).
    """

    name = "disagreement"

    def __init__(self, members: Sequence[Classifier] | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList()
        if members is not None:
            self._set(list(members))

    def _set(self, members: list[Classifier]) -> None:
        if len(members) < 2 or not all(isinstance(m, Classifier) for m in members):
            raise FortifyError("Disagreement needs at least two fortify Classifiers")
        self.members = nn.ModuleList(members)

    def bind(self, clf: Classifier) -> Disagreement:
        inner = getattr(clf, "module", None)
        members = getattr(inner, "members", None)
        if members is None:
            raise FortifyError("Disagreement needs an ensemble: Disagreement([clf_a, clf_b, ...])")
        self._set(list(members))
        return self

    def forward(self, x: Tensor) -> Tensor:
        if len(self.members) < 2:
            raise FortifyError("Disagreement has no members: Disagreement([clf_a, clf_b])")
        probs = torch.stack([member(x).softmax(dim=1) for member in self.members])
        return 0.5 * (probs - probs.mean(dim=0)).abs().sum(dim=2).mean(dim=0)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "members": len(self.members)}
