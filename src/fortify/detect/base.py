"""The detector contract: score inputs, calibrate a threshold at a target false-positive rate, flag.

A ``Detector`` is an ``nn.Module`` whose ``forward`` (``score``) maps a batch ``(N, ...)`` in the
classifier's bounds to suspicion scores ``(N,)``, higher meaning more likely adversarial. It flags an
input when its score is above ``threshold``, which ``calibrate`` sets from clean data: the
``(1 - fpr)`` quantile of their scores, so that about a fraction ``fpr`` of clean inputs is flagged
(Alibi Detect's shape: fit on reference data, infer the threshold from a target FPR, score, predict).
What to do with a flagged input (reject, review) is the caller's policy, not the detector's.

Detectors that read the protected model (feature squeezing, Mahalanobis, confidence) may be built
without one and ``bind``-ed later (``ft.Guard`` binds them to its pipeline). Detectors with a model of
clean data (``fits = True``: Mahalanobis, input statistics) ``fit`` it on the first half of the
calibration set and set the threshold on the second half, so that the false-positive rate is measured on
inputs the fit did not see.

Like preprocessing components (``fortify.defenses.preprocess``), a detector declares ``differentiable``
(its autograd gradient is informative) and ``randomized`` (each call draws fresh randomness), and its
sub-modules may declare them too, so that adaptive evaluation attacks it with BPDA and EOT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from fortify._validate import is_number, number
from fortify.types import FortifyError

if TYPE_CHECKING:
    from fortify.model import Classifier

DEFAULT_FPR = 0.05


def threshold_at(scores: Tensor, fpr: float) -> float:
    """The ``(1 - fpr)`` order statistic of ``scores`` ``(n,)``: exactly ``floor(fpr * n)`` lie above it
    (fewer only where scores tie)."""
    n = scores.shape[0]
    above = math.floor(fpr * n)
    return float(scores.double().sort().values[n - 1 - above])


def check_fpr(fpr: float, name: str = "fpr") -> float:
    """``fpr`` as a float if it is a number strictly between 0 and 1."""
    if not is_number(fpr) or not 0.0 < fpr < 1.0:
        raise FortifyError(f"{name} must be a fraction strictly between 0 and 1, got {fpr!r}")
    return float(fpr)


class Detector(nn.Module):
    """Base class: subclasses implement ``forward(x) -> (N,)`` scores and set the two flags.

    ``fits`` (False): the detector has a model of clean data that ``fit(x, y)`` estimates before the
    threshold is calibrated. ``name`` is the short name used in verdicts, bundles and the CLI.
    """

    differentiable: bool = True
    randomized: bool = False
    fits: bool = False
    name: str = "detector"

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

    def bind(self, clf: Classifier) -> Detector:
        """Attach the classifier this detector protects (a no-op for detectors that read only inputs)."""
        return self

    def fit(self, x: Tensor, y: Tensor | None = None) -> None:
        """Estimate the model of clean data (``fits`` detectors only); ``y`` are labels or None."""

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
        y: Tensor | None = None,
        batch_size: int = 512,
        source: Mapping[str, object] | None = None,
    ) -> Detector:
        """Set ``threshold`` to the ``(1 - fpr)`` quantile of the scores of clean inputs; returns self.

        Exactly ``floor(fpr * n)`` of the ``n`` clean inputs scored score above it (fewer only where
        scores tie), so on fresh clean data from the same distribution the false-positive rate is ``fpr``
        up to sampling error. Needs at least ``1 / fpr`` clean samples. A ``fits`` detector first fits
        its model on the first half of ``x_clean`` (with labels ``y`` where it uses them) and scores
        only the second half, which then must hold ``1 / fpr`` samples. ``source`` says where
        ``x_clean`` came from (``dataset``, ``split``, ``start``, ``n``); ``describe`` then records it as
        ``calibration``.
        """
        fpr = check_fpr(fpr)
        n = x_clean.shape[0] if isinstance(x_clean, Tensor) and x_clean.dim() >= 1 else 0
        need = math.ceil(1.0 / fpr) * (2 if self.fits else 1)
        if n < need:
            raise FortifyError(
                f"calibrating {self.name} at fpr={fpr:g} needs at least {need} clean samples, got {n}"
            )
        if self.fits:
            half = n // 2
            self.fit(x_clean[:half], None if y is None else y[:half])
            x_clean = x_clean[half:]
        scores = self.scores(x_clean, batch_size=batch_size).double()
        if not bool(torch.isfinite(scores).all()):
            raise FortifyError(f"{type(self).__name__} gave NaN or infinite scores on the clean samples")
        self._threshold = threshold_at(scores, fpr)
        self._fpr = fpr
        self._source = dict(source) if source is not None else None
        return self

    def describe(self) -> dict[str, object]:
        """JSON-ready description: name, flags, threshold, the FPR it was calibrated at and, when
        ``calibrate`` was told, where its clean data came from (``calibration``)."""
        info: dict[str, object] = {
            "name": type(self).__name__,
            "short_name": self.name,
            "differentiable": self.differentiable,
            "randomized": self.randomized,
            "threshold": self._threshold,
            "fpr": self._fpr,
        }
        if self._source is not None:
            info["calibration"] = dict(self._source)
        return info
