"""HTML fragments of the report, one function per section; each returns "" when it has nothing to show.

Every piece of text that comes from a Result (names, labels, evidence, config values) goes through
``html.escape``: a label such as ``<script>`` is shown, never run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from fortify._validate import is_number
from fortify.report.svg import Series, histogram_chart, line_chart
from fortify.result import Result, readers

KNOWN_SECTIONS = {"certification", "guard", "poisoning", "inversion", "extraction"}
"""Sections drawn by their own views; any other section is shown as JSON under "Other sections"."""


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


def metric(label: str, value: str, css: str = "") -> str:
    """One headline number with its label (both escaped); ``css="main"`` draws it in blue."""
    return (
        f'<div class="metric {css}"><div class="value">{escape(value)}</div><div>{escape(label)}</div></div>'
    )


def titled(blocks: Sequence[tuple[str, str]]) -> str:
    """``(label, html)`` blocks of several Results, each under an ``<h3>`` label when there are several."""
    present = [(label, body) for label, body in blocks if body]
    if len(blocks) == 1:
        return "".join(body for _, body in present)
    return "".join(f"<h3>{escape(label)}</h3>{body}" for label, body in present)


def curve_section(results: Sequence[Result]) -> str:
    """Robust accuracy against eps; a note when only one eps of a norm was measured; nothing when no
    Result was attacked under a threat (certificates have their own curve)."""
    curves = readers.robustness_curves(results)
    if not curves:
        if not any(r.threat is not None and r.robust_accuracy is not None for r in results):
            return ""
        note = (
            "Only one eps per norm was measured. Run <code>ft.sweep</code> or pass several results "
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


def attack_table(results: Sequence[Result], labels: Sequence[str]) -> str:
    blocks = []
    for result, label in zip(results, labels, strict=True):
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
        title = f"<h3>{escape(label)}</h3>" if len(results) > 1 else ""
        blocks.append(title + table(headers, rows))
    return section("attacks", "Attacks", "".join(blocks)) if blocks else ""


def _bar(value: float) -> str:
    return f'<span class="bar"><span style="width:{100 * value:.1f}%"></span></span> {pct(value)}'


def class_section(results: Sequence[Result], labels: Sequence[str], class_names: Sequence[str] | None) -> str:
    blocks = []
    for result, label in zip(results, labels, strict=True):
        rows = readers.class_rows(result, class_names)
        if not rows:
            continue
        body = [
            [escape(r.kind), escape(r.key), str(r.n), _bar(r.clean_accuracy), _bar(r.robust_accuracy)]
            for r in rows
        ]
        title = f"<h3>{escape(label)}</h3>" if len(results) > 1 else ""
        blocks.append(title + table(["slice", "key", "samples", "clean", "robust"], body, raw=True))
    return section("classes", "Robustness per class and group", "".join(blocks)) if blocks else ""


def calibration_body(result: Result) -> str:
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
    return text + chart


def detector_body(result: Result) -> str:
    """The model's detector (``result.detector``): what it is, threshold, flag rates, how it was judged."""
    record = result.detector
    if record is None:
        return ""
    rows = [
        ["detector", readers.detector_label(record)],
        ["threshold", number(record.get("threshold"))],
        ["target false-positive rate", pct(fraction(record.get("fpr")))],
        ["clean flag rate (evaluated samples)", pct(fraction(record.get("clean_flag_rate")))],
        ["adversarial flag rate (final attack points)", pct(fraction(record.get("adversarial_flag_rate")))],
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
    return note + table(["", ""], rows)


def number(value: object) -> str:
    return f"{value:.4g}" if is_number(value) else "—"


def fraction(value: object) -> float | None:
    return float(value) if is_number(value) else None


def diagnostics_section(results: Sequence[Result], labels: Sequence[str]) -> str:
    """Every diagnostic of every Result (under its label when there are several)."""
    blocks = []
    for result, label in zip(results, labels, strict=True):
        if not result.diagnostics:
            note = "No diagnostics were run for this result."
            if result.kind == "certification":
                note = (
                    "A certificate carries no attack diagnostics: its guarantee is statistical "
                    "(1 − alpha per certificate)."
                )
            blocks.append((label, f'<p class="muted">{note}</p>'))
            continue
        rows = [
            [
                f'<span class="{"ok" if d.passed else "fail"}">{"passed" if d.passed else "FAILED"}</span>',
                "the model" if d.scope == "model" else "the evaluation",
                escape(d.name),
                escape(d.evidence),
            ]
            for d in result.diagnostics
        ]
        blocks.append((label, table(["", "about", "check", "evidence"], rows, raw=True)))
    return section("diagnostics", "Diagnostics", titled(blocks))


def count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "—"


def identity_body(result: Result) -> str:
    """Which model the Result is about: architecture, parameters, weights file and digest, training run."""
    identity = readers.model_identity(result)
    if identity is None:
        parameters = result.model.get("parameters")
        size = f", {parameters:,} parameters" if isinstance(parameters, int) else ""
        return (
            f'<p class="muted">{escape(readers.model_label(result))}{escape(size)}: no weights file or '
            "training run recorded (a model built in memory, or a Result written before schema 1.5).</p>"
        )
    rows = [
        ["architecture", identity.get("architecture", "—")],
        ["source", identity.get("source", "—")],
        ["parameters", count(identity.get("parameters"))],
        ["weights file", identity.get("weights_file", "—")],
        ["weights SHA-256", identity.get("weights_sha256", "—")],
    ]
    run = identity.get("training_run")
    if run is not None:
        rows += [
            ["training run", run.get("id", "—")],
            ["trained at", run.get("created_at", "—")],
            ["training config SHA-256", run.get("config_sha256", "—")],
            ["training method", run.get("method", "—")],
            ["trained on", run.get("dataset", "—")],
        ]
        privacy = run.get("privacy")
        if privacy is not None:
            rows.append(["differential privacy", privacy_label(privacy)])
    else:
        rows.append(["training run", "not recorded in the model file"])
    return table(["", ""], rows)


def privacy_label(budget: Mapping[str, Any]) -> str:
    """``(epsilon, delta)``-DP and how it was spent, from a ``PrivacyBudget``."""
    return (
        f"({number(budget.get('epsilon'))}, {number(budget.get('delta'))})-DP by the "
        f"{budget.get('accountant', '?')} accountant: noise multiplier "
        f"{number(budget.get('noise_multiplier'))}, "
        f"clip {number(budget.get('max_grad_norm'))}, sample rate {number(budget.get('sample_rate'))}, "
        f"{budget.get('steps', '?')} steps (target epsilon {number(budget.get('target_epsilon'))})"
    )


def other_sections(results: Sequence[Result], labels: Sequence[str]) -> str:
    """Sections this report has no dedicated view for (e.g. training history), as collapsible JSON."""
    blocks = [
        (
            label,
            "".join(
                f"<details><summary>{escape(name)}</summary>"
                f"<pre>{escape(json.dumps(value, indent=2, default=str))}</pre>"
                "</details>"
                for name, value in result.sections.items()
                if name not in KNOWN_SECTIONS
            ),
        )
        for result, label in zip(results, labels, strict=True)
    ]
    body = titled(blocks)
    return section("more", "Other sections", body) if body else ""


def rate(value: float) -> str:
    return f"{value:,.0f} per second"


def timing_value(key: str, value: float) -> str:
    """A timing entry in its unit: ``*_per_s`` is a rate, ``*_ms`` milliseconds, ``*_s`` seconds."""
    if key.endswith("_per_s"):
        return rate(value)
    if key.endswith("_ms"):
        return f"{value:.3f} ms"
    if key.endswith("_s"):
        return f"{value:.3f}s"
    return f"{value:g}"


def environment_body(result: Result) -> str:
    rows = [
        ["created", result.created_at],
        ["schema version", result.schema_version],
        ["seed", str(result.seed)],
    ]
    if result.environment is not None:
        rows += [[k, str(v)] for k, v in result.environment.model_dump().items()]
    rows += [[f"model {k}", str(v)] for k, v in result.model.items() if k != "identity"]
    rows += [[f"time {k}", timing_value(k, v)] for k, v in result.timing.items()]
    return table(["", ""], rows)
