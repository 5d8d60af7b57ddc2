"""Detectors by name, for the guard's constructor, its bundle and the CLI (``--detectors squeeze,...``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fortify.detect import (
    STRIP,
    Confidence,
    Detector,
    Disagreement,
    FeatureSqueezing,
    InputStatistics,
    Mahalanobis,
)
from fortify.types import FortifyError

DETECTORS: dict[str, Callable[..., Detector]] = {
    "squeeze": FeatureSqueezing,
    "mahalanobis": Mahalanobis,
    "confidence": Confidence,
    "entropy": lambda **kw: Confidence(kind="entropy", **kw),
    "input-stats": InputStatistics,
    "disagreement": Disagreement,
    "strip": STRIP,
}
DEFAULT_DETECTORS = ("squeeze", "mahalanobis", "input-stats")


def make_detector(name: str, **params: Any) -> Detector:
    """A fresh, unbound detector called ``name`` (one of ``DETECTORS``) with keyword ``params``."""
    if name not in DETECTORS:
        raise FortifyError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    try:
        return DETECTORS[name](**params)
    except TypeError as exc:
        raise FortifyError(f"bad parameters for detector {name!r}: {exc}") from exc


def detector_name(det: Detector) -> str:
    """The registry name of ``det`` (``"entropy"`` for an entropy-kind Confidence)."""
    if isinstance(det, Confidence) and det.kind == "entropy":
        return "entropy"
    return det.name
