"""The report's Model inversion section (``sections["inversion"]``): each class's representative beside
its class mean, with how similar they are.

The images are decoded from the Result as the gallery's are (``fortify.result.gallery.decode_pixels``:
bounded inflation, exact size, values inside the recorded bounds); an image that fails those checks is
left out with a note, never drawn from unchecked bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from torch import Tensor

from fortify._validate import is_number
from fortify.report.images import figure_html
from fortify.report.sections import pct, table
from fortify.result import Result
from fortify.result.gallery import decode_pixels


def _image(row: Mapping[str, Any], key: str, shape: list[int], bounds: tuple[float, float]) -> Tensor | None:
    text = row.get(key)
    if not isinstance(text, str):
        return None
    try:
        return decode_pixels(text, shape, bounds)
    except ValueError:
        return None


def _score(values: Any, k: Any) -> float | None:
    if not isinstance(values, list) or not isinstance(k, int) or not 0 <= k < len(values):
        return None
    value = values[k]
    return float(value) if is_number(value) else None


def _label(k: Any, name: Any) -> str:
    return f"{k} {name}" if isinstance(name, str) else str(k)


def _caption(row: Mapping[str, Any], names: dict[int, str]) -> str:
    label = row.get("label")
    text = f"{_label(label, row.get('name'))}: confidence {pct(_fraction(row.get('confidence')))}"
    own = _score(row.get("cosine"), label)
    if own is not None:
        text += f", cosine to its class mean {own:.2f}"
    nearest = row.get("nearest_class")
    if isinstance(nearest, int):
        text += f", nearest class mean: {_label(nearest, names.get(nearest))}"
    return text


def _fraction(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def inversion_body(result: Result) -> str:
    """Figures of representative / class mean, one per class, and a table of the similarities."""
    record = result.sections.get("inversion")
    if not isinstance(record, dict):
        return ""
    rows = [r for r in record.get("classes", []) if isinstance(r, dict)]
    names = {r["label"]: r["name"] for r in rows if isinstance(r.get("label"), int) and "name" in r}
    shape, bounds = record.get("shape"), record.get("bounds")
    figures, broken = [], 0
    if isinstance(shape, list) and isinstance(bounds, (list, tuple)) and len(bounds) == 2:
        low, high = float(bounds[0]), float(bounds[1])
        for row in rows:
            image = _image(row, "image", shape, (low, high))
            if image is None:
                broken += "image" in row
                continue
            images = [(image, "inverted")]
            mean = _image(row, "class_mean", shape, (low, high))
            if mean is not None:
                images.append((mean, "class mean"))
            figures.append(figure_html(images, (low, high), _caption(row, names)))
    identified = _fraction(record.get("identified"))
    intro = (
        f"<p>{escape(str(record.get('attack', 'model inversion')))}: {record.get('steps')} descent steps "
        f"per class on the model's confidence alone. "
    )
    if identified is not None:
        intro += (
            f"{pct(identified)} of the representatives are nearest their own class mean (cosine after "
            f"centring on the mean of {record.get('n_reference')} reference images: own class "
            f"{_fraction(record.get('mean_true_cosine')) or 0:.2f} on average, other classes "
            f"{_fraction(record.get('mean_other_cosine')) or 0:.2f})."
        )
    intro += "</p>"
    note = (
        f'<p class="muted">{broken} stored image(s) failed their checks and are not shown.</p>'
        if broken
        else ""
    )
    gallery = '<div class="gallery">' + "".join(figures) + "</div>" if figures else ""
    headers = ["class", "confidence", "cosine to own mean", "L2 to own mean", "nearest class mean"]
    return intro + note + gallery + table(headers, [_row(r, names) for r in rows])


def _row(row: Mapping[str, Any], names: dict[int, str]) -> list[str]:
    label, nearest = row.get("label"), row.get("nearest_class")
    return [
        _label(label, row.get("name")),
        pct(_fraction(row.get("confidence"))),
        _number(_score(row.get("cosine"), label)),
        _number(_score(row.get("l2"), label)),
        _label(nearest, names.get(nearest)) if isinstance(nearest, int) else "—",
    ]


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
