"""Base classifiers whose behaviour under Gaussian noise is known exactly, for testing the statistics."""

from __future__ import annotations

import torch
from scipy.stats import norm
from torch import Tensor, nn

import fortify as ft

CENTER = 0.5
"""Every test input is the single feature 0.5 (inputs are (N, 1) in [0, 1])."""


class Threshold(nn.Module):
    """Class 0 iff the first feature is below ``threshold``, else class 1.

    For the input ``CENTER`` under noise ``N(0, sigma^2)``, ``P(class 0) = Phi((threshold - CENTER) / sigma)``
    and the smoothed classifier is exactly robust up to L2 distance ``threshold - CENTER``: Cohen et
    al.'s bound is tight for this linear classifier.
    """

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, z: Tensor) -> Tensor:
        margin = z[:, 0] - self.threshold
        return torch.stack([-margin, margin], dim=1)


def threshold_for(p_a: float, sigma: float) -> float:
    """The threshold that makes ``P(class 0 | CENTER + noise) = p_a``."""
    return CENTER + sigma * float(norm.ppf(p_a))


def threshold_classifier(p_a: float, sigma: float) -> ft.Classifier:
    return ft.Classifier(Threshold(threshold_for(p_a, sigma)), num_classes=2)


def centers(rows: int) -> Tensor:
    return torch.full((rows, 1), CENTER)


class FirstRowsVote(nn.Module):
    """Votes class 1 for the first ``first`` rows it ever sees and class 0 afterwards; records every row."""

    def __init__(self, first: int) -> None:
        super().__init__()
        self.first = first
        self.seen: list[Tensor] = []

    def forward(self, z: Tensor) -> Tensor:
        start = sum(len(s) for s in self.seen)
        self.seen.append(z.detach().clone())
        position = torch.arange(start, start + z.shape[0])
        votes_one = (position < self.first).float()
        return torch.stack([1 - votes_one, votes_one], dim=1)


class Alternating(nn.Module):
    """Votes class 0 and class 1 for alternate rows of each batch: an exact tie in every even batch."""

    def forward(self, z: Tensor) -> Tensor:
        odd = (torch.arange(z.shape[0]) % 2).float()
        return torch.stack([1 - odd, odd], dim=1)


class ByCleanValue(nn.Module):
    """Class 1 iff the first feature is at least 0.5: with tiny noise, the class of the clean input."""

    def forward(self, z: Tensor) -> Tensor:
        margin = z[:, 0] - 0.5
        return torch.stack([-margin, margin], dim=1)
