"""A calibrated guard around the session's tiny CNN (synthetic 4-class 8x8 images)."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.runtime import Guard


def calibration_set(n: int = 800, seed: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh clean inputs from the synthetic distribution (not the training or test images)."""
    return ft.data.make_synthetic(n, seed=seed)


@pytest.fixture(scope="session")
def guard(tiny_cnn) -> Guard:
    clf, _, _ = tiny_cnn
    x_cal, y_cal = calibration_set()
    return Guard(
        [clf], preprocess=[ft.defenses.MedianFilter(2)], detectors=["squeeze", "mahalanobis", "input-stats"]
    ).calibrate(x_cal, fpr=0.05, y=y_cal)
