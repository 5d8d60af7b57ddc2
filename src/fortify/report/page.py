"""The self-contained HTML report: one page, no external resources, charts as inline SVG, images as PNG."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path

from torch import Tensor

from fortify._files import atomic_write_text
from fortify.report import sections
from fortify.report.certification_view import certification_body
from fortify.report.extraction_view import extraction_body
from fortify.report.guard_view import guard_body
from fortify.report.headline import default_labels, headline
from fortify.report.images import gallery_html, stored_gallery_html
from fortify.report.inversion_view import inversion_body
from fortify.report.poisoning_view import poisoning_body
from fortify.result import Result, readers
from fortify.result.gallery import MAX_VALUES
from fortify.result.gate_record import GateRecord
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
    labels: Sequence[str] | None = None,
    gate: GateRecord | None = None,
) -> str:
    """The report as an HTML string.

    ``results`` is one Result or several (e.g. one per eps, which then also form an accuracy–epsilon
    curve). With one, the summary is its own headline; with several, the summary is the most
    pessimistic value of each measurement over all of them (lowest accuracy, highest attack success,
    any failed diagnostic) above a table of every measurement (each Result's threat, each sweep point,
    each certified radius), so the order of the Results changes nothing at the top. Each Result's
    attacks, classes, detector, guard, poisoning audit, model inversion, model extraction, calibration,
    diagnostics, certification, model identity and environment follow, under its label (``labels``, e.g. file
    names; default ``#1 linf 0.1``...). The gallery shows the first Result's adversarial examples
    (``result.gallery``, schema 1.2); for a result without one, ``x`` and ``x_adv`` (optional,
    ``(N, C, H, W)`` aligned with its samples, in ``bounds``, default the model's recorded bounds or
    [0, 1]) give the images; they are ignored when the result has its own gallery. ``class_names``
    label classes. ``gate`` (a ``GateRecord`` from ``fortify gate --out``) puts the release gate's
    verdict in the summary; the caller vouches that it is about these Results (``fortify report
    --gate`` checks the files).
    """
    items = [results] if isinstance(results, Result) else list(results)
    if not items:
        raise FortifyError("render_html needs at least one result")
    names = list(labels) if labels is not None else default_labels(items)
    if len(names) != len(items):
        raise FortifyError(f"labels: {len(names)} labels for {len(items)} results")
    main = items[0]
    if (x is None) != (x_adv is None):
        raise FortifyError("pass both x and x_adv for the image gallery, or neither")
    parts = [
        headline(items, names, gate),
        sections.curve_section(items),
        sections.attack_table(items, names),
        _each("detector", "Detector", items, names, sections.detector_body),
        _each("guard", "Guard", items, names, guard_body),
        _each("poisoning", "Poisoning", items, names, poisoning_body),
        _each("inversion", "Model inversion", items, names, inversion_body),
        _each("extraction", "Model extraction", items, names, extraction_body),
        sections.class_section(items, names, class_names),
        _each("calibration", "Confidence and calibration", items, names, sections.calibration_body),
        _gallery(main, x, x_adv, bounds, class_names),
        sections.diagnostics_section(items, names),
        _each("certification", "Certification", items, names, certification_body),
        _each("model", "Model", items, names, sections.identity_body),
        sections.other_sections(items, names),
        _each("environment", "Environment", items, names, sections.environment_body),
    ]
    body = "".join(p for p in parts if p)
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in _anchors(body))
    heading = escape(title or _heading(items))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{heading}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{heading}</h1><nav>{nav}</nav>{body}</main></body></html>"
    )


def _heading(results: Sequence[Result]) -> str:
    models = sorted({readers.model_label(r) for r in results})
    data = sorted({r.dataset or "data" for r in results})
    where = f"{', '.join(models)} on {', '.join(data)}"
    if len(results) == 1:
        main = results[0]
        detail = "certification" if main.kind == "certification" else readers.threat_label(main)
        return f"fortify report: {where}, {detail}"
    return f"fortify report: {where}, {len(results)} results"


def _each(
    anchor: str,
    title: str,
    results: Sequence[Result],
    labels: Sequence[str],
    body: Callable[[Result], str],
) -> str:
    """One section holding ``body`` of every Result that has something to show (labelled if several)."""
    blocks = [(label, body(result)) for result, label in zip(results, labels, strict=True)]
    if not any(html for _, html in blocks):
        return ""
    return sections.section(anchor, title, sections.titled(blocks))


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
        ("summary", "summary"),
        ("curve", "curve"),
        ("attacks", "attacks"),
        ("detector", "detector"),
        ("guard", "guard"),
        ("poisoning", "poisoning"),
        ("inversion", "inversion"),
        ("classes", "classes"),
        ("calibration", "calibration"),
        ("gallery", "gallery"),
        ("diagnostics", "diagnostics"),
        ("certification", "certification"),
        ("model", "model"),
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
    labels: Sequence[str] | None = None,
    gate: GateRecord | None = None,
) -> Path:
    """Write the report (see ``render_html``) to ``path``, creating its folder; returns the path."""
    target = Path(path)
    page = render_html(
        results,
        x=x,
        x_adv=x_adv,
        bounds=bounds,
        class_names=class_names,
        title=title,
        labels=labels,
        gate=gate,
    )
    return atomic_write_text(target, page)
