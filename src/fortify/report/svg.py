"""Small inline-SVG charts for the HTML report: a line chart and a grouped histogram.

Drawn by hand rather than with matplotlib so a report needs no plotting dependency, stays a few
kilobytes, and its text remains selectable and searchable. Every label is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989")
WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 46
BASE = HEIGHT - BOTTOM


@dataclass(frozen=True)
class Series:
    """One named line (or histogram) of a chart; ``xs`` and ``ys`` have the same length."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten) covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.4g}"


class _Frame:
    """Maps data coordinates to pixels inside the plotting area."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 <= self.x0:
            self.x0, self.x1 = self.x0 - 0.5, self.x1 + 0.5
        if self.y1 <= self.y0:
            self.y0, self.y1 = self.y0 - 0.5, self.y1 + 0.5

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)


def _axes(
    frame: _Frame,
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    x_label: str,
    y_label: str,
    y_format: str,
) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{BASE}" x2="{WIDTH - RIGHT}" y2="{BASE}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
    ]
    for tick in y_ticks:
        y = frame.py(tick)
        label = f"{100 * tick:.0f}%" if y_format == "percent" else _fmt(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for tick in x_ticks:
        x = frame.px(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{BASE}" x2="{x:.1f}" y2="{BASE + 4}" class="axis"/>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 17}" text-anchor="middle">{_fmt(tick)}</text>')
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle" class="label">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'class="label">{escape(y_label)}</text>'
    )
    return parts


def _legend(names: Sequence[str]) -> list[str]:
    """One row of coloured keys in the top margin, so it never hides data."""
    parts, x = [], LEFT
    for i, name in enumerate(names):
        text = name[:40]
        parts.append(
            f'<rect x="{x}" y="{TOP - 19}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{x + 14}" y="{TOP - 10}">{escape(text)}</text>')
        x += 30 + 7 * len(text)
    return parts


def _svg(title: str, parts: Sequence[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_range: tuple[float, float] = (0.0, 1.0),
    y_format: str = "percent",
    markers: bool = True,
) -> str:
    """An SVG line chart, one line per series (with point markers unless ``markers`` is false).

    y lies in ``y_range``, labelled in percent by default.
    """
    xs = [x for s in series for x in s.xs]
    frame = _Frame((min(xs, default=0.0), max(xs, default=1.0)), y_range)
    parts = _axes(frame, nice_ticks(frame.x0, frame.x1), nice_ticks(*y_range), x_label, y_label, y_format)
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = [(frame.px(x), frame.py(y)) for x, y in zip(s.xs, s.ys, strict=True)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (px, py), x, y in zip(points, s.xs, s.ys, strict=True) if markers else ():
            tip = (
                f"{s.name}: {_fmt(x)} → {100 * y:.1f}%"
                if y_format == "percent"
                else f"{s.name}: {_fmt(x)}, {_fmt(y)}"
            )
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
    parts += _legend([s.name for s in series])
    return _svg(title, parts)


def histogram_chart(
    edges: Sequence[float], series: Sequence[Series], *, title: str, x_label: str, y_label: str = "samples"
) -> str:
    """Grouped bars: for each bin ``[edges[i], edges[i+1])`` one bar per series (its ``ys[i]`` count)."""
    top = max((y for s in series for y in s.ys), default=1.0) or 1.0
    frame = _Frame((edges[0], edges[-1]), (0.0, top * 1.08))
    parts = _axes(
        frame, nice_ticks(edges[0], edges[-1]), nice_ticks(0.0, top * 1.08), x_label, y_label, "plain"
    )
    groups = max(len(series), 1)
    for b in range(len(edges) - 1):
        left, right = frame.px(edges[b]), frame.px(edges[b + 1])
        width = (right - left) * 0.9 / groups
        for i, s in enumerate(series):
            count = s.ys[b]
            tip = f"{s.name}: {_fmt(edges[b])}–{_fmt(edges[b + 1])}: {_fmt(count)}"
            y = frame.py(count)
            parts.append(
                f'<rect x="{left + (right - left) * 0.05 + i * width:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{frame.py(0.0) - y:.1f}" fill="{PALETTE[i % len(PALETTE)]}" opacity="0.85">'
                f"<title>{escape(tip)}</title></rect>"
            )
    parts += _legend([s.name for s in series])
    return _svg(title, parts)
