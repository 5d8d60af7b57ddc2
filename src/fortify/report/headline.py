"""The top of the report: what was measured, at its most pessimistic, and the gate's verdict.

One Result gets a summary card in its own terms (an evaluation's clean / robust / attack success, a
certificate's smoothed and certified accuracies with sigma, n, alpha and the abstain rate). Several
Results get a card of their most pessimistic numbers (lowest accuracy, highest attack success, any
failed diagnostic) above a table of every measurement: each Result's own threat, each point of a
sweep, each radius of a certification. The order of the Results never changes the headline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from fortify.report.certification_view import certification_rows
from fortify.report.sections import metric, pct, section, table
from fortify.result import Diagnostic, Result, readers
from fortify.result.gate_record import GateRecord


@dataclass(frozen=True)
class Row:
    """One measurement of the headline table; ``robust`` is certified accuracy for a certificate."""

    label: str
    kind: str
    where: str
    n: int
    clean: float | None
    robust: float | None
    attack_success: float | None
    reliable: str
    radius: float | None = None
    """The certified L2 radius, for a certificate's rows; ``None`` for attacked measurements."""

    @property
    def certified(self) -> bool:
        return self.radius is not None


def default_labels(results: Sequence[Result]) -> list[str]:
    """``#1 linf 0.1``, ``#2 certification``...: how the page names each Result when not told."""
    if len(results) == 1:
        return [readers.threat_label(results[0]) if results[0].threat else results[0].kind]
    return [f"#{i + 1} {readers.threat_label(r) if r.threat else r.kind}" for i, r in enumerate(results)]


def _reliability(result: Result) -> str:
    if result.kind != "evaluation":
        return "n/a"
    if not result.diagnostics:
        return "not checked"
    return "yes" if result.reliable else "NO"


def rows_of(result: Result, label: str) -> list[Row]:
    """Every measurement in ``result``: its sweep's points (or its own threat), its certified radii."""
    reliable = _reliability(result)
    if result.kind == "certification":
        return [
            Row(
                label,
                "certification",
                f"L2 {radius:g} (certified)",
                result.n_samples,
                smoothed,
                acc,
                None,
                reliable,
                radius=radius,
            )
            for radius, acc, smoothed in certification_rows(result)
        ]
    sweep = result.sweep
    if sweep is not None and sweep.epsilons:
        return [
            Row(
                label,
                f"sweep ({sweep.method})",
                f"{sweep.norm} {eps:g}",
                result.n_samples,
                sweep.clean_accuracy,
                acc,
                None,
                reliable,
            )
            for eps, acc in zip(sweep.epsilons, sweep.robust_accuracy, strict=False)
        ]
    where = readers.threat_label(result) if result.threat else "no threat"
    return [
        Row(
            label,
            result.kind,
            where,
            result.n_samples,
            result.clean_accuracy,
            result.robust_accuracy,
            result.attack_success_rate,
            reliable,
        )
    ]


def _verdict(results: Sequence[Result], labels: Sequence[str]) -> str:
    """Red with every failed diagnostic (and whose) when any failed; green when all ran and passed."""
    evaluations = [(r, lab) for r, lab in zip(results, labels, strict=True) if r.kind == "evaluation"]
    failed = [
        (lab, d) for r, lab in evaluations for d in r.diagnostics if not d.passed and d.scope == "evaluation"
    ]
    findings = [
        (lab, d) for r, lab in evaluations for d in r.diagnostics if not d.passed and d.scope == "model"
    ]
    several = len(results) > 1

    def listed(items: list[tuple[str, Diagnostic]]) -> str:
        return "".join(
            f"<li>{escape(lab) + ': ' if several else ''}<b>{escape(d.name)}</b>: {escape(d.evidence)}</li>"
            for lab, d in items
        )

    masking = (
        '<div class="verdict bad">THE MODEL MASKS GRADIENTS (its defense hides gradients; the evaluation '
        f"compensated, and the checks below say whether that worked)<ul>{listed(findings)}</ul></div>"
        if findings
        else ""
    )
    if failed:
        return (
            masking + '<div class="verdict bad">UNRELIABLE: the robust accuracy may be an overestimate'
            f"<ul>{listed(failed)}</ul></div>"
        )
    unchecked = [lab for r, lab in evaluations if not r.diagnostics]
    ran = sum(len(r.diagnostics) for r, _ in evaluations)
    if not evaluations:
        if all(r.kind == "certification" for r in results):
            return (
                '<div class="verdict none">certificates, not attacks: no attack diagnostics apply; each '
                "certificate holds with probability at least 1 − alpha</div>"
            )
        return '<div class="verdict none">no diagnostics recorded</div>'
    if unchecked:
        who = f" for {', '.join(unchecked)}" if several else ""
        return f'<div class="verdict none">no diagnostics recorded{escape(who)}</div>'
    of = f" of {len(evaluations)} results" if len(evaluations) > 1 else ""
    if findings:
        checks = sum(d.scope == "evaluation" for r, _ in evaluations for d in r.diagnostics)
        return (
            masking
            + f'<div class="verdict good">reliable: all {checks} checks of the evaluation{of} passed</div>'
        )
    return f'<div class="verdict good">reliable: all {ran} diagnostics{of} passed</div>'


