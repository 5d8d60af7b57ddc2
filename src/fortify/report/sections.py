"""HTML fragments of the report, one function per section; each returns "" when it has nothing to show.

Every piece of text that comes from a Result (names, labels, evidence, config values) goes through
``html.escape``: a label such as ``<script>`` is shown, never run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape

from fortify._validate import is_number
from fortify.report.svg import Series, histogram_chart, line_chart
from fortify.result import Result, readers

KNOWN_SECTIONS = {"certification", "guard", "poisoning"}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (then the caller has escaped them)."""
    cell = (lambda c: c) if raw else escape
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metric(label: str, value: str, css: str = "") -> str:
    return (
        f'<div class="metric {css}"><div class="value">{escape(value)}</div><div>{escape(label)}</div></div>'
    )


def summary_card(result: Result) -> str:
    """Headline numbers of one result and whether its evaluation can be trusted (red with reasons if not)."""
    failed = [d for d in result.diagnostics if not d.passed]
    if failed:
        reasons = "".join(f"<li><b>{escape(d.name)}</b>: {escape(d.evidence)}</li>" for d in failed)
        verdict = (
            f'<div class="verdict bad">UNRELIABLE: the robust accuracy may be an overestimate'
            f"<ul>{reasons}</ul></div>"
        )
    elif result.diagnostics:
        verdict = (
            f'<div class="verdict good">reliable: all {len(result.diagnostics)} diagnostics passed</div>'
        )
    else:
        verdict = '<div class="verdict none">no diagnostics recorded</div>'
    model = result.model.get("module") or result.model.get("class") or "model"
    facts = [
        f"{result.kind}",
        f"model {model}",
        f"data {result.dataset or '—'}",
        f"threat {readers.threat_label(result)}",
        f"suite {result.suite or '—'}",
        f"{result.n_samples} samples",
        f"seed {'—' if result.seed is None else result.seed}",
    ]
    metrics = [
        _metric("clean accuracy", pct(result.clean_accuracy)),
        _metric("robust accuracy (worst case)", pct(result.robust_accuracy), "main"),
        _metric("attack success rate", pct(result.attack_success_rate)),
        _metric("time", f"{result.timing.get('total_s', 0.0):.1f}s"),
    ]
    return (
        f'<div class="card"><div class="facts">{escape(" · ".join(facts))}</div>'
        f'<div class="metrics">{"".join(metrics)}</div>{verdict}</div>'
    )


def _reliability(result: Result) -> str:
    if not result.diagnostics:
        return "not checked"
    return "yes" if result.reliable else "NO"


def overview(results: Sequence[Result]) -> str:
    """One row per result when several are reported together."""
    if len(results) < 2:
        return ""
    rows = [
        [
            readers.threat_label(r),
            r.suite or "—",
            str(r.n_samples),
            pct(r.clean_accuracy),
            pct(r.robust_accuracy),
            pct(r.attack_success_rate),
            _reliability(r),
        ]
        for r in results
    ]
    headers = ["threat", "suite", "samples", "clean", "robust", "attack success", "reliable"]
    return section("overview", "All results", table(headers, rows))


def curve_section(results: Sequence[Result]) -> str:
    curves = readers.robustness_curves(results)
    if not curves:
        note = (
            "Only one radius was measured. Run <code>ft.sweep</code> or pass several results "
            "(one per eps) to <code>fortify report</code> to see the curve."
        )
        return section("curve", "Accuracy against epsilon", f'<p class="muted">{note}</p>')
    chart = line_chart(
        [Series(c.name, c.xs, c.ys) for c in curves],
        title="robust accuracy against epsilon",
        x_label="epsilon (perturbation budget)",
        y_label="robust accuracy",
    )
    return section("curve", "Accuracy against epsilon", chart)


def attack_table(results: Sequence[Result]) -> str:
    blocks = []
    for result in results:
        if not result.per_attack:
            continue
        rows = []
        for r in result.per_attack:
            passes = "—" if getattr(r, "forward_passes", None) is None else f"{r.forward_passes:.0f}"
            config = ", ".join(f"{k}={v}" for k, v in r.config.items())
            rows.append(
                [
                    r.name,
                    r.ran_on,
                    str(r.n_attacked),
                    str(r.n_succeeded),
                    pct(r.accuracy),
                    pct(r.cumulative_accuracy),
                    passes,
                    f"{r.time_s:.2f}s",
                    config,
                ]
            )
        headers = [
            "attack",
            "ran on",
            "attacked",
            "broke",
            "accuracy alone",
            "worst case so far",
            "forward passes / sample",
            "time",
            "config",
        ]
        title = f"<h3>{escape(readers.threat_label(result))}</h3>" if len(results) > 1 else ""
        blocks.append(title + table(headers, rows))
    return section("attacks", "Attacks", "".join(blocks)) if blocks else ""


