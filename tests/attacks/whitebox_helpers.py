"""Shared helpers for the white-box attack tests: a model with infinite logits, PGD's minimal radius."""

from __future__ import annotations

import torch
from torch import nn

import fortify as ft


class InfLogits(nn.Module):
    """A linear model: class-0 logit +inf on bright inputs, class-1 logit -inf on dark ones."""

    def __init__(self, features: int, num_classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x.flatten(1))
        bright = x.flatten(1).mean(dim=1) > 0.5
        inf = torch.full_like(z[:, 0], torch.inf)
        first = torch.where(bright, inf, z[:, 0])
        second = torch.where(~bright, -inf, z[:, 1])
        return torch.cat([first[:, None], second[:, None], z[:, 2:]], dim=1)


def inf_logits_classifier(shape: tuple[int, ...]) -> ft.Classifier:
    features = 1
    for s in shape:
        features *= s
    return ft.Classifier(InfLogits(features), num_classes=4)


_PGD_NEEDS: dict[tuple[object, ...], torch.Tensor] = {}


def pgd_minimal_eps(
    clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, norm: str, grid: torch.Tensor
) -> torch.Tensor:
    """Per sample, the smallest radius of ``grid`` at which PGD-20 breaks it (inf if none).

    Cached per (model, norm, batch size, grid), since several tests compare against the same numbers.
    """
    key = (id(clf), norm, x.shape[0], tuple(grid.tolist()))
    if key in _PGD_NEEDS:
        return _PGD_NEEDS[key]
    needed = torch.full((x.shape[0],), torch.inf)
    for eps in grid.tolist():
        todo = torch.isinf(needed).nonzero().squeeze(1)
        if todo.numel() == 0:
            break
        x_adv = ft.attacks.PGD(steps=20)(clf, x[todo], y[todo], ft.make_threat(norm, eps))
        broken = clf.predict(x_adv) != y[todo]
        needed[todo[broken]] = eps
    _PGD_NEEDS[key] = needed
    return needed


L2_GRID = torch.arange(0.1, 3.01, 0.1)
LINF_GRID = torch.arange(0.02, 0.5, 0.02)
