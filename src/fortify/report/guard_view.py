"""The report's Guard section: what a guard Result says about the deployed guard (``sections["guard"]``)."""

from __future__ import annotations

from html import escape
from typing import Any

from fortify._validate import is_number
from fortify.report.sections import pct, table
from fortify.result import Result


def _f(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def _ms(value: Any) -> str:
    number = _f(value)
    return "—" if number is None else f"{number:.2f} ms"


def guard_body(result: Result) -> str:
    """Clean review rate, accepted clean accuracy, success naive vs adaptive per attack, latency."""
    record = result.sections.get("guard")
    if not isinstance(record, dict):
        return ""
    rows = [
        ["clean inputs sent to REVIEW or REJECTED", pct(_f(record.get("clean_review_rate")))],
        ["clean inputs REJECTED", pct(_f(record.get("clean_reject_rate")))],
        ["clean accuracy of the guard's label", pct(_f(record.get("clean_accuracy")))],
        ["accuracy among ACCEPTED clean inputs", pct(_f(record.get("accepted_clean_accuracy")))],
        [
            "adaptive attack success through the guard (policy in the objective)",
            pct(_f(record.get("adaptive_success_rate"))),
        ],
    ]
    recorded = record.get("latency_ms")
    latency = recorded if isinstance(recorded, dict) else {}
    rows += [
        [
            "latency, one input (p50 / p99)",
            f"{_ms(latency.get('single_p50'))} / {_ms(latency.get('single_p99'))}",
        ],
        ["latency, bare model, one input (p50)", _ms(latency.get("bare_single_p50"))],
        ["latency, batch of 64 (p50)", _ms(latency.get("batch64_p50"))],
    ]
    body = (
        "<p>A sample counts as broken only when an attack point is misclassified <em>and</em> ACCEPTED by "
        "the guard. The adaptive figure attacks the deployed guard with its whole policy in the "
        "objective; the naive rows attack the bare model and then ask the guard, which is what a "
        "guard tested only against yesterday's attacks would report.</p>"
    )
    body += table(["", ""], rows)
    naive = record.get("naive")
    if isinstance(naive, dict) and naive:
        naive_rows = [
            [
                escape(str(name)),
                pct(_f(row.get("fooled"))),
                pct(_f(row.get("detected"))),
                pct(_f(row.get("success"))),
            ]
            for name, row in naive.items()
            if isinstance(row, dict)
        ]
        body += table(
            [
                "naive attack (bare model)",
                "fools the bare model",
                "detected by the guard",
                "success through the guard",
            ],
            naive_rows,
        )
    return body
