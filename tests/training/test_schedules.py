"""Schedules: learning-rate shapes and the epsilon curriculum, as recorded by the training loop."""

from __future__ import annotations

import pytest

import fortify as ft
from fortify.training.schedules import eps_factor, lr_factor
from tests.conftest import fresh_cnn_tiny


def test_lr_schedules_have_their_shapes():
    assert [lr_factor("constant", t) for t in (0, 0.5, 1)] == [1, 1, 1]
    assert lr_factor("cosine", 0) == pytest.approx(1) and lr_factor("cosine", 1) == pytest.approx(0)
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("cyclic", 0) == 0 and lr_factor("cyclic", 0.4) == pytest.approx(1)
    assert lr_factor("cyclic", 1) == pytest.approx(0) and lr_factor("cyclic", 0.7) == pytest.approx(0.5)


def test_eps_curriculum_ramps_linearly_then_holds():
    assert eps_factor(0.0, 0.5) == 0 and eps_factor(0.25, 0.5) == pytest.approx(0.5)
    assert eps_factor(0.5, 0.5) == 1 and eps_factor(0.9, 0.5) == 1
    assert eps_factor(0.0, 0.0) == 1


def test_training_records_the_scheduled_lr_and_eps_per_epoch():
    x, y = ft.data.load("synthetic", "train", n=128)
    clf = fresh_cnn_tiny()
    history = ft.train(
        clf,
        (x, y),
        epochs=4,
        lr=1e-2,
        batch_size=64,
        method="fast",
        threat=ft.Linf(0.2),
        lr_schedule="cosine",
        eps_ramp=0.5,
        optimizer="sgd",
        weight_decay=5e-4,
        co_check_every=0,
        progress=False,
    )
    eps = [e.eps for e in history.epochs]
    lrs = [e.lr for e in history.epochs]
    assert eps[0] < eps[1] <= 0.2 and eps[2] == eps[3] == pytest.approx(0.2)
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.1 * 1e-2
    assert history.config["optimizer"] == "sgd" and history.config["lr_schedule"] == "cosine"
