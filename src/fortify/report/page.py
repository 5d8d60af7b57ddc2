"""The self-contained HTML report: one page, no external resources, charts as inline SVG, images as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from torch import Tensor

from fortify._files import atomic_write_text
from fortify.report import sections
from fortify.report.guard_view import guard_section
from fortify.report.images import gallery_html, stored_gallery_html
from fortify.report.poisoning_view import poisoning_section
from fortify.result import Result
from fortify.result.gallery import MAX_VALUES
from fortify.result.readers import threat_label
from fortify.types import Bounds, FortifyError

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;
  background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:0 0 12px} h3{font-size:15px;margin:16px 0 6px}
section,.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:16px 0}
.facts{color:#59636e;margin-bottom:12px}
.metrics{display:flex;gap:12px;flex-wrap:wrap}
.metric{flex:1;min-width:150px;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;color:#59636e}
.metric .value{font-size:26px;font-weight:600;color:#1f2328}
.metric.main .value{color:#1f6feb}
.verdict{margin-top:12px;padding:10px 14px;border-radius:6px;font-weight:600}
.verdict ul{font-weight:400;margin:6px 0 0}
.verdict.good{background:#dafbe1;color:#116329}
.verdict.bad{background:#ffebe9;color:#cf222e;border:1px solid #cf222e}
.verdict.none{background:#f6f8fa;color:#59636e}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{color:#59636e;font-weight:600}
.ok{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:700}
.muted{color:#59636e}
.bar{display:inline-block;width:120px;height:9px;background:#eaeef2;border-radius:4px;vertical-align:middle}
.bar span{display:block;height:100%;background:#1f6feb;border-radius:4px}
svg.chart{max-width:100%;height:auto;font-size:11px;fill:#1f2328}
svg.chart .axis{stroke:#57606a} svg.chart .grid{stroke:#eaeef2} svg.chart .label{font-size:12px}
.gallery{display:flex;flex-wrap:wrap;gap:14px}
.gallery figure{margin:0;border:1px solid #eaeef2;border-radius:6px;padding:8px}
.triple{display:flex;gap:6px} .triple div{text-align:center;font-size:11px;color:#59636e}
.triple img{display:block;width:84px;height:84px;image-rendering:pixelated;border:1px solid #d0d7de}
figcaption{font-size:12px;margin-top:6px;max-width:270px}
pre{background:#f6f8fa;padding:10px;overflow:auto;max-height:360px}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
nav a{margin-right:12px;color:#0969da;text-decoration:none}
"""


def render_html(
    results: Result | Sequence[Result],
    *,
    x: Tensor | None = None,
    x_adv: Tensor | None = None,
    bounds: Bounds | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> str:
    """The report as an HTML string.

    ``results`` is one Result or several (e.g. one per eps; they then also form an accuracy–epsilon
    curve). The first result is the main one: its summary, detector, diagnostics, calibration,
    certification and environment are shown, with a gallery of clean, adversarial and
    amplified-perturbation images of the adversarial examples the evaluation found
    (``result.gallery``, schema 1.2). For a result without one, ``x`` and ``x_adv`` (optional,
    ``(N, C, H, W)`` aligned with the main result's samples, in ``bounds``, default the model's
    recorded bounds or [0, 1]) give the images; they are ignored when
    the result has its own gallery. ``class_names`` label classes.
    """
    items = [results] if isinstance(results, Result) else list(results)
    if not items:
        raise FortifyError("render_html needs at least one result")
    main = items[0]
    if (x is None) != (x_adv is None):
        raise FortifyError("pass both x and x_adv for the image gallery, or neither")
    heading = (
        title
        or f"fortify report: {main.model.get('module', 'model')} on {main.dataset or 'data'}, "
        + threat_label(main)
    )
    parts = [
        sections.summary_card(main),
        sections.overview(items),
        sections.curve_section(items),
        sections.attack_table(items),
        sections.detector_section(main),
        guard_section(main),
        poisoning_section(main),
        sections.class_section(items, class_names),
        sections.calibration_section(main),
    ]
    parts.append(_gallery(main, x, x_adv, bounds, class_names))
    parts += [
        sections.diagnostics_section(main),
        sections.certification_section(main),
        sections.other_sections(main),
        sections.environment_section(main),
    ]
    body = "".join(p for p in parts if p)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in _anchors(body))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(heading)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{escape(heading)}</h1><nav>{nav}</nav>{body}</main></body></html>"
    )


def _gallery(
    result: Result,
    x: Tensor | None,
    x_adv: Tensor | None,
    bounds: Bounds | None,
    class_names: Sequence[str] | None,
) -> str:
    """The gallery section: the result's own adversarial examples, else the caller's ``x`` / ``x_adv``,
    else a plain note that the evaluation kept none."""
    if result.gallery:
        body = stored_gallery_html(result.gallery, class_names)
    elif result.gallery is not None:
        body = '<p class="muted">No sample was broken, so there is no adversarial example to show.</p>'
    elif x is not None and x_adv is not None:
        body = (
            '<p class="muted">This result carries no gallery; these images were passed in with it and need '
            "not be the points its evaluation found.</p>"
            + gallery_html(result, x, x_adv, bounds or _recorded_bounds(result), class_names)
        )
    elif result.kind == "evaluation" and result.samples:
        body = (
            '<p class="muted">This result carries no gallery: it was written before result schema 1.2, '
            f"or its inputs are not images small enough to keep (C×H×W at most {MAX_VALUES}).</p>"
        )
    else:
        return ""
    return sections.section("gallery", "Clean, adversarial and perturbation", body)


def _anchors(body: str) -> list[tuple[str, str]]:
    names = [
        ("overview", "all results"),
        ("curve", "curve"),
        ("attacks", "attacks"),
        ("detector", "detector"),
        ("classes", "classes"),
        ("calibration", "calibration"),
        ("gallery", "gallery"),
        ("diagnostics", "diagnostics"),
        ("certification", "certification"),
        ("more", "other"),
        ("environment", "environment"),
    ]
    return [(a, t) for a, t in names if f'<section id="{a}">' in body]


def _recorded_bounds(result: Result) -> Bounds:
    bounds = result.model.get("bounds")
    if isinstance(bounds, list) and len(bounds) == 2:
        return float(bounds[0]), float(bounds[1])
    return 0.0, 1.0


def write_html(
    results: Result | Sequence[Result],
    path: str | Path,
    *,
    x: Tensor | None = None,
    x_adv: Tensor | None = None,
    bounds: Bounds | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write the report (see ``render_html``) to ``path``, creating its folder; returns the path."""
    target = Path(path)
    page = render_html(results, x=x, x_adv=x_adv, bounds=bounds, class_names=class_names, title=title)
    return atomic_write_text(target, page)
