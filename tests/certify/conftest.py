"""A tiny CNN trained with Gaussian noise augmentation, shared by the certification tests."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.conftest import fresh_cnn_tiny

NOISE_SIGMA = 0.5


@pytest.fixture(scope="session")
def noise_trained_cnn() -> tuple[ft.Classifier, torch.Tensor, torch.Tensor]:
    """cnn-tiny trained with ``method="noise"`` at sigma 0.5 on the synthetic 4-class 8x8 set; test set."""
    x, y = ft.data.load("synthetic", "train")
    clf = fresh_cnn_tiny()
    ft.train(
        clf,
        (x, y),
        epochs=5,
        lr=3e-3,
        batch_size=64,
        seed=0,
        method="noise",
        sigma=NOISE_SIGMA,
        progress=False,
    )
    return (clf, *ft.data.load("synthetic", "test"))
