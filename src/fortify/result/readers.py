"""Reading the numbers the report, MLflow and the gate need out of one or more Results.

Optional parts of a Result (sweep, slices, calibration, certification) may be absent; every reader
returns ``None`` or an empty list then, never raises for a missing part.

The certification section (``fortify.result.sections.CertificationSection``) gives the curve as
``radii`` / ``certified_accuracy``, or per sample (``samples``: ``radius`` the certified L2 radius of
the prediction, ``correct`` whether it equals the label; abstentions have ``correct`` false).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fortify.result.identity import IDENTITY, ModelIdentity
from fortify.result.schema import Result
from fortify.result.sections import CalibrationRecord, CertificationSection, DetectorRecord

MAX_GALLERY = 8
"""Samples a report's gallery shows at most."""
CURVE_POINTS = 200
"""Radii at which a curve is drawn from per-sample certified radii (dense enough to look like steps)."""


@dataclass(frozen=True)
class Curve:
    """Accuracy at increasing radii: ``name`` labels it, ``xs`` are radii, ``ys`` accuracies in [0, 1]."""

    name: str
    xs: list[float]
    ys: list[float]


@dataclass(frozen=True)
class ClassRow:
    """Clean and robust accuracy on one slice (a true class or a user group) of one result."""

    kind: str
    key: str
    n: int
    clean_accuracy: float
    robust_accuracy: float


def threat_label(result: Result) -> str:
    return f"{result.threat.norm} {result.threat.eps:g}" if result.threat else "no threat"


def model_identity(result: Result) -> ModelIdentity | None:
    """``result.model["identity"]`` (architecture, parameters, weights file and SHA-256, training run)
    when it is recorded and well-formed, else ``None`` (Results before 1.5, models built in memory)."""
    raw = result.model.get("identity")
    if not isinstance(raw, dict):
        return None
    try:
        return IDENTITY.validate_python(raw)
    except ValidationError:
        return None


def model_label(result: Result) -> str:
    """What the report calls the model: its identity's architecture, else its module's class name."""
    identity = model_identity(result) or {}
    return str(
        identity.get("architecture") or result.model.get("module") or result.model.get("arch") or "model"
    )


def detector_label(record: DetectorRecord) -> str:
    """``FeatureSqueezing (BitDepth bits=5, MedianFilter size=2)`` from a ``Result.detector`` record."""
    parts = [
        str(part.get("name", "?"))
        + "".join(f" {k}={v}" for k, v in part.items() if k not in ("name", "bounds"))
        for part in record.get("squeezers") or []
        if isinstance(part, dict)
    ]
    name = str(record.get("name", "detector"))
    return f"{name} ({', '.join(parts)})" if parts else name


def calibration_label(calibration: CalibrationRecord) -> str:
    """Where a detector was calibrated, e.g. ``1000 clean train images of fashion-mnist, from index 0``."""
    return (
        f"{calibration.get('n', '?')} clean {calibration.get('split', '?')} images of "
        f"{calibration.get('dataset', '?')}, from index {calibration.get('start', 0)}"
    )


def pick_samples(result: Result, n: int, limit: int = MAX_GALLERY) -> list[int]:
    """Indices to show: samples an attack broke first (the interesting ones), then robust ones."""
    records = [s for s in result.samples if 0 <= s.index < n]
    broken = [s.index for s in records if s.clean_correct and not s.robust]
    robust = [s.index for s in records if s.robust]
    chosen = (broken + robust)[:limit]
    return chosen or list(range(min(n, limit)))


def robustness_curves(results: Sequence[Result]) -> list[Curve]:
    """Robust accuracy against eps: each result's sweep, plus one curve per norm across several results.

    A curve starts at eps 0 with the clean accuracy. Results measured at distinct radii of the same
    norm (e.g. one ``evaluate`` per eps) form a curve when there are at least two of them.
    """
    curves: list[Curve] = []
    for result in results:
        sweep = getattr(result, "sweep", None)
        if sweep is not None and sweep.epsilons:
            xs, ys = [0.0, *sweep.epsilons], [sweep.clean_accuracy, *sweep.robust_accuracy]
            if sweep.epsilons[0] == 0.0:
                xs, ys = list(sweep.epsilons), list(sweep.robust_accuracy)
            curves.append(Curve(f"{sweep.norm} sweep ({sweep.method})", xs, ys))
    by_norm: dict[str, dict[float, float]] = {}
    clean: dict[str, list[float]] = {}
    for result in results:
        if result.threat is not None and result.robust_accuracy is not None:
            by_norm.setdefault(result.threat.norm, {})[result.threat.eps] = result.robust_accuracy
            if result.clean_accuracy is not None:
                clean.setdefault(result.threat.norm, []).append(result.clean_accuracy)
    for norm, points in by_norm.items():
        if len(points) < 2:
            continue
        name = f"{norm}, {len(points)} evaluations"
        if 0.0 not in points and clean.get(norm):
            points = {0.0: min(clean[norm]), **points}  # eps 0 is the clean accuracy
        eps = sorted(points)
        curves.append(Curve(name, eps, [points[e] for e in eps]))
    return curves


