"""The release gate: a policy of thresholds checked against Results, with a JUnit XML view for CI.

A policy is a YAML (or JSON) mapping; every key is optional and unknown keys are refused::

    min_clean_accuracy: 0.85          # fractions in [0, 1]
    max_clean_accuracy_drop: 0.02     # vs --baseline, in accuracy points (0.02 = 2 points)
    max_robust_accuracy_drop: 0.03    # vs --baseline, at every eps both measured
    max_attack_success_rate: 0.6
    norm: linf                        # which threat the eps below refer to (default: any)
    min_robust_accuracy: {0.05: 0.5, 0.1: 0.3}
    max_added_latency_ms: 2.0         # per-sample clean inference latency vs --baseline; for a guard
                                      # Result, the guard's own one-input p50 minus its bare model's
    min_clean_accuracy_ratio: 0.95    # clean accuracy / the --baseline's clean accuracy
    max_review_rate: 0.10             # a guard's share of clean inputs not ACCEPTED
    require_reliable: true            # every check of the evaluation passed (the default)
    allow_smoke_tests: false          # accept a smoke-test suite (quick) as release evidence
    allow_reduced_precision: false    # accept evaluations whose attacks iterated in bfloat16
    min_certified_accuracy: {0.25: 0.6}   # L2 radius -> certified accuracy

Several results may be gated together (e.g. one per eps); each number is then taken at its most
pessimistic (lowest accuracy, highest attack success). A threshold whose quantity was not measured
fails: a release must show the evidence the policy asks for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError

from fortify._files import read_limited
from fortify._untrusted import load_yaml
from fortify.result import Result, readers
from fortify.result.evidence import check_evidence
from fortify.result.gate_record import CheckRecord, GatedFile, GateRecord
from fortify.types import FortifyError

Fraction = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
Number = StrictFloat | StrictInt
"""A policy number: ``true`` / ``"0.5"`` are refused, not read as 1 or 0.5."""
MAX_POLICY_BYTES = 1 * 2**20


class Policy(BaseModel):
    """Release thresholds; ``None`` (or an empty mapping) means "not checked"."""

    model_config = ConfigDict(extra="forbid")

    min_clean_accuracy: Number | None = Fraction
    max_clean_accuracy_drop: Number | None = Fraction
    max_robust_accuracy_drop: Number | None = Fraction
    max_attack_success_rate: Number | None = Fraction
    norm: str | None = None
    min_robust_accuracy: dict[float, Number] = Field(default_factory=dict)
    max_added_latency_ms: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    min_clean_accuracy_ratio: Number | None = Field(default=None, gt=0.0, le=10.0)
    max_review_rate: Number | None = Fraction
    require_reliable: StrictBool = True
    allow_smoke_tests: StrictBool = False
    allow_reduced_precision: StrictBool = False
    min_certified_accuracy: dict[float, Number] = Field(default_factory=dict)

    def needs_baseline(self, results: Sequence[Result] = ()) -> list[str]:
        keys = ["max_clean_accuracy_drop", "max_robust_accuracy_drop", "min_clean_accuracy_ratio"]
        if not _guarded(results):
            keys.append("max_added_latency_ms")  # a guard Result carries its own bare-model baseline
        return [key for key in keys if getattr(self, key) is not None]


def _guarded(results: Sequence[Result]) -> bool:
    """Every result is a guard evaluation that measured its own added latency."""
    return bool(results) and all(readers.guard_added_latency_ms(r) is not None for r in results)


@dataclass(frozen=True)
class Check:
    """One threshold of the policy and how the results did against it."""

    name: str
    passed: bool
    measured: str
    required: str
    detail: str = ""


@dataclass(frozen=True)
class GateOutcome:
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def record(
        self, policy: str, results: Sequence[GatedFile], baseline: GatedFile | None = None
    ) -> GateRecord:
        """The verdict as a ``GateRecord`` (``fortify gate --out``): the report shows it beside the
        numbers of exactly these ``results`` files."""
        return GateRecord(
            policy=policy,
            passed=self.passed,
            results=list(results),
            baseline=baseline,
            checks=[CheckRecord(**asdict(c)) for c in self.checks],
        )


def load_policy(path: str | Path) -> Policy:
    """Read a YAML/JSON policy file; any problem is a one-line ``FortifyError`` naming the file and field."""
    data = read_limited(path, "policy file", MAX_POLICY_BYTES)
    raw = load_yaml(data, f"policy {path}", max_bytes=MAX_POLICY_BYTES)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FortifyError(f"policy {path} must be a mapping of thresholds, got {type(raw).__name__}")
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        raise FortifyError(f"policy {path}: {_one_line(exc)}") from exc
    for key, table in (
        ("min_robust_accuracy", policy.min_robust_accuracy),
        ("min_certified_accuracy", policy.min_certified_accuracy),
    ):
        for radius, value in table.items():
            if not math.isfinite(radius) or radius < 0 or not 0.0 <= value <= 1.0:
                raise FortifyError(
                    f"policy {path}: {key}: {radius:g} -> {value:g} needs a radius >= 0 and an "
                    "accuracy in [0, 1]"
                )
    return policy


def _one_line(exc: ValidationError) -> str:
    parts: dict[str, str] = {}
    for err in exc.errors():
        # a number is float | int: pydantic reports each branch; the field gets one message
        field = ".".join(str(p) for p in err["loc"] if p not in ("float", "int")) or "policy"
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] in ("float_type", "int_type"):
            message = "must be a number (not a boolean or a string)"
        parts.setdefault(field, f"{field}: {message}")
    parts = dict(list(parts.items())[:5])
    allowed = ", ".join(Policy.model_fields)
    suffix = (
        f" (allowed keys: {allowed})" if any(e["type"] == "extra_forbidden" for e in exc.errors()) else ""
    )
    return "; ".join(parts.values()) + suffix


def _pct(value: float | None) -> str:
    return "not measured" if value is None else f"{100 * value:.1f}%"


def _at_least(name: str, value: float | None, minimum: float, detail: str = "") -> Check:
    return Check(
        name, value is not None and value >= minimum - 1e-12, _pct(value), f">= {_pct(minimum)}", detail
    )


def _at_most(name: str, value: float | None, maximum: float, detail: str = "") -> Check:
    return Check(
        name, value is not None and value <= maximum + 1e-12, _pct(value), f"<= {_pct(maximum)}", detail
    )


def _lowest(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def check(policy: Policy, results: Sequence[Result], baseline: Result | None = None) -> GateOutcome:
    """Every threshold of ``policy`` checked against ``results`` (and ``baseline`` for relative ones).

    Raises ``FortifyError`` when the policy has relative thresholds but no baseline is given, or when
    there are no results.
    """
    if not results:
        raise FortifyError("the gate needs at least one result")
    for i, result in enumerate(results):
        check_evidence(result, f"result {i + 1}")
    if baseline is not None:
        check_evidence(baseline, "baseline")
    missing = policy.needs_baseline(results)
    if missing and baseline is None:
        raise FortifyError(
            f"the policy sets {', '.join(missing)}, which compare against a baseline: pass --baseline"
        )
    clean = _lowest([r.clean_accuracy for r in results])
    checks: list[Check] = []
    if policy.min_clean_accuracy is not None:
        checks.append(_at_least("min clean accuracy", clean, policy.min_clean_accuracy))
    if policy.max_attack_success_rate is not None:
        rates = [r.attack_success_rate for r in results if r.attack_success_rate is not None]
        checks.append(
            _at_most("max attack success rate", max(rates) if rates else None, policy.max_attack_success_rate)
        )
    for eps, minimum in sorted(policy.min_robust_accuracy.items()):
        value = readers.robust_accuracy_at(results, eps, policy.norm)
        checks.append(_at_least(f"min robust accuracy at {policy.norm or 'eps'} {eps:g}", value, minimum))
    for radius, minimum in sorted(policy.min_certified_accuracy.items()):
        value = _lowest([readers.certified_accuracy_at(r, radius) for r in results])
        checks.append(_at_least(f"min certified accuracy at L2 {radius:g}", value, minimum))
    if policy.max_review_rate is not None:
        review_rates = [readers.guard_review_rate(r) for r in results]
        present = [v for v in review_rates if v is not None]
        worst = max(present) if len(present) == len(review_rates) else None
        checks.append(_at_most("max clean review rate through the guard", worst, policy.max_review_rate))
    if policy.max_added_latency_ms is not None and _guarded(results):
        checks.append(_guard_latency(policy.max_added_latency_ms, results))
    evaluations = [r for r in results if r.kind == "evaluation"]
    if policy.require_reliable and evaluations:
        # diagnostics check attacks; certificates and training runs have none to carry
        checks.append(_reliability(evaluations))
    if evaluations:
        checks.append(_full_suites(evaluations, policy.allow_smoke_tests))
        if any(r.precision != "fp32" for r in evaluations):  # asked only of bf16 Results
            checks.append(_float32_attacks(evaluations, policy.allow_reduced_precision))
    if baseline is not None:
        checks += _relative_checks(policy, results, baseline, clean)
    return GateOutcome(checks)


def _reliability(results: Sequence[Result]) -> Check:
    """Every check of the evaluation passed; findings about the model (``scope="model"``, e.g. gradient
    masking the evaluation compensated for) are named in the detail but do not fail the gate."""
    ran = [d for r in results for d in r.diagnostics if d.scope == "evaluation"]
    failed = [d for d in ran if not d.passed]
    findings = [d for r in results for d in r.diagnostics if d.scope == "model" and not d.passed]
    detail = "; ".join(f"{d.name}: {d.evidence}" for d in failed)
    if findings:
        noted = "; ".join(f"{d.name}: {d.evidence}" for d in findings)
        detail = f"{detail}; model findings (compensated): {noted}" if detail else f"model findings: {noted}"
    if not ran:
        return Check(
            "all diagnostics passed", False, "none ran", "all passed", "the results carry no diagnostics"
        )
    return Check(
        "all diagnostics passed",
        not failed,
        f"{len(ran) - len(failed)}/{len(ran)} passed",
        "all passed",
        detail,
    )


def _full_suites(results: Sequence[Result], allowed: bool) -> Check:
    """No evaluation comes from a smoke-test suite (``quick``), unless the policy allows it."""
    smoke = [r.suite or "?" for r in results if r.smoke_test or r.suite == "quick"]
    measured = f"smoke test ({', '.join(sorted(set(smoke)))})" if smoke else "full suites"
    detail = (
        "a smoke-test suite is not evidence of robustness: evaluate with --suite standard (or strong), "
        "or set allow_smoke_tests: true in the policy"
        if smoke and not allowed
        else ""
    )
    return Check(
        "evidence from a full attack suite", not smoke or allowed, measured, "not a smoke test", detail
    )


def _float32_attacks(results: Sequence[Result], allowed: bool) -> Check:
    """No evaluation's attacks iterated in reduced precision, unless the policy allows it: bfloat16
    iterations were measured slightly weaker than float32 on a robust model (BENCHMARKS.md, "Reduced
    precision"), so they are a fast screen, not release evidence by default."""
    reduced = sorted({r.precision for r in results if r.precision != "fp32"})
    measured = f"attacks in {', '.join(reduced)}" if reduced else "attacks in fp32"
    detail = (
        "reduced-precision attacks can miss points float32 finds: evaluate with --precision fp32, or "
        "set allow_reduced_precision: true in the policy"
        if reduced and not allowed
        else ""
    )
    return Check("evidence from float32 attacks", not reduced or allowed, measured, "fp32", detail)


def _relative_checks(
    policy: Policy, results: Sequence[Result], baseline: Result, clean: float | None
) -> list[Check]:
    checks = []
    if policy.max_clean_accuracy_drop is not None:
        drop = None if clean is None or baseline.clean_accuracy is None else baseline.clean_accuracy - clean
        checks.append(
            _at_most(
                "max clean accuracy drop vs baseline",
                drop,
                policy.max_clean_accuracy_drop,
                f"baseline {_pct(baseline.clean_accuracy)}, now {_pct(clean)}",
            )
        )
    if policy.max_robust_accuracy_drop is not None:
        checks.append(_robust_drop(policy, results, baseline))
    if policy.min_clean_accuracy_ratio is not None:
        ratio = None if clean is None or not baseline.clean_accuracy else clean / baseline.clean_accuracy
        checks.append(
            Check(
                "min clean accuracy ratio vs baseline",
                ratio is not None and ratio >= policy.min_clean_accuracy_ratio - 1e-12,
                "not measured" if ratio is None else f"{ratio:.3f}",
                f">= {policy.min_clean_accuracy_ratio:g}",
                f"baseline {_pct(baseline.clean_accuracy)}, now {_pct(clean)}",
            )
        )
    if policy.max_added_latency_ms is not None and not _guarded(results):
        now = _lowest([readers.latency_ms(r) for r in results])
        before = readers.latency_ms(baseline)
        added = None if now is None or before is None else now - before
        checks.append(
            Check(
                "max added latency vs baseline",
                added is not None and added <= policy.max_added_latency_ms,
                "not measured" if added is None else f"{added:+.3f} ms/sample",
                f"<= {policy.max_added_latency_ms:g} ms",
                "" if added is None else f"baseline {before:.3f} ms, now {now:.3f} ms",
            )
        )
    return checks


def _guard_latency(maximum: float, results: Sequence[Result]) -> Check:
    added = max(v for v in (readers.guard_added_latency_ms(r) for r in results) if v is not None)
    return Check(
        "max added latency of the guard",
        added <= maximum,
        f"{added:+.3f} ms/input",
        f"<= {maximum:g} ms",
        "one input, p50, guard vs its bare model in the same process",
    )


def _measured_radii(result: Result, norm: str | None) -> set[float]:
    radii = {result.threat.eps} if result.threat and (norm is None or result.threat.norm == norm) else set()
    sweep = getattr(result, "sweep", None)
    if sweep is not None and (norm is None or sweep.norm == norm):
        radii |= set(sweep.epsilons)
    return radii


def _robust_drop(policy: Policy, results: Sequence[Result], baseline: Result) -> Check:
    ours = set().union(*(_measured_radii(r, policy.norm) for r in results))
    common = sorted(e for e in ours if e in _measured_radii(baseline, policy.norm))
    drops = []
    for eps in common:
        now = readers.robust_accuracy_at(results, eps, policy.norm)
        before = readers.robust_accuracy_at([baseline], eps, policy.norm)
        if now is not None and before is not None:
            drops.append((before - now, eps))
    if not drops:
        return Check(
            "max robust accuracy drop vs baseline",
            False,
            "not measured",
            f"<= {_pct(policy.max_robust_accuracy_drop)}",
            "no eps measured in both results and baseline",
        )
    worst, eps = max(drops)
    return _at_most(
        "max robust accuracy drop vs baseline",
        worst,
        policy.max_robust_accuracy_drop or 0.0,
        f"worst at eps {eps:g}",
    )


def junit_xml(outcome: GateOutcome, *, suite_name: str = "fortify.gate") -> str:
    """The outcome as JUnit XML: one ``testcase`` per check, a ``failure`` element for each failed one."""
    suite = ElementTree.Element(
        "testsuite",
        name=suite_name,
        tests=str(len(outcome.checks)),
        failures=str(len(outcome.failures)),
        errors="0",
        skipped="0",
    )
    for item in outcome.checks:
        case = ElementTree.SubElement(suite, "testcase", classname=suite_name, name=item.name)
        message = f"measured {item.measured}, required {item.required}"
        if item.detail:
            message += f" ({item.detail})"
        if item.passed:
            ElementTree.SubElement(case, "system-out").text = message
        else:
            ElementTree.SubElement(case, "failure", message=message, type="threshold").text = message
    root = ElementTree.Element("testsuites")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="unicode")
