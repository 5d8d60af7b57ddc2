"""A tiny MLP for rows of ``features`` numbers, built by a factory as a user would write it."""

from __future__ import annotations

from torch import nn


def mlp(features: int = 3, num_classes: int = 2, width: int = 16) -> nn.Module:
    return nn.Sequential(nn.Linear(features, width), nn.ReLU(), nn.Linear(width, num_classes))
