"""Standard training: learns, is deterministic under a seed, records history, validates input."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.conftest import fresh_cnn_tiny


def test_training_learns_and_records_history():
    x, y = ft.data.load("synthetic", "train")
    xv, yv = ft.data.load("synthetic", "test")
    clf = fresh_cnn_tiny()
    history = ft.train(clf, (x, y), epochs=3, lr=3e-3, batch_size=64, val=(xv, yv), progress=False)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert history.epochs[-1].loss < history.epochs[0].loss
    assert history.epochs[-1].val_accuracy > 0.9
    assert not clf.module.training


def test_training_is_deterministic_under_a_seed():
    x, y = ft.data.load("synthetic", "train")
    a, b = fresh_cnn_tiny(), fresh_cnn_tiny()
    ft.train(a, (x, y), epochs=1, batch_size=32, seed=5, progress=False)
    ft.train(b, (x, y), epochs=1, batch_size=32, seed=5, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_a_plain_module_is_accepted():
    x, y = ft.data.load("breast-cancer", "train")
    torch.manual_seed(0)
    module = ft.zoo.create("mlp", (30,), 2)
    history = ft.train(module, (x, y), epochs=5, batch_size=64, lr=3e-3, progress=False)
    assert history.epochs[-1].accuracy > 0.9


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"method": "magic"}, {"method": "standard", "beta": 1}],
)
def test_bad_arguments_are_rejected(kwargs):
    x, y = ft.data.load("synthetic", "train")
    with pytest.raises(ValueError):
        ft.train(fresh_cnn_tiny(), (x, y), progress=False, **kwargs)


def test_out_of_range_inputs_are_rejected():
    x, y = ft.data.load("synthetic", "train")
    with pytest.raises(ValueError, match="bounds"):
        ft.train(fresh_cnn_tiny(), (x * 255, y), progress=False)