def _bar(value: float) -> str:
    return f'<span class="bar"><span style="width:{100 * value:.1f}%"></span></span> {pct(value)}'


def class_section(results: Sequence[Result], class_names: Sequence[str] | None) -> str:
    blocks = []
    for result in results:
        rows = readers.class_rows(result, class_names)
        if not rows:
            continue
        body = [
            [escape(r.kind), escape(r.key), str(r.n), _bar(r.clean_accuracy), _bar(r.robust_accuracy)]
            for r in rows
        ]
        title = f"<h3>{escape(readers.threat_label(result))}</h3>" if len(results) > 1 else ""
        blocks.append(title + table(["slice", "key", "samples", "clean", "robust"], body, raw=True))
    return section("classes", "Robustness per class and group", "".join(blocks)) if blocks else ""


def calibration_section(result: Result) -> str:
    calibration = getattr(result, "calibration", None)
    if calibration is None:
        return ""
    series = [Series("clean", calibration.bin_edges[:-1], calibration.clean_histogram)]
    if calibration.adversarial_histogram:
        series.append(Series("adversarial", calibration.bin_edges[:-1], calibration.adversarial_histogram))
    chart = histogram_chart(
        calibration.bin_edges,
        series,
        title="confidence histograms",
        x_label="confidence (max softmax probability)",
    )
    adv = "—" if calibration.ece_adversarial is None else f"{calibration.ece_adversarial:.3f}"
    text = (
        f"<p>Expected calibration error ({calibration.bins} bins): clean {calibration.ece_clean:.3f}, "
        f"under attack {escape(adv)}.</p>"
    )
    return section("calibration", "Confidence and calibration", text + chart)


def detector_section(result: Result) -> str:
    """The model's detector (``result.detector``): what it is, threshold, flag rates, how it was judged."""
    record = result.detector
    if record is None:
        return ""
    rows = [
        ["detector", readers.detector_label(record)],
        ["threshold", _number(record.get("threshold"))],
        ["target false-positive rate", pct(_fraction(record.get("fpr")))],
        ["clean flag rate (evaluated samples)", pct(_fraction(record.get("clean_flag_rate")))],
        ["adversarial flag rate (final attack points)", pct(_fraction(record.get("adversarial_flag_rate")))],
    ]
    calibration = record.get("calibration")
    if calibration is not None:
        rows.append(["calibrated on", readers.calibration_label(calibration)])
    objective = (
        "with the detector in the attack objective"
        if record.get("in_objective")
        else "but the detector was NOT in the attack objective"
    )
    note = (
        "<p>Robust accuracy counts a sample as broken only when its attack point is misclassified "
        f"and not flagged by the detector, {escape(objective)}.</p>"
    )
    return section("detector", "Detector", note + table(["", ""], rows))


def _number(value: object) -> str:
    return f"{value:.4g}" if is_number(value) else "—"


def _fraction(value: object) -> float | None:
    return float(value) if is_number(value) else None


def diagnostics_section(result: Result) -> str:
    if not result.diagnostics:
        return section(
            "diagnostics", "Diagnostics", '<p class="muted">No diagnostics were run for this result.</p>'
        )
    rows = [
        [
            f'<span class="{"ok" if d.passed else "fail"}">{"passed" if d.passed else "FAILED"}</span>',
            escape(d.name),
            escape(d.evidence),
        ]
        for d in result.diagnostics
    ]
    return section("diagnostics", "Diagnostics", table(["", "check", "evidence"], rows, raw=True))


def certification_section(result: Result) -> str:
    curve = readers.certification_curve(result)
    if curve is None:
        return ""
    chart = line_chart(
        [Series(curve.name, curve.xs, curve.ys)],
        title="certified accuracy against radius",
        x_label="L2 radius",
        y_label="certified accuracy",
        markers=len(curve.xs) <= 30,
    )
    return section("certification", "Certification", chart)


def other_sections(result: Result) -> str:
    """Sections this report has no dedicated view for (e.g. training history), as collapsible JSON."""
    blocks = [
        f"<details><summary>{escape(name)}</summary>"
        f"<pre>{escape(json.dumps(value, indent=2, default=str))}</pre>"
        "</details>"
        for name, value in result.sections.items()
        if name not in KNOWN_SECTIONS
    ]
    return section("more", "Other sections", "".join(blocks)) if blocks else ""


def environment_section(result: Result) -> str:
    rows = [
        ["created", result.created_at],
        ["schema version", result.schema_version],
        ["seed", str(result.seed)],
    ]
    if result.environment is not None:
        rows += [[k, str(v)] for k, v in result.environment.model_dump().items()]
    rows += [[f"model {k}", str(v)] for k, v in result.model.items()]
    rows += [[f"time {k}", f"{v:.3f}s" if k.endswith("_s") else f"{v:g}"] for k, v in result.timing.items()]
    return section("environment", "Environment", table(["", ""], rows))
