"""Training for smoothing: ``method="noise"`` (Gaussian augmentation) and ``method="consistency"``."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.conftest import fresh_cnn_tiny


def _accuracy_under_noise(clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    gen = torch.Generator().manual_seed(123)
    noisy = x.repeat(8, 1, 1, 1) + sigma * torch.randn((8 * x.shape[0], *x.shape[1:]), generator=gen)
    return float((clf.predict(noisy, check=False) == y.repeat(8)).float().mean())


def test_smoothing_methods_are_registered() -> None:
    assert {"noise", "consistency"} <= set(ft.training.method_names())


def test_noise_training_makes_the_model_more_accurate_under_gaussian_noise(
    noise_trained_cnn, tiny_cnn
) -> None:
    noisy, x_test, y_test = noise_trained_cnn  # method="noise", sigma 0.5
    standard = tiny_cnn[0]  # the same recipe with method="standard"
    assert _accuracy_under_noise(noisy, x_test, y_test, 0.5) > _accuracy_under_noise(
        standard, x_test, y_test, 0.5
    )
    assert (
        _accuracy_under_noise(noisy, x_test, y_test, 1.0)
        >= _accuracy_under_noise(standard, x_test, y_test, 1.0) + 0.02
    )


def test_consistency_training_runs_and_keeps_clean_accuracy() -> None:
    x, y = ft.data.load("synthetic", "train")
    clf = fresh_cnn_tiny()
    ft.train(
        clf,
        (x, y),
        epochs=3,
        lr=3e-3,
        batch_size=64,
        method="consistency",
        sigma=0.5,
        m=2,
        lbd=5.0,
        progress=False,
    )
    x_test, y_test = ft.data.load("synthetic", "test")
    assert float((clf.predict(x_test) == y_test).float().mean()) > 0.9


@pytest.mark.parametrize(
    ("method", "options", "name"),
    [
        ("noise", {"sigma": 0.0}, "sigma"),
        ("noise", {"sigma": -1.0}, "sigma"),
        ("consistency", {"m": 1}, "m"),
        ("consistency", {"lbd": -1.0}, "lbd"),
        ("noise", {"sigmaa": 0.5}, "noise"),
    ],
)
def test_bad_smoothing_options_are_refused(method: str, options: dict[str, float], name: str) -> None:
    x, y = ft.data.load("synthetic", "train", n=8)
    clf = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)
    with pytest.raises(ft.FortifyError, match=name):
        ft.train(clf, (x, y), method=method, progress=False, **options)
