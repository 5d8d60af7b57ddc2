"""The report's image gallery: clean input, adversarial input and the amplified perturbation, as PNG.

The images come from the Result's own gallery (the points the evaluation found) when it has one, else
from ``x`` / ``x_adv`` tensors the caller passes.

PNGs are encoded with the standard library (zlib + CRC chunks) and embedded as base64 data URIs, so
the page stays one self-contained file.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from html import escape

import torch
from torch import Tensor

from fortify.result import GalleryEntry, Result
from fortify.result.readers import pick_samples
from fortify.types import Bounds, FortifyError


def png_bytes(image: Tensor) -> bytes:
    """Encode a ``(H, W)`` greyscale or ``(H, W, 3)`` RGB uint8 tensor as a PNG file."""
    if image.dtype != torch.uint8 or image.dim() not in (2, 3) or (image.dim() == 3 and image.shape[2] != 3):
        raise FortifyError(
            f"png_bytes takes (H, W) or (H, W, 3) uint8, got {tuple(image.shape)} {image.dtype}"
        )
    height, width = image.shape[0], image.shape[1]
    colour_type = 0 if image.dim() == 2 else 2
    rows = image.reshape(height, -1).numpy()
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _to_uint8(image: Tensor, low: float, high: float) -> Tensor:
    """A ``(C, H, W)`` float image in ``[low, high]`` -> ``(H, W)`` or ``(H, W, 3)`` uint8."""
    scaled = ((image.float() - low) / max(high - low, 1e-12)).clamp(0, 1).mul(255).round().to(torch.uint8)
    return scaled[0] if scaled.shape[0] == 1 else scaled.permute(1, 2, 0).contiguous()


def _data_uri(image: Tensor, low: float, high: float) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(_to_uint8(image, low, high))).decode("ascii")


def is_image_batch(x: Tensor) -> bool:
    """True for ``(N, 1, H, W)`` or ``(N, 3, H, W)`` tensors, the shapes the gallery can draw."""
    return x.dim() == 4 and x.shape[1] in (1, 3)


def gallery_html(
    result: Result, x: Tensor, x_adv: Tensor, bounds: Bounds, class_names: Sequence[str] | None = None
) -> str:
    """Rows of clean / adversarial / amplified-perturbation images for up to ``MAX_GALLERY`` samples.

    ``x`` and ``x_adv`` are ``(N, C, H, W)`` in ``bounds``, aligned with ``result.samples`` by index.
    The perturbation is shown centred on grey and scaled per sample so its largest coordinate reaches
    the edge of the range; the caption states the amplification factor.
    """
    if x.shape != x_adv.shape:
        raise FortifyError(
            f"x and x_adv must have the same shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}"
        )
    if not is_image_batch(x):
        shape = escape(str(tuple(x.shape[1:])))
        return f'<p class="muted">inputs of shape {shape} are not images; no gallery.</p>'
    by_index = {s.index: s for s in result.samples}
    cells = []
    for i in pick_samples(result, x.shape[0]):
        record = by_index.get(i)
        caption = f"#{i}: true {_name(getattr(record, 'label', None), class_names)}, clean "
        caption += _name(getattr(record, "clean_pred", None), class_names)
        if record is not None and record.broken_by:
            caption += f", adversarial {_name(record.adv_pred, class_names)} ({record.broken_by})"
        else:
            caption += ", not broken"
        cells.append(_figure(_triple(x[i].detach().cpu(), x_adv[i].detach().cpu(), bounds), caption))
    return '<div class="gallery">' + "".join(cells) + "</div>"


def stored_gallery_html(entries: Sequence[GalleryEntry], class_names: Sequence[str] | None = None) -> str:
    """The same rows for a Result's own gallery: the points the evaluation found, no model needed."""
    cells = []
    for entry in entries:
        clean, adv = entry.images()
        caption = (
            f"#{entry.index}: true {_name(entry.label, class_names)}, "
            f"clean {_name(entry.clean_pred, class_names)}, adversarial {_name(entry.adv_pred, class_names)} "
            f"({entry.attack}, perturbation norm {entry.perturbation_norm:.3g})"
        )
        cells.append(_figure(_triple(clean, adv, entry.bounds), caption))
    return '<div class="gallery">' + "".join(cells) + "</div>"


def _triple(clean: Tensor, adv: Tensor, bounds: Bounds) -> list[tuple[str, str]]:
    """Data URIs and captions of the clean image, the adversarial one and the amplified perturbation."""
    low, high = bounds
    delta = adv - clean
    peak = float(delta.abs().max())
    gain = (high - low) / (2 * peak) if peak > 0 else 1.0
    shown = (low + high) / 2 + delta * gain
    return [
        (_data_uri(clean, low, high), "clean"),
        (_data_uri(adv, low, high), "adversarial"),
        (_data_uri(shown, low, high), f"perturbation ×{gain:.3g}"),
    ]


def _name(label: int | None, class_names: Sequence[str] | None) -> str:
    if label is None:
        return "—"
    if class_names is not None and 0 <= label < len(class_names):
        return f"{label} {class_names[label]}"
    return str(label)


def figure_html(images: Sequence[tuple[Tensor, str]], bounds: Bounds, caption: str) -> str:
    """One figure of ``(C, H, W)`` images in ``bounds``, each with its label, above ``caption`` (all
    text escaped): e.g. a model-inversion representative beside its class mean."""
    low, high = bounds
    return _figure([(_data_uri(image, low, high), label) for image, label in images], caption)


def _figure(images: list[tuple[str, str]], caption: str) -> str:
    imgs = "".join(
        f'<div><img src="{uri}" alt="{escape(alt)}"><span>{escape(alt)}</span></div>' for uri, alt in images
    )
    return f'<figure><div class="triple">{imgs}</div><figcaption>{escape(caption)}</figcaption></figure>'
