"""The adversarial points of a few broken samples, kept while an evaluation runs, for the report.

The ledger offers every sample at the moment an attack first breaks it, with the very point that broke
it. The gallery keeps at most ``limit`` of them, so memory stays at ``limit`` images however large the
evaluation: the first ones offered, except that a sample of a class not shown yet takes the place of
the latest-kept sample of the class shown most often. It therefore shows as many classes as it can,
and the same run keeps the same samples.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from torch import Tensor

from fortify.result.gallery import MAX_VALUES, GalleryEntry, encode_pixels
from fortify.types import Bounds

if TYPE_CHECKING:
    from fortify.evaluation.ledger import Ledger

MAX_ENTRIES = 8
MAX_TOTAL_VALUES = 8 * 3 * 32 * 32
"""Pixel values kept per kind (clean, adversarial) over all entries: 8 CIFAR-sized entries, 2 of 3x64x64.
This bounds what the gallery adds to a result's JSON (at most about 0.3 MB, typically far less)."""


class Gallery:
    """Up to ``limit`` adversarial points ``(C, H, W)`` of broken samples (``limit=0`` keeps none)."""

    def __init__(self, bounds: Bounds, limit: int = MAX_ENTRIES) -> None:
        self.bounds = bounds
        self.limit = limit
        self.points: dict[int, tuple[int, Tensor]] = {}  # sample index -> (label, adversarial point)

    @classmethod
    def for_inputs(cls, x: Tensor, bounds: Bounds, limit: int = MAX_ENTRIES) -> Gallery:
        """A gallery for ``x`` if it is a batch of greyscale or RGB images ``(N, 1 or 3, H, W)`` with
        ``C * H * W <= MAX_VALUES`` (keeping at most ``MAX_TOTAL_VALUES`` values per kind), else one
        that keeps nothing."""
        values = math.prod(x.shape[1:])
        fits = x.dim() == 4 and x.shape[1] in (1, 3) and 0 < values <= MAX_VALUES
        return cls(bounds, min(limit, MAX_TOTAL_VALUES // values) if fits else 0)

    def offer(self, idx: Tensor, labels: Tensor, x_adv: Tensor) -> None:
        """Samples ``idx`` ``(K,)`` with true ``labels`` ``(K,)`` were just broken at points ``x_adv``."""
        for row, (i, label) in enumerate(zip(idx.tolist(), labels.tolist(), strict=True)):
            if self._make_room(label):
                # a copy, so the kept row does not hold on to the whole batch it was sliced from
                self.points[i] = (label, x_adv[row].detach().to("cpu", copy=True))

    def _make_room(self, label: int) -> bool:
        if len(self.points) < self.limit:
            return True
        counts = Counter(kept_label for kept_label, _ in self.points.values())
        crowded = max(counts.values(), default=0)
        if label in counts or crowded < 2:
            return False
        victim = next(i for i in reversed(self.points) if counts[self.points[i][0]] == crowded)
        del self.points[victim]
        return True

    def entries(self, ledger: Ledger) -> list[GalleryEntry] | None:
        """The kept samples in index order, described by ``ledger``'s records; ``None`` if this gallery
        keeps nothing (inputs that do not fit, or ``limit=0``), ``[]`` if no sample was broken."""
        if self.limit == 0:
            return None
        return [
            GalleryEntry(
                index=i,
                label=label,
                clean_pred=int(ledger.clean_pred[i]),
                adv_pred=int(ledger.adv_pred[i]),
                attack=str(ledger.broken_by[i]),
                perturbation_norm=float(ledger.pert_norm[i]),
                shape=list(point.shape),
                bounds=self.bounds,
                clean=encode_pixels(ledger.x[i]),
                adversarial=encode_pixels(point),
            )
            for i, (label, point) in sorted(self.points.items())
        ]