def _facts(result: Result) -> list[str]:
    identity = readers.model_identity(result) or {}
    parameters = identity.get("parameters", result.model.get("parameters"))
    model = readers.model_label(result)
    if isinstance(parameters, int):
        model += f" ({parameters:,} parameters)"
    facts = [result.kind, f"model {model}", f"data {result.dataset or '—'}"]
    if "weights_sha256" in identity:
        facts.append(f"weights sha256 {identity['weights_sha256'][:12]}…")
    certification = result.sections.get("certification")
    if certification is not None:
        facts += [
            f"sigma {certification.get('sigma', '—')}",
            f"n0 {certification.get('n0', '—')}",
            f"n {certification.get('n', '—')}",
            f"alpha {certification.get('alpha', '—')}",
        ]
    else:
        facts += [f"threat {readers.threat_label(result)}", f"suite {result.suite or '—'}"]
    facts += [f"{result.n_samples} samples", f"seed {'—' if result.seed is None else result.seed}"]
    return facts


def _time(results: Sequence[Result]) -> str:
    times = [r.timing["total_s"] for r in results if "total_s" in r.timing]
    return f"{sum(times):.1f}s" if times else "—"


def _certification_metrics(result: Result) -> list[str]:
    rows = certification_rows(result)
    section_ = result.sections.get("certification") or {}
    smoothed = rows[0][2] if rows else result.clean_accuracy
    out = [metric("smoothed accuracy (certified at radius 0; abstentions count as wrong)", pct(smoothed))]
    out += [
        metric(f"certified accuracy at L2 {radius:g}", pct(acc), "main")
        for radius, acc, _ in rows
        if radius > 0
    ][:4]
    out.append(metric("abstain rate", pct(section_.get("abstain_rate"))))
    return out


def summary_card(result: Result) -> str:
    """The headline of one Result, in the terms of its kind; red with reasons if it is unreliable."""
    if result.kind == "certification":
        metrics = _certification_metrics(result)
    else:
        robust_label = "robust accuracy (worst case)"
        if result.kind == "training" and result.suite:
            robust_label = f"robust accuracy ({result.suite})"
        metrics = [metric("clean accuracy", pct(result.clean_accuracy))]
        if result.robust_accuracy is not None or result.kind == "evaluation":
            metrics.append(metric(robust_label, pct(result.robust_accuracy), "main"))
        if result.attack_success_rate is not None:
            metrics.append(metric("attack success rate", pct(result.attack_success_rate)))
    metrics.append(metric("time", _time([result])))
    label = default_labels([result])
    return (
        f'<div class="card"><div class="facts">{escape(" · ".join(_facts(result)))}</div>'
        f'<div class="metrics">{"".join(metrics)}</div>{_verdict([result], label)}</div>'
    )


def _lowest(rows: Sequence[Row], value: str, sign: float = 1.0) -> tuple[float, Row] | None:
    """The row with the lowest ``value`` (highest for ``sign=-1``); ties go to the first label and
    threat in sorted order, so the Results' order never decides what the summary names."""
    found = [(getattr(r, value), r) for r in rows if getattr(r, value) is not None]
    if not found:
        return None
    return min(found, key=lambda item: (sign * item[0], item[1].label, item[1].where))


