"""A Result is evidence: the checks every Result passes before a report, tracking or the gate reads it.

Schema validation says each field has the right type; these checks say the numbers can be true:
accuracies and rates finite and in [0, 1], counts consistent with ``n_samples``, a sweep's lists of
equal length, radii and epsilons finite and >= 0, times finite and >= 0. ``check_evidence`` raises
``BadEvidenceError`` naming the first impossible field (``per_attack[1].n_succeeded: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fortify.result.schema import Result
from fortify.types import FortifyError

_SLACK = 1e-9
"""Rounding allowed when comparing fractions computed from the same counts."""


class BadEvidenceError(FortifyError):
    """A Result holds a number that no honest measurement could produce."""


Problem = tuple[str, str]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(field: str, value: Any) -> Iterator[Problem]:
    if value is None:
        return
    if not _finite(value) or not 0.0 <= value <= 1.0:
        yield field, f"must be a finite fraction in [0, 1], got {value!r}"


def _non_negative(field: str, value: Any) -> Iterator[Problem]:
    if value is None:
        return
    if not _finite(value) or value < 0:
        yield field, f"must be a finite number >= 0, got {value!r}"


def _count(field: str, value: Any, high: int | None = None, of: str = "n_samples") -> Iterator[Problem]:
    if value < 0 or (high is not None and value > high):
        span = f"in [0, {of} = {high}]" if high is not None else ">= 0"
        yield field, f"must be a count {span}, got {value!r}"


def _fractions(field: str, values: Sequence[Any]) -> Iterator[Problem]:
    for i, value in enumerate(values):
        yield from _fraction(f"{field}[{i}]", value)


def _headline(result: Result) -> Iterator[Problem]:
    yield from _count("n_samples", result.n_samples)
    yield from _fraction("clean_accuracy", result.clean_accuracy)
    yield from _fraction("robust_accuracy", result.robust_accuracy)
    yield from _fraction("attack_success_rate", result.attack_success_rate)
    if result.threat is not None:
        yield from _non_negative("threat.eps", result.threat.eps)
    clean, robust = result.clean_accuracy, result.robust_accuracy
    if (
        result.kind == "evaluation" and _finite(clean) and _finite(robust) and robust > clean + _SLACK  # type: ignore[operator]
    ):
        yield "robust_accuracy", f"{robust!r} exceeds clean_accuracy {clean!r} (robust needs clean-correct)"
    for key, seconds in result.timing.items():
        yield from _non_negative(f"timing.{key}", seconds)


def _attacks(result: Result) -> Iterator[Problem]:
    for i, record in enumerate(result.per_attack):
        where = f"per_attack[{i}]"
        yield from _count(f"{where}.n_attacked", record.n_attacked, result.n_samples)
        yield from _count(f"{where}.n_succeeded", record.n_succeeded, record.n_attacked, "n_attacked")
        yield from _fraction(f"{where}.accuracy", record.accuracy)
        yield from _fraction(f"{where}.cumulative_accuracy", record.cumulative_accuracy)
        yield from _non_negative(f"{where}.time_s", record.time_s)
        yield from _non_negative(f"{where}.forward_passes", record.forward_passes)
        yield from _non_negative(f"{where}.backward_passes", record.backward_passes)


def _samples(result: Result) -> Iterator[Problem]:
    if len(result.samples) > result.n_samples:
        yield "samples", f"holds {len(result.samples)} records for n_samples {result.n_samples}"
    for i, sample in enumerate(result.samples):
        where = f"samples[{i}]"
        yield from _count(f"{where}.index", sample.index)
        if sample.robust and not sample.clean_correct:
            yield f"{where}.robust", "is true for a sample that is not clean-correct"
        yield from _non_negative(f"{where}.perturbation_norm", sample.perturbation_norm)
        yield from _non_negative(f"{where}.min_distance", sample.min_distance)
        yield from _fraction(f"{where}.clean_confidence", sample.clean_confidence)
        yield from _fraction(f"{where}.adv_confidence", sample.adv_confidence)
        if sample.queries is not None:
            yield from _count(f"{where}.queries", sample.queries)
        if sample.iterations is not None:
            yield from _count(f"{where}.iterations", sample.iterations)


def _slices_and_calibration(result: Result) -> Iterator[Problem]:
    for i, piece in enumerate(result.slices):
        yield from _count(f"slices[{i}].n", piece.n, result.n_samples)
        yield from _fraction(f"slices[{i}].clean_accuracy", piece.clean_accuracy)
        yield from _fraction(f"slices[{i}].robust_accuracy", piece.robust_accuracy)
    calibration = result.calibration
    if calibration is None:
        return
    if calibration.bins < 1 or len(calibration.bin_edges) != calibration.bins + 1:
        yield "calibration.bin_edges", f"needs bins + 1 edges, got {len(calibration.bin_edges)}"
    yield from _fractions("calibration.bin_edges", calibration.bin_edges)
    yield from _fraction("calibration.ece_clean", calibration.ece_clean)
    yield from _fraction("calibration.ece_adversarial", calibration.ece_adversarial)
    for name in ("clean_histogram", "adversarial_histogram"):
        counts = getattr(calibration, name)
        if counts and len(counts) != calibration.bins:
            yield f"calibration.{name}", f"needs {calibration.bins} bins, got {len(counts)}"
        for j, value in enumerate(counts):
            yield from _count(f"calibration.{name}[{j}]", value, result.n_samples or None)


def _sweep(result: Result) -> Iterator[Problem]:
    sweep = result.sweep
    if sweep is None:
        return
    if len(sweep.epsilons) != len(sweep.robust_accuracy):
        yield (
            "sweep.robust_accuracy",
            (f"has {len(sweep.robust_accuracy)} values for {len(sweep.epsilons)} epsilons"),
        )
    if sweep.time_s and len(sweep.time_s) != len(sweep.epsilons):
        yield "sweep.time_s", f"has {len(sweep.time_s)} values for {len(sweep.epsilons)} epsilons"
    for i, eps in enumerate(sweep.epsilons):
        yield from _non_negative(f"sweep.epsilons[{i}]", eps)
    yield from _fractions("sweep.robust_accuracy", sweep.robust_accuracy)
    yield from _fraction("sweep.clean_accuracy", sweep.clean_accuracy)
    for i, seconds in enumerate(sweep.time_s):
        yield from _non_negative(f"sweep.time_s[{i}]", seconds)


def _certification(section: Mapping[str, Any]) -> Iterator[Problem]:
    where = "sections.certification"
    for key in ("sigma", "max_radius"):
        yield from _non_negative(f"{where}.{key}", section.get(key))
    for key in ("alpha", "abstain_rate"):
        yield from _fraction(f"{where}.{key}", section.get(key))
    for key in ("n0", "n"):
        if section.get(key) is not None:
            yield from _count(f"{where}.{key}", section[key])
    radii, accuracy = section.get("radii"), section.get("certified_accuracy")
    if radii is not None and accuracy is not None and len(radii) != len(accuracy):
        yield f"{where}.certified_accuracy", f"has {len(accuracy)} values for {len(radii)} radii"
    for i, radius in enumerate(radii or []):
        yield from _non_negative(f"{where}.radii[{i}]", radius)
    yield from _fractions(f"{where}.certified_accuracy", accuracy or [])
    for i, sample in enumerate(section.get("samples") or []):
        yield from _non_negative(f"{where}.samples[{i}].radius", sample.get("radius"))
        yield from _fraction(f"{where}.samples[{i}].p_lower", sample.get("p_lower"))


def _guard(section: Mapping[str, Any]) -> Iterator[Problem]:
    """The numbers the gate reads from a guard section (its producer describes the rest)."""
    rate = section.get("clean_review_rate")
    if rate is not None:
        yield from _fraction("sections.guard.clean_review_rate", rate)
    latency = section.get("latency_ms")
    if isinstance(latency, Mapping) and latency.get("added_single_p50") is not None:
        value = latency["added_single_p50"]
        if not _finite(value):
            yield "sections.guard.latency_ms.added_single_p50", f"must be a finite number, got {value!r}"


def _sections(result: Result) -> Iterator[Problem]:
    certification = result.sections.get("certification")
    if certification is not None:
        yield from _certification(certification)
    guard = result.sections.get("guard")
    if isinstance(guard, Mapping):
        yield from _guard(guard)
    detector = result.detector
    if detector is not None:
        yield from _fraction("detector.clean_flag_rate", detector.get("clean_flag_rate"))
        yield from _fraction("detector.adversarial_flag_rate", detector.get("adversarial_flag_rate"))
        yield from _fraction("detector.fpr", detector.get("fpr"))


def problems(result: Result) -> list[Problem]:
    """Every impossible field of ``result`` as ``(field, what is wrong)``, in document order."""
    found: list[Problem] = []
    for part in (_headline, _attacks, _samples, _slices_and_calibration, _sweep, _sections):
        found += part(result)
    return found


def check_evidence(result: Result, source: str = "result") -> Result:
    """``result`` if every number in it could be true, else ``BadEvidenceError`` naming the field."""
    found = problems(result)
    if found:
        field, message = found[0]
        more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        raise BadEvidenceError(f"{source}: impossible evidence: {field} {message}{more}")
    return result
