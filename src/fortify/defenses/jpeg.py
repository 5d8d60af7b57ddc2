"""JPEG compression as a preprocessing defense (Das et al. 2017; Guo et al., ICLR 2018), in torch.

This is an *approximation of the JPEG codec*, not libjpeg: it keeps the lossy core (8x8 block DCT-II,
division by the standard quantisation tables scaled by ``quality`` as in the IJG library, rounding,
dequantisation, inverse DCT) and skips what is lossless or colour-specific: no entropy coding, no
chroma subsampling (colour images are converted to YCbCr and each channel is quantised at full
resolution, luma with the luminance table, Cb/Cr with the chrominance table). Grey images use the
luminance table. Sides that are not multiples of 8 are padded by replication and cropped back.
Outputs therefore differ slightly from a real encoder's; the effect on adversarial noise (removing
high-frequency detail) is the same in kind. Fully vectorised over the batch and the blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._validate import integer
from fortify.defenses.preprocess import Preprocessor
from fortify.types import FortifyError

_LUMA = [
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
]
_CHROMA = [
    17,
    18,
    24,
    47,
    99,
    99,
    99,
    99,
    18,
    21,
    26,
    66,
    99,
    99,
    99,
    99,
    24,
    26,
    56,
    99,
    99,
    99,
    99,
    99,
    47,
    66,
    99,
    99,
    99,
    99,
    99,
    99,
    *([99] * 32),
]
_RGB_TO_YCBCR = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
_YCBCR_OFFSET = [0.0, 128.0, 128.0]


def _dct_matrix(n: int = 8) -> Tensor:
    """Orthonormal DCT-II matrix ``D`` (``D @ block @ D.T`` is the 2-D DCT of a block)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.float()


def quality_tables(quality: int) -> Tensor:
    """Luma and chroma quantisation tables ``(2, 8, 8)`` for ``quality`` in [1, 100] (IJG scaling)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    tables = torch.tensor([_LUMA, _CHROMA], dtype=torch.float32).reshape(2, 8, 8)
    return ((tables * scale + 50) / 100).floor().clamp(1, 255)


class JPEG(Preprocessor):
    """JPEG-like lossy compression at ``quality`` (1-100, default 75) of images ``(N, C, H, W)``, C = 1 or 3.

    Not differentiable (rounding of DCT coefficients): attack with BPDA (``straight_through``); the
    identity is the usual approximation (Athalye et al. 2018). Deterministic.
    """

    differentiable = False

    _dct: Tensor
    _tables: Tensor

    def __init__(self, quality: int = 75) -> None:
        super().__init__()
        self.quality = integer("quality", quality, low=1, high=100)
        self.register_buffer("_dct", _dct_matrix(), persistent=False)
        self.register_buffer("_tables", quality_tables(quality), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise FortifyError(f"JPEG takes images (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
        pixels = self._unit(x) * 255.0
        colour = x.shape[1] == 3
        if colour:
            pixels = self._to_ycbcr(pixels)
        table_index = torch.tensor([0, 1, 1] if colour else [0], device=x.device)
        out = self._compress(pixels, self._tables.to(x.dtype)[table_index])
        if colour:
            out = self._to_rgb(out)
        return self._from_unit(out / 255.0)

    def _compress(self, pixels: Tensor, tables: Tensor) -> Tensor:
        """Quantise every 8x8 block of ``pixels`` ``(N, C, H, W)`` in [0, 255] with per-channel ``tables``."""
        n, c, h, w = pixels.shape
        ph, pw = (-h) % 8, (-w) % 8
        padded = F.pad(pixels - 128.0, (0, pw, 0, ph), mode="replicate") if ph or pw else pixels - 128.0
        hb, wb = padded.shape[2] // 8, padded.shape[3] // 8
        blocks = padded.reshape(n, c, hb, 8, wb, 8).permute(0, 1, 2, 4, 3, 5)  # (N, C, hb, wb, 8, 8)
        d = self._dct.to(pixels.dtype)
        q = tables.reshape(1, c, 1, 1, 8, 8)
        coeffs = torch.round(d @ blocks @ d.T / q) * q
        restored = (d.T @ coeffs @ d).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hb * 8, wb * 8)
        return (restored[:, :, :h, :w] + 128.0).clamp(0.0, 255.0)

    @staticmethod
    def _to_ycbcr(rgb: Tensor) -> Tensor:
        m = torch.tensor(_RGB_TO_YCBCR, dtype=rgb.dtype, device=rgb.device)
        offset = torch.tensor(_YCBCR_OFFSET, dtype=rgb.dtype, device=rgb.device).reshape(1, 3, 1, 1)
        return torch.einsum("ij,njhw->nihw", m, rgb) + offset

    @staticmethod
    def _to_rgb(ycbcr: Tensor) -> Tensor:
        m = (
            torch.linalg.inv(torch.tensor(_RGB_TO_YCBCR, dtype=torch.float64))
            .to(ycbcr.dtype)
            .to(ycbcr.device)
        )
        offset = torch.tensor(_YCBCR_OFFSET, dtype=ycbcr.dtype, device=ycbcr.device).reshape(1, 3, 1, 1)
        return torch.einsum("ij,njhw->nihw", m, ycbcr - offset).clamp(0.0, 255.0)
