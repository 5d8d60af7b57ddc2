"""``/dashboard``: one server-rendered page (no scripts, no external assets) behind a ``review`` key.

Traffic and verdicts per minute over the last hour, detector score histograms (score over its review
threshold) of recent traffic, the newest alerts and what is restricted, the review queue with its
images, and which version serves what. A browser logs in once through the form (``POST
/dashboard/login``), which stores the key in an HttpOnly, SameSite=Strict cookie that only the
dashboard's GET accepts; API clients send the key as a header as everywhere else.
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fortify.service.auth import KeyRing
from fortify.service.dataplane import DataPlane
from fortify.service.deps import COOKIE, Plane, require
from fortify.service.errors import ServiceError

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=True)
COLOURS = {"ACCEPTED": "#2e7d32", "REVIEW": "#f9a825", "REJECTED": "#c62828"}
HIST_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 4.0, float("inf"))
_LOGIN = """<!doctype html><html><head><meta charset="utf-8"><title>fortify dashboard: log in</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>fortify dashboard</h1>{message}
<form method="post" action="/dashboard/login"><label>API key (role review) <input type="password"
name="key" autocomplete="off" required></label> <button type="submit">Log in</button></form></body></html>"""


@router.get("", response_class=HTMLResponse, summary="The dashboard (HTML)")
async def page(request: Request, plane: Plane) -> HTMLResponse:
    try:
        require("review", cookie=True)(request, request.app.state.keyring)
    except ServiceError as exc:
        return _login_page(str(exc) if exc.status == 403 else "", exc.status)
    body = await plane.run_io(render, plane)
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/login", summary="Set the dashboard cookie from a key (form post)")
def login(request: Request, key: Annotated[str, Form(max_length=256)]) -> Response:
    keyring: KeyRing = request.app.state.keyring
    try:
        keyring.authenticate({"x-api-key": key}).require("review")
    except ServiceError as exc:
        return _login_page(str(exc), exc.status)
    response = RedirectResponse("/dashboard", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", secure=secure, path="/dashboard")
    return response


def _login_page(message: str, status: int) -> HTMLResponse:
    shown = f'<p style="color:#c62828">{html.escape(message)}</p>' if message else ""
    return HTMLResponse(_LOGIN.format(message=shown), status_code=status)


def render(plane: DataPlane) -> str:
    """The whole page as HTML (blocking: reads the store)."""
    now = time.time()
    store = plane.store
    traffic = store.traffic(now - 3600, 60)
    scores = store.recent_scores(500)
    recent_alerts = store.recent_alerts(20)
    pending = store.list_events(review_state="pending", limit=12)
    items = [plane.review.item(int(row["id"])) for row in pending]
    sections = [
        _versions(plane),
        _traffic_chart(traffic, now),
        _score_histograms(plane, scores),
        _alerts(recent_alerts),
        _review_queue(items, store.count_events(review_state="pending")),
    ]
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>fortify dashboard</title>'
        "<style>body{font-family:sans-serif;margin:1.5em;background:#fafafa;color:#222}"
        "section{background:#fff;border:1px solid #ddd;padding:1em;margin:1em 0}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em}"
        ".items{display:flex;flex-wrap:wrap;gap:1em}.item{text-align:center;font-size:.8em}"
        "img{image-rendering:pixelated;width:84px;height:84px;border:1px solid #999}</style></head><body>"
        f"<h1>fortify: {html.escape(plane.settings.model_name)}</h1>{''.join(sections)}</body></html>"
    )


def _versions(plane: DataPlane) -> str:
    router = plane.router
    rows = []
    for version, served in plane.served.items():
        role = (
            "primary" if version == router.primary else "canary" if version == router.canary else "fallback"
        )
        share = f"{router.share:.0%} of traffic" if role == "canary" else ""
        rows.append(
            f"<tr><td>{html.escape(version)}</td><td>{role}</td><td>{share}</td>"
            f"<td>{html.escape(', '.join(served.detectors) or '-')}</td><td>{served.batcher.depth}</td></tr>"
        )
    holds = router.fallback_holds()
    hold = ", ".join(f"{html.escape(k)} for {v:.0f} s" for k, v in holds.items()) or "none"
    return (
        "<section id=versions><h2>Versions</h2><table><tr><th>version</th><th>role</th><th>share</th>"
        f"<th>detectors</th><th>queued</th></tr>{''.join(rows)}</table>"
        f"<p>On the fallback: {hold}</p></section>"
    )


def _traffic_chart(traffic: list[tuple[float, str, str, int]], now: float) -> str:
    per: dict[float, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for t, version, status, n in traffic:
        per[t][status] += n
        totals[(version, status)] += n
    width, height, start = 720, 160, (now - 3600) // 60 * 60
    peak = max((sum(c.values()) for c in per.values()), default=0) or 1
    bars = []
    for t, counts in sorted(per.items()):
        x = (t - start) / 60 * (width / 61)
        y = height
        for status in ("ACCEPTED", "REVIEW", "REJECTED"):
            h = counts.get(status, 0) / peak * (height - 10)
            if h > 0:
                y -= h
                bars.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{width / 61 - 1:.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS[status]}"><title>{status}: {counts[status]}</title></rect>'
                )
    table = "".join(
        f"<tr><td>{html.escape(v)}</td><td>{s}</td><td>{n}</td></tr>" for (v, s), n in sorted(totals.items())
    )
    return (
        "<section id=traffic><h2>Traffic, last hour (per minute)</h2>"
        f'<svg width="{width}" height="{height}" role="img" aria-label="verdicts per minute">'
        f'<rect width="{width}" height="{height}" fill="#f4f4f4"/>{"".join(bars)}</svg>'
        f"<table><tr><th>version</th><th>verdict</th><th>count</th></tr>{table}</table>"
        f"<p>peak {peak if per else 0} per minute</p></section>"
    )


def _score_histograms(plane: DataPlane, scores: list[dict[str, float]]) -> str:
    primary = plane.served[plane.settings.model_version]
    thresholds = {
        n: float(d.threshold) for n, d in zip(primary.detectors, primary.guard.detectors, strict=True)
    }
    charts = []
    for name, threshold in thresholds.items():
        values = [s[name] / threshold for s in scores if name in s and threshold > 0]
        counts = [
            sum(lo <= v < hi for v in values) for lo, hi in zip(HIST_EDGES, HIST_EDGES[1:], strict=False)
        ]
        peak = max(counts, default=0) or 1
        bars = "".join(
            f'<rect x="{i * 30}" y="{100 - c / peak * 95:.1f}" width="28" height="{c / peak * 95:.1f}" '
            f'fill="{"#c62828" if HIST_EDGES[i] >= 1.0 else "#1565c0"}"><title>{c}</title></rect>'
            for i, c in enumerate(counts)
        )
        charts.append(
            f'<div><h3>{html.escape(name)}</h3><svg width="270" height="100" role="img" '
            f'aria-label="{html.escape(name)} score histogram">{bars}</svg>'
            f"<p>{len(values)} scores; red: at or above the review threshold</p></div>"
        )
    body = "".join(charts) or "<p>this guard has no detectors</p>"
    return f'<section id=scores><h2>Detector scores / threshold</h2><div class="items">{body}</div></section>'


def _alerts(records: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _alert_cells(a)) + "</tr>" for a in records
    )
    head = "".join(f"<th>{h}</th>" for h in ("fired (UTC)", "rule", "metric", "value", "client", "action"))
    table = f"<table><tr>{head}</tr>{rows}</table>" if records else "<p>no alerts</p>"
    return f"<section id=alerts><h2>Alerts</h2>{table}</section>"


def _alert_cells(a: dict[str, Any]) -> list[str]:
    value = "" if a["value"] is None else f"{a['value']:.4g}"
    fired = time.strftime("%H:%M:%S", time.gmtime(a["fired_at"]))
    return [
        fired,
        str(a["rule"]),
        str(a["metric"]),
        value,
        str(a["client"] or "all"),
        str(a["action"] or "-"),
    ]


def _review_queue(items: list[dict[str, Any]], total: int) -> str:
    cells = []
    for item in items:
        image = f'<img src="{item["image"]}" alt="event {item["id"]}">' if item.get("image") else "(no image)"
        reasons = html.escape("; ".join(item["reasons"]))
        cells.append(
            f'<div class="item">{image}<br>#{item["id"]} label {item["label"]} '
            f'({item["confidence"]:.2f})<br><span title="{reasons}">'
            f"{html.escape(item['model_version'])}</span></div>"
        )
    body = "".join(cells) or "<p>nothing to review</p>"
    return (
        f'<section id=review><h2>Review queue ({total} pending)</h2><div class="items">{body}</div></section>'
    )
