"""Tiny defenses that mask gradients, for testing adaptive evaluation (BPDA, EOT, margin losses).

They are deliberately bad defenses: each hides gradients from a naive attacker without adding real
robustness, which is exactly what evaluation must see through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import fortify as ft


class Quantize(nn.Module):
    """Rounds inputs to ``levels`` grey levels: zero gradient almost everywhere."""

    differentiable = False

    def __init__(self, levels: int = 2) -> None:
        super().__init__()
        self.levels = levels

    def forward(self, x: Tensor) -> Tensor:
        return torch.round(x * (self.levels - 1)) / (self.levels - 1)


class Saturate(nn.Module):
    """Multiplies logits by a huge constant: the softmax saturates and cross-entropy gradients vanish."""

    def __init__(self, scale: float = 1e4) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, logits: Tensor) -> Tensor:
        return logits * self.scale


class RandomResize(nn.Module):
    """Resizes the image to a random size and back (Xie et al. 2018 style): random, differentiable."""

    randomized = True

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-1]
        new = int(torch.randint(size // 2, size + 1, (1,)))
        return F.interpolate(F.interpolate(x, size=new, mode="bilinear"), size=size, mode="bilinear")


class Dropout(nn.Module):
    """Input dropout that stays on at test time, without declaring itself random."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, 0.3, training=True)


def behind(
    clf: ft.Classifier, front: nn.Module | None = None, back: nn.Module | None = None
) -> ft.Classifier:
    """``clf``'s network with ``front`` applied to inputs and ``back`` to logits, as a new Classifier."""
    parts = [m for m in (front, clf.module, back) if m is not None]
    return ft.Classifier(nn.Sequential(*parts), num_classes=clf.num_classes, bounds=clf.bounds)


class QuantizedClassifier(ft.Classifier):
    """A classifier that quantises inside its own ``forward`` and says so only at the top level."""

    differentiable = False

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(torch.round(x))
