"""The gallery section of a Result (schema 1.2): a few adversarial examples the evaluation itself found.

Each entry carries the clean and the adversarial image of one broken sample, exactly as the evaluation
judged them, so the report can show the very points that fooled the model without the model and
without attacking again, and anyone can check them against the model.

Pixels are stored compactly and, for float32 inputs, losslessly: the ``(C, H, W)`` image as
little-endian float32, zlib-compressed, base64-encoded (1 to 3 kB of JSON per 28x28 image).
Lossless on purpose: a minimum-norm attack leaves its point within about 1e-6 of the decision
boundary, where any rounding may turn the stored point back into a correctly classified one.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from torch import Tensor

MAX_VALUES = 3 * 64 * 64
"""Largest image (C * H * W) a gallery keeps."""


def encode_pixels(image: Tensor) -> str:
    """A ``(C, H, W)`` image -> the compact text stored in a gallery entry (float32, lossless)."""
    values = image.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4")
    return base64.b64encode(zlib.compress(values.tobytes(), 9)).decode("ascii")


def decode_pixels(text: str, shape: list[int], bounds: tuple[float, float] | None = None) -> Tensor:
    """The stored text -> a float32 tensor of ``shape``.

    Raises ``ValueError`` when the text is not base64 zlib data of exactly that many float32 values,
    or (given ``bounds``) when a value is not finite or lies outside them.
    """
    expected = 4 * math.prod(shape)
    try:
        packed = base64.b64decode(text, validate=True)
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, expected + 1)  # bounded: a hostile file cannot inflate further
    except (binascii.Error, zlib.error) as exc:
        raise ValueError(f"not base64 zlib-compressed float32 pixels ({exc})") from None
    if len(raw) != expected:
        got = f"more than {expected}" if len(raw) > expected else f"{len(raw)}"
        raise ValueError(f"holds {got} bytes, but shape {shape} needs {expected} (float32 pixels)")
    if not inflate.eof or inflate.unused_data:
        raise ValueError("is not one complete zlib stream")
    values = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    if bounds is not None:
        slack = 1e-6 * max(1.0, abs(bounds[0]), abs(bounds[1]))  # float32 rounding of the bounds themselves
        if (
            not np.isfinite(values).all()
            or values.min() < bounds[0] - slack
            or values.max() > bounds[1] + slack
        ):
            raise ValueError(f"has pixels outside bounds {list(bounds)}")
    return torch.from_numpy(values)


class GalleryEntry(BaseModel):
    """One broken sample as the evaluation left it: the point that first fooled the model (1.2).

    ``attack``, ``adv_pred`` and ``perturbation_norm`` equal the sample's record in ``Result.samples``
    (``broken_by``, ``adv_pred``, ``perturbation_norm``); ``clean`` and ``adversarial`` are the encoded
    ``(C, H, W)`` images (see the module docstring), inside ``bounds``, the model's input range.
    """

    model_config = ConfigDict(extra="forbid")

    index: int
    label: int
    clean_pred: int
    adv_pred: int
    attack: str
    perturbation_norm: float
    shape: list[int] = Field(description="(C, H, W) of one image: greyscale (C = 1) or RGB (C = 3)")
    bounds: tuple[float, float] = Field(description="(low, high): the model's input range")
    clean: str = Field(description="base64 of the zlib-compressed little-endian float32 image")
    adversarial: str = Field(description="as clean, for the adversarial point")

    @field_validator("shape")
    @classmethod
    def _image_shape(cls, shape: list[int]) -> list[int]:
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
            raise ValueError(f"must be (C, H, W) with C 1 or 3 and H, W >= 1, got {shape}")
        return shape

    @field_validator("bounds")
    @classmethod
    def _finite_range(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not (math.isfinite(bounds[0]) and math.isfinite(bounds[1]) and bounds[0] < bounds[1]):
            raise ValueError(f"must be finite with low < high, got {list(bounds)}")
        return bounds

    @field_validator("clean", "adversarial")
    @classmethod
    def _pixels_fit(cls, text: str, info: ValidationInfo) -> str:
        if "shape" in info.data and "bounds" in info.data:
            decode_pixels(text, info.data["shape"], info.data["bounds"])
        return text

    def images(self) -> tuple[Tensor, Tensor]:
        """The clean and the adversarial image, float32 ``(C, H, W)``, as the evaluation had them."""
        return decode_pixels(self.clean, self.shape), decode_pixels(self.adversarial, self.shape)