def robust_accuracy_at(results: Sequence[Result], eps: float, norm: str | None = None) -> float | None:
    """The lowest robust accuracy measured at radius ``eps`` (of ``norm`` when given), or ``None``.

    Looks at results whose threat has this radius and at sweep points with this radius; the lowest
    (most pessimistic) value wins when several measured it.
    """
    found: list[float] = []
    for result in results:
        threat = result.threat
        if (
            threat is not None
            and result.robust_accuracy is not None
            and math.isclose(threat.eps, eps)
            and (norm is None or threat.norm == norm)
        ):
            found.append(result.robust_accuracy)
        sweep = getattr(result, "sweep", None)
        if sweep is not None and (norm is None or sweep.norm == norm):
            found += [
                acc
                for e, acc in zip(sweep.epsilons, sweep.robust_accuracy, strict=False)
                if math.isclose(e, eps)
            ]
    return min(found) if found else None


def class_rows(result: Result, class_names: Sequence[str] | None = None) -> list[ClassRow]:
    """Per-class and per-group accuracy: the result's slices if it has them, else computed from samples."""
    slices = getattr(result, "slices", None) or []
    if slices:
        rows = [ClassRow(s.kind, s.key, s.n, s.clean_accuracy, s.robust_accuracy) for s in slices]
    else:
        rows = _rows_from_samples(result, "class", lambda s: str(s.label))
        rows += _rows_from_samples(result, "group", lambda s: s.group)
    if class_names is None:
        return rows
    return [
        ClassRow(r.kind, _class_key(r.key, class_names), r.n, r.clean_accuracy, r.robust_accuracy)
        if r.kind == "class"
        else r
        for r in rows
    ]


def _class_key(key: str, class_names: Sequence[str]) -> str:
    return f"{key} {class_names[int(key)]}" if key.isdigit() and int(key) < len(class_names) else key


def _rows_from_samples(result: Result, kind: str, key_of: Any) -> list[ClassRow]:
    buckets: dict[str, list[Any]] = {}
    for sample in result.samples:
        key = key_of(sample)
        if key is not None:
            buckets.setdefault(key, []).append(sample)
    order = sorted(buckets, key=lambda k: (0, int(k)) if k.isdigit() else (1, k))
    return [
        ClassRow(
            kind,
            key,
            len(buckets[key]),
            sum(s.clean_correct for s in buckets[key]) / len(buckets[key]),
            sum(s.robust for s in buckets[key]) / len(buckets[key]),
        )
        for key in order
    ]


def certification_curve(result: Result) -> Curve | None:
    """Certified accuracy against L2 radius from ``sections["certification"]``, or ``None``."""
    section = result.sections.get("certification")
    if section is None:
        return None
    radii, accuracy = section.get("radii"), section.get("certified_accuracy")
    if radii is not None and accuracy is not None and len(radii) == len(accuracy):
        return Curve("certified accuracy", list(radii), list(accuracy))
    samples = _certified_samples(section)
    if not samples:
        return None
    top = max(r for r, _ in samples)
    radii = [top * i / CURVE_POINTS for i in range(CURVE_POINTS + 1)] if top > 0 else [0.0]
    return Curve("certified accuracy", radii, [_fraction_certified(samples, r) for r in radii])


def certified_accuracy_at(result: Result, radius: float) -> float | None:
    """Certified accuracy at L2 ``radius``: exact from per-sample radii, else a lower bound from the curve.

    From a curve, the value at the smallest listed radius >= ``radius`` is used (certified accuracy
    cannot rise with the radius); ``None`` when nothing covers ``radius``.
    """
    section = result.sections.get("certification")
    if section is None:
        return None
    samples = _certified_samples(section)
    if samples:
        return _fraction_certified(samples, radius)
    curve = certification_curve(result)
    if curve is None:
        return None
    covering = [y for x, y in zip(curve.xs, curve.ys, strict=True) if x >= radius - 1e-12]
    return covering[0] if covering else None


def _certified_samples(section: CertificationSection) -> list[tuple[float, bool]]:
    """``(radius, correct)`` of the section's samples that record both."""
    return [
        (float(r.get("radius") or 0.0), bool(r["correct"]))
        for r in section.get("samples", [])
        if "correct" in r
    ]


def _fraction_certified(samples: list[tuple[float, bool]], radius: float) -> float:
    return sum(1 for r, correct in samples if correct and r >= radius) / len(samples)


def latency_ms(result: Result) -> float | None:
    """Clean inference latency per sample in milliseconds.

    ``timing["latency_ms"]`` when the producer measured it, else the clean-prediction time of the
    evaluation (``timing["clean_s"]``) divided by the number of samples; ``None`` when neither exists.
    """
    if "latency_ms" in result.timing:
        return float(result.timing["latency_ms"])
    if "clean_s" in result.timing and result.n_samples > 0:
        return 1000.0 * result.timing["clean_s"] / result.n_samples
    return None


def guard_review_rate(result: Result) -> float | None:
    """A guard Result's share of clean inputs not ACCEPTED (``sections["guard"]``), else None."""
    section = result.sections.get("guard")
    value = section.get("clean_review_rate") if isinstance(section, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def guard_added_latency_ms(result: Result) -> float | None:
    """A guard Result's one-input p50 latency minus its bare model's, in ms, else None."""
    section = result.sections.get("guard")
    latency = section.get("latency_ms") if isinstance(section, dict) else None
    value = latency.get("added_single_p50") if isinstance(latency, dict) else None
    return float(value) if isinstance(value, (int, float)) else None
