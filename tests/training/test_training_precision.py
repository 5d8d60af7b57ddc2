"""PGD adversarial training with a bfloat16 inner attack: it trains, says so, and refuses nonsense."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fortify as ft
from fortify.data import make_synthetic
from fortify.types import FortifyError


def test_pgd_training_with_a_bf16_inner_attack_learns_and_records_it() -> None:
    x, y = make_synthetic(256, seed=1)
    torch.manual_seed(0)
    clf = ft.Classifier(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 4)), num_classes=4
    )
    history = ft.train(
        clf, (x, y), method="pgd", threat=ft.Linf(0.05), steps=3, precision="bf16", epochs=3, lr=1e-2
    )
    assert history.options["precision"] == "bf16"
    assert history.epochs[-1].loss < history.epochs[0].loss
    with pytest.raises(FortifyError, match="unknown precision"):
        ft.train(clf, (x, y), method="pgd", threat=ft.Linf(0.05), precision="fp16")
