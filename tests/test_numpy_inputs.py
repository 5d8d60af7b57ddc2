"""ft.evaluate, the attacks and ft.train take NumPy arrays: float x as float32, integer y as int64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fortify as ft
from fortify.types import FortifyError


def test_evaluate_gives_the_same_result_for_numpy_and_tensors(tiny_cnn):
    clf, x, y = tiny_cnn
    from_tensors = ft.evaluate(clf, x[:12], y[:12], ft.Linf(0.05), suite="quick", seed=3)
    from_arrays = ft.evaluate(
        clf, x[:12].double().numpy(), y[:12].numpy().astype(np.int32), ft.Linf(0.05), suite="quick", seed=3
    )
    assert from_arrays.robust_accuracy == from_tensors.robust_accuracy
    assert from_arrays.clean_accuracy == from_tensors.clean_accuracy


def test_an_attack_takes_numpy_and_returns_a_tensor(tiny_cnn):
    clf, x, y = tiny_cnn
    x_adv = ft.attacks.PGD(steps=5)(clf, x[:8].numpy(), y[:8].numpy(), ft.Linf(0.1))
    assert isinstance(x_adv, torch.Tensor) and x_adv.dtype == torch.float32
    assert float((x_adv - x[:8]).abs().max()) <= 0.1 + 1e-6


def test_train_takes_numpy(tiny_cnn):
    clf, x, y = tiny_cnn
    model = ft.zoo.create("mlp", tuple(x.shape[1:]), clf.num_classes)
    history = ft.train(model, (x[:64].numpy(), y[:64].numpy()), epochs=1, batch_size=32)
    assert len(history.epochs) == 1


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((2, 1, 8, 8), dtype=np.uint8), np.zeros(2, dtype=np.int64), "pixels / 255"),
        (np.zeros((2, 1, 8, 8), dtype=np.float32), np.zeros(2, dtype=np.float32), "integer class indices"),
    ],
)
def test_numpy_of_the_wrong_kind_is_one_line(tiny_cnn, x, y, message):
    clf, _, _ = tiny_cnn
    with pytest.raises(FortifyError, match=message):
        ft.evaluate(clf, x, y, ft.Linf(0.05))
