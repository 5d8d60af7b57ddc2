"""A scikit-learn classifier as a ``BlackBox``: ``predict_proba`` scores or ``predict`` labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from fortify.model.blackbox import BlackBox, Output
from fortify.model.classifier import DEFAULT_BATCH_SIZE
from fortify.types import FortifyError


def from_sklearn(
    estimator: Any,
    *,
    bounds: Sequence[float] = (0.0, 1.0),
    output: Output = "scores",
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BlackBox:
    """A ``BlackBox`` over a fitted scikit-learn classifier: ``predict_proba`` scores or ``predict`` labels.

    Inputs ``(N, ...)`` are flattened to ``(N, F)`` float64 rows. The estimator's ``classes_`` must be
    ``0 .. C-1`` so its columns line up with fortify's integer labels.
    """
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise FortifyError(f"{type(estimator).__name__} is not a fitted classifier (no classes_)")
    classes = np.asarray(classes)
    if classes.dtype.kind not in "iu" or not np.array_equal(classes, np.arange(len(classes))):
        raise FortifyError(f"the estimator's classes_ must be 0..C-1, got {classes.tolist()!r}")
    method = "predict_proba" if output == "scores" else "predict"
    if not hasattr(estimator, method):
        raise FortifyError(f"{type(estimator).__name__} has no {method}; use output='labels'")
    call = getattr(estimator, method)

    def fn(x: Tensor) -> np.ndarray:
        return np.asarray(call(x.reshape(x.shape[0], -1).cpu().double().numpy()))

    return BlackBox(fn, len(classes), bounds, output, batch_size=batch_size)
