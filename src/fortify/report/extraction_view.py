"""The report's Model extraction section: a knockoff audit (``sections["extraction"]``) as the stolen
model's accuracy and agreement per query budget, and when the endpoint's monitor noticed.

The section is read as untrusted JSON: lists of unequal length, missing or non-numeric values show
as a dash, never as an error."""

from __future__ import annotations

from html import escape
from typing import Any

from fortify.report.sections import pct, table
from fortify.result import Result


def _f(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _at(values: list[Any], i: int) -> float | None:
    return _f(values[i]) if i < len(values) else None


def _count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int) and not isinstance(value, bool) else "—"


def extraction_body(result: Result) -> str:
    """One row per budget (queries, student accuracy, agreement), the detection point, and why it
    stopped early if it did."""
    record = result.sections.get("extraction")
    if not isinstance(record, dict):
        return ""
    budgets, accuracy = _list(record.get("budgets")), _list(record.get("accuracy"))
    agreement = _list(record.get("agreement"))
    rows = [[_count(b), pct(_at(accuracy, i)), pct(_at(agreement, i))] for i, b in enumerate(budgets)]
    at = record.get("at_detection")
    if isinstance(at, dict):
        rows.append(
            [
                f"{_count(at.get('queries'))} (when the alert fired)",
                pct(_f(at.get("accuracy"))),
                pct(_f(at.get("agreement"))),
            ]
        )
    victim = pct(_f(record.get("victim_accuracy")))
    harden = escape(str(record.get("harden", "full")))
    intro = (
        f"<p>Knockoff extraction with {escape(str(record.get('queries', '?')))} queries; the victim "
        f"answers with {escape(str(record.get('output', '?')))} (output hardening: {harden}, label cost "
        f"to honest users {pct(_f(record.get('label_cost')))}); victim test accuracy {victim}. Agreement "
        "is the share of test inputs on which the stolen model gives the victim's label.</p>"
    )
    notes = []
    if "detected_at" in record:
        if record.get("detected_at") is not None:
            notes.append(
                f"The endpoint's extraction alert fired after {_count(record['detected_at'])} queries."
            )
        elif record.get("alerts_note"):
            notes.append(f"Detection not measured: {escape(str(record['alerts_note']))}.")
        elif record.get("alert_checks") is not None:
            notes.append(f"No extraction alert in {_count(record.get('queried'))} queries.")
    if record.get("stopped"):
        notes.append(f"Stopped early: {escape(str(record['stopped']))}.")
    if record.get("partial"):
        notes.append("Partial: the run was still going when this was written.")
    outro = f"<p>{' '.join(notes)}</p>" if notes else ""
    return intro + table(["queries", "stolen model's accuracy", "agreement with the victim"], rows) + outro
