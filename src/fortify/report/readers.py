"""Moved to ``fortify.result.readers`` (readers sit beside the Result); this module keeps the old import
path working."""

from fortify.result.readers import (
    CURVE_POINTS,
    ClassRow,
    Curve,
    calibration_label,
    certification_curve,
    certified_accuracy_at,
    class_rows,
    detector_label,
    guard_added_latency_ms,
    guard_review_rate,
    latency_ms,
    robust_accuracy_at,
    robustness_curves,
    threat_label,
)

__all__ = [
    "CURVE_POINTS",
    "Curve",
    "ClassRow",
    "threat_label",
    "detector_label",
    "calibration_label",
    "robustness_curves",
    "robust_accuracy_at",
    "class_rows",
    "certification_curve",
    "certified_accuracy_at",
    "latency_ms",
    "guard_review_rate",
    "guard_added_latency_ms",
]