def pessimistic_card(results: Sequence[Result], rows: Sequence[Row], labels: Sequence[str]) -> str:
    """Several Results at their worst: lowest clean and robust accuracy, highest attack success."""
    attacked = [r for r in rows if not r.certified]
    certified = [r for r in rows if r.certified]
    metrics = []
    clean = _lowest(attacked, "clean")
    if clean is not None:
        metrics.append(metric(f"lowest clean accuracy ({clean[1].label})", pct(clean[0])))
    robust = _lowest(attacked, "robust")
    if robust is not None:
        where = f"{robust[1].where}, {robust[1].label}"
        metrics.append(metric(f"lowest robust accuracy (worst case; {where})", pct(robust[0]), "main"))
    worst = _lowest(attacked, "attack_success", sign=-1.0)
    if worst is not None:
        metrics.append(metric(f"highest attack success rate ({worst[1].label})", pct(worst[0])))
    lowest_certified = _lowest([r for r in certified if r.radius], "robust")
    if lowest_certified is not None:
        where = f"{lowest_certified[1].where}, {lowest_certified[1].label}"
        metrics.append(metric(f"lowest certified accuracy ({where})", pct(lowest_certified[0]), "main"))
    metrics.append(metric(f"time, {len(results)} results", _time(results)))
    models = sorted({readers.model_label(r) for r in results})
    data = sorted({r.dataset or "—" for r in results})
    facts = [
        f"{len(results)} results",
        f"model {', '.join(models)}",
        f"data {', '.join(data)}",
        "the most pessimistic value of each measurement; every one is in the table below",
    ]
    return (
        f'<div class="card"><div class="facts">{escape(" · ".join(facts))}</div>'
        f'<div class="metrics">{"".join(metrics)}</div>{_verdict(results, labels)}</div>'
    )


def measurements_table(rows: Sequence[Row]) -> str:
    body = [
        [
            r.label,
            r.kind,
            r.where,
            str(r.n),
            pct(r.clean),
            pct(r.robust),
            pct(r.attack_success),
            r.reliable,
        ]
        for r in rows
    ]
    certified = any(r.certified for r in rows)
    headers = [
        "result",
        "kind",
        "threat",
        "samples",
        "clean (smoothed, for certificates)" if certified else "clean",
        "robust (certified, for certificates)" if certified else "robust (worst case)",
        "attack success",
        "reliable",
    ]
    return table(headers, body)


def headline(results: Sequence[Result], labels: Sequence[str], gate: GateRecord | None = None) -> str:
    """The summary (one Result) or the most pessimistic summary and the table of all (several), with
    the gate's verdict when given."""
    rows = [row for result, label in zip(results, labels, strict=True) for row in rows_of(result, label)]
    if len(results) == 1:
        card = summary_card(results[0])
        swept = results[0].sweep is not None and len(rows) > 1
        body = card + (measurements_table(rows) if swept else "")
    else:
        body = pessimistic_card(results, rows, labels) + measurements_table(rows)
    return section("summary", "Summary", body + gate_block(gate))


def gate_block(gate: GateRecord | None) -> str:
    """The release gate's verdict (``fortify gate --out``): pass / fail, and one row per check."""
    if gate is None:
        return ""
    if gate.passed:
        verdict = (
            f'<div class="verdict good">GATE PASSED: all {len(gate.checks)} checks of '
            f"{escape(gate.policy)} passed</div>"
        )
    else:
        verdict = (
            f'<div class="verdict bad">GATE FAILED: {len(gate.failures)} of {len(gate.checks)} checks of '
            f"{escape(gate.policy)} failed</div>"
        )
    rows = [
        [
            f'<span class="{"ok" if c.passed else "fail"}">{"PASS" if c.passed else "FAIL"}</span>',
            escape(c.name),
            escape(c.measured),
            escape(c.required),
            escape(c.detail),
        ]
        for c in gate.checks
    ]
    files = ", ".join(escape(f.path) for f in gate.results)
    baseline = f"; baseline {escape(gate.baseline.path)}" if gate.baseline is not None else ""
    note = f'<p class="muted">Gated at {escape(gate.created_at)}: {files}{baseline}.</p>'
    return (
        '<div id="gate"><h3>Release gate</h3>'
        + verdict
        + table(["", "check", "measured", "required", "detail"], rows, raw=True)
        + note
        + "</div>"
    )
