"""The HTML report of one or more Results (``write_html``) and the MLflow writer (``report.mlflow``).

Both read Results only; the numbers they take out of them come from ``fortify.result.readers``.

>>> import fortify as ft
>>> ft.report.write_html(result, "runs/mine/report.html")  # gallery from result.gallery
"""

from typing import Any

from fortify.report import readers
from fortify.report.page import render_html, write_html

__all__ = ["render_html", "write_html", "readers", "gallery_adversarials"]


def __getattr__(name: str) -> Any:
    """``gallery_adversarials`` re-runs attacks, so it lives in ``fortify.evaluation.replay``; the old
    name resolves there on first use, keeping the report package free of imports from evaluation."""
    if name == "gallery_adversarials":
        from fortify.evaluation.replay import gallery_adversarials

        return gallery_adversarials
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
