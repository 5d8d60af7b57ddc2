"""The guard's policy as one detector: flagged exactly when the guard would not ACCEPT an input.

``ft.evaluate`` judges and attacks a classifier together with its ``detector``: an attack point is a
break only if it is misclassified and not flagged, and the detector is put in the attack objective
(``fortify.evaluation.detection``). ``GuardPolicy`` makes the whole guard policy that detector: its
score is ``max_k (s_k(x) - t_k) / w_k`` over the guard's detectors (score ``s_k``, review threshold
``t_k``, spread ``w_k`` of ``s_k`` on clean data, which only balances the gradients), with the
confidence rule as one more term (``(c_min - confidence) / w``), and its threshold is 0. So "flagged"
means "some detector is above its review threshold or the confidence is below the minimum", i.e. the
verdict is REVIEW or REJECTED, and "broken" means *misclassified and ACCEPTED*.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fortify.detect.base import Detector
from fortify.model import Classifier


class GuardPolicy(Detector):
    """``max`` of the normalised margins of ``detectors`` and of the confidence rule; threshold 0.

    ``detectors`` must be calibrated; ``spreads`` (one per detector, > 0) scale their margins;
    ``pipeline`` is the guarded classifier whose softmax confidence the rule reads (used only when
    ``min_confidence > 0``).
    """

    name = "guard-policy"
    spreads: Tensor
    thresholds: Tensor
    pipeline: list[Classifier]

    def __init__(
        self,
        detectors: Sequence[Detector],
        spreads: Sequence[float],
        pipeline: Classifier,
        min_confidence: float,
    ) -> None:
        super().__init__()
        self.detectors = nn.ModuleList(detectors)
        self.register_buffer("spreads", torch.tensor([float(s) for s in spreads]), persistent=False)
        self.register_buffer("thresholds", torch.tensor([d.threshold for d in detectors]), persistent=False)
        self.pipeline = [pipeline]  # a list, so that the pipeline is not a sub-module twice
        self.min_confidence = float(min_confidence)
        self.differentiable = all(d.differentiable for d in detectors)
        self.randomized = any(d.randomized for d in detectors)
        self._threshold = 0.0
        self.eval()

    def margins(self, x: Tensor) -> Tensor:
        """``(N, K')`` normalised margins: > 0 where that rule flags the input."""
        columns = [
            (det(x) - self.thresholds[k].to(x.dtype)) / self.spreads[k].to(x.dtype)
            for k, det in enumerate(self.detectors)
        ]
        if self.min_confidence > 0:
            confidence = self.pipeline[0](x).softmax(dim=1).amax(dim=1)
            columns.append((self.min_confidence - confidence) / 0.05)
        if not columns:
            return torch.full((x.shape[0], 1), -1.0, dtype=x.dtype, device=x.device)
        return torch.stack(columns, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.margins(x).amax(dim=1)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "detectors": [d.describe() for d in self.detectors if isinstance(d, Detector)],
            "min_confidence": self.min_confidence,
        }
