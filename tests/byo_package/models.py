"""A tiny CNN for 1 x 8 x 8 inputs, built by a factory with keyword arguments, as a user would write."""

from __future__ import annotations

from torch import nn

CALLS: list[dict[str, object]] = []
"""Every call of ``tiny_cnn``: a test can see whether fortify ran this code."""


def tiny_cnn(width: int = 4, num_classes: int = 4) -> nn.Module:
    CALLS.append({"width": width, "num_classes": num_classes})
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(width * 4, num_classes),
    )


NOT_A_FACTORY = 3
