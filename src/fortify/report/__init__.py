"""The HTML report of one or more Results (``write_html``) and the readers it shares with MLflow and the gate.

>>> import fortify as ft
>>> ft.report.write_html(result, "runs/mine/report.html")  # gallery from result.gallery
"""

from fortify.report.page import render_html, write_html
from fortify.report.replay import gallery_adversarials

__all__ = ["render_html", "write_html", "gallery_adversarials"]
