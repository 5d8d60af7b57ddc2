"""The report's Poisoning section: a backdoor audit (``sections["poisoning"]``) as one table."""

from __future__ import annotations

from html import escape
from typing import Any

from fortify.report.sections import pct, table
from fortify.result import Result


def _f(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _row(label: str, scores: Any, extra: str = "") -> list[str]:
    scores = scores if isinstance(scores, dict) else {}
    return [
        escape(label),
        pct(_f(scores.get("clean_accuracy"))),
        pct(_f(scores.get("attack_success_rate"))),
        escape(extra),
    ]


def poisoning_body(result: Result) -> str:
    """Clean accuracy and attack success: undefended, each filter, its random twin, the perfect filter."""
    record = result.sections.get("poisoning")
    if not isinstance(record, dict):
        return ""
    attack = _mapping(record.get("attack"))
    rows = [_row("undefended (trained on the poisoned set)", record.get("undefended"))]
    inspections = _mapping(record.get("inspections"))
    for name, item in inspections.items():
        if not isinstance(item, dict):
            continue
        note = (
            f"flagged {item.get('n_flagged')}, precision {pct(_f(item.get('precision')))}, "
            f"recall {pct(_f(item.get('recall')))}"
        )
        rows.append(_row(f"{name} filter, retrained", item.get("after_filter"), note))
        rows.append(_row(f"random filter, as many samples as {name}", item.get("random_filter")))
    rows.append(_row("perfect filter (exactly the poison), retrained", record.get("perfect_filter")))
    intro = (
        f"<p>{escape(str(attack.get('attack', 'backdoor')))} with a {escape(str(attack.get('trigger')))} "
        f"trigger, {record.get('n_poisoned')} of {record.get('n_train')} training samples poisoned, target "
        f"class {escape(str(attack.get('target')))}. Attack success counts test inputs not of the target "
        "class that the trigger sends to it; judge each filter against the random and the perfect one.</p>"
    )
    return intro + table(["model", "clean accuracy", "attack success", ""], rows)
