"""The detector contract: score inputs, calibrate a threshold at a target false-positive rate, flag.

A ``Detector`` is an ``nn.Module`` whose ``forward`` (``score``) maps a batch ``(N, ...)`` in the
classifier's bounds to suspicion scores ``(N,)``, higher meaning more likely adversarial. It flags an
input when its score is above ``threshold``, which ``calibrate`` sets from clean data: the
``(1 - fpr)`` quantile of their scores, so that about a fraction ``fpr`` of clean inputs is flagged
(Alibi Detect's shape: fit on reference data, infer the threshold from a target FPR, score, predict).
What to do with a flagged input (reject, review) is the caller's policy, not the detector's.

Like preprocessing components (``fortify.defenses.preprocess``), a detector declares ``differentiable``
(its autograd gradient is informative) and ``randomized`` (each call draws fresh randomness), and its
sub-modules may declare them too, so that adaptive evaluation attacks it with BPDA and EOT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fortify._validate import is_number, number
from fortify.types import FortifyError

DEFAULT_FPR = 0.05


class Detector(nn.Module):
    """Base class: subclasses implement ``forward(x) -> (N,)`` scores and set the two flags."""

    differentiable: bool = True
    randomized: bool = False

    def __init__(self) -> None:
        super().__init__()
        self._threshold: float | None = None
        self._fpr: float | None = None
        self._source: dict[str, object] | None = None

    @property
    def calibrated(self) -> bool:
        return self._threshold is not None

    @property
    def threshold(self) -> float:
        """Scores above it are flagged; set by ``calibrate`` (or assigned directly)."""
        if self._threshold is None:
            raise FortifyError(
                f"{type(self).__name__} is not calibrated: call .calibrate(x_clean, fpr=0.05) first"
            )
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold, self._fpr = number("threshold", value, finite=True), None
        self._source = None

    def score(self, x: Tensor) -> Tensor:
        """Differentiable suspicion scores ``(N,)`` for inputs ``(N, ...)``; higher is more suspicious."""
        if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise FortifyError(f"a detector scores a non-empty batch (N, ...), got {shape}")
        scores = self(x)
        if scores.shape != (x.shape[0],):
            raise FortifyError(f"{type(self).__name__} returned scores of shape {tuple(scores.shape)}")
        return scores

    @torch.no_grad()
    def scores(self, x: Tensor, *, batch_size: int = 512) -> Tensor:
        """``score`` without gradients, in batches of ``batch_size``."""
        return torch.cat([self.score(chunk) for chunk in x.split(batch_size)])

    def flagged(self, x: Tensor, *, batch_size: int = 512) -> Tensor:
        """Boolean ``(N,)``: ``score(x) > threshold``."""
        threshold = self.threshold
        return self.scores(x, batch_size=batch_size) > threshold

    def calibrate(
        self,
        x_clean: Tensor,
        fpr: float = DEFAULT_FPR,
        *,
        batch_size: int = 512,
        source: Mapping[str, object] | None = None,
    ) -> Detector:
        """Set ``threshold`` to the ``(1 - fpr)`` quantile of the scores of clean inputs; returns self.

        Exactly ``floor(fpr * n)`` of the ``n`` clean inputs score above it (fewer only where scores
        tie), so on fresh clean data from the same distribution the false-positive rate is ``fpr`` up
        to sampling error. Needs at least ``1 / fpr`` clean samples. ``source`` says where ``x_clean``
        came from (``dataset``, ``split``, ``start``, ``n``); ``describe`` then records it as
        ``calibration``.
        """
        if not is_number(fpr) or not 0.0 < fpr < 1.0:
            raise FortifyError(f"fpr must be a fraction strictly between 0 and 1, got {fpr!r}")
        n = x_clean.shape[0] if isinstance(x_clean, Tensor) and x_clean.dim() >= 1 else 0
        if n < math.ceil(1.0 / fpr):
            raise FortifyError(
                f"calibrating at fpr={fpr:g} needs at least {math.ceil(1.0 / fpr)} clean samples, got {n}"
            )
        scores = self.scores(x_clean, batch_size=batch_size).double()
        if not bool(torch.isfinite(scores).all()):
            raise FortifyError(f"{type(self).__name__} gave NaN or infinite scores on the clean samples")
        above = math.floor(fpr * n)
        self._threshold = float(scores.sort().values[n - 1 - above])
        self._fpr = float(fpr)
        self._source = dict(source) if source is not None else None
        return self

    def describe(self) -> dict[str, object]:
        """JSON-ready description: name, flags, threshold, the FPR it was calibrated at and, when
        ``calibrate`` was told, where its clean data came from (``calibration``)."""
        info: dict[str, object] = {
            "name": type(self).__name__,
            "differentiable": self.differentiable,
            "randomized": self.randomized,
            "threshold": self._threshold,
            "fpr": self._fpr,
        }
        if self._source is not None:
            info["calibration"] = dict(self._source)
        return info
