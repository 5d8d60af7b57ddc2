"""Inputs as PNG images for the review queue and the dashboard (no imaging library needed)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def to_png(x: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)) -> bytes | None:
    """PNG bytes of one input ``(C, H, W)`` with C in {1, 3} (or ``(H, W)``), scaled from ``bounds``.

    Returns ``None`` for inputs that are not images (other shapes); non-finite values draw as 0.
    """
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] not in (1, 3) or min(x.shape[1:]) < 1:
        return None
    low, high = bounds
    scaled = np.nan_to_num((x.astype(np.float64) - low) / (high - low), nan=0.0, posinf=1.0, neginf=0.0)
    pixels = (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    channels, height, width = pixels.shape
    rows = np.ascontiguousarray(pixels.transpose(1, 2, 0)).reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    colour = 0 if channels == 1 else 2
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png_data_uri(x: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)) -> str | None:
    """``data:image/png;base64,...`` of ``to_png(x, bounds)``, or ``None`` for a non-image input."""
    png = to_png(x, bounds)
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )
