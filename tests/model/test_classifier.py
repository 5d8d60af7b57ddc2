"""Classifier: normalisation inside, eval mode, batching, validation of inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fortify as ft


def _linear(features: int = 4, classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))


def test_normalisation_happens_inside_the_classifier():
    module = _linear(3 * 2 * 2, 3)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]
    clf = ft.Classifier(module, num_classes=3, mean=mean, std=std)
    x = torch.rand(5, 3, 2, 2)
    expected = module((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert torch.allclose(clf.logits(x), expected)


def test_predict_and_proba_are_batched_and_consistent():
    clf = ft.Classifier(_linear(), num_classes=3, batch_size=7)
    x = torch.rand(50, 4)
    logits = clf.logits(x)
    assert logits.shape == (50, 3)
    assert torch.equal(clf.predict(x), logits.argmax(1))
    assert torch.allclose(clf.predict_proba(x).sum(1), torch.ones(50))
    assert not logits.requires_grad


def test_module_is_put_in_eval_mode():
    module = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(4, 3))
    clf = ft.Classifier(module, num_classes=3)
    x = torch.rand(10, 4)
    assert not module.training
    assert torch.equal(clf.logits(x), clf.logits(x))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(4, 4) + 1.5, "bounds"),
        (torch.full((2, 4), float("nan")), "NaN"),
        (torch.zeros(0, 4), "non-empty"),
        (torch.ones(4, dtype=torch.long).view(1, 4), "floating"),
        (torch.rand(4), "batch"),
    ],
)
def test_bad_inputs_raise_clear_errors(x, match):
    clf = ft.Classifier(_linear(), num_classes=3)
    with pytest.raises(ValueError, match=match):
        clf.predict(x)


def test_wrong_output_shape_is_reported():
    clf = ft.Classifier(_linear(4, 5), num_classes=3)
    with pytest.raises(ValueError, match=r"expected \(N, 3\)"):
        clf.logits(torch.rand(2, 4))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 1},
        {"num_classes": 3, "bounds": (1.0, 0.0)},
        {"num_classes": 3, "std": [0.0]},
        {"num_classes": 3, "bounds": (0.0,)},
    ],
)
def test_bad_construction_is_rejected(kwargs):
    with pytest.raises(ValueError):
        ft.Classifier(_linear(), **kwargs)


def test_non_module_is_a_type_error():
    with pytest.raises(TypeError):
        ft.Classifier(lambda x: x, num_classes=3)


def test_custom_bounds_are_enforced_and_recorded():
    clf = ft.Classifier(_linear(), num_classes=3, bounds=(-1.0, 1.0))
    clf.predict(torch.rand(3, 4) * 2 - 1)
    with pytest.raises(ValueError, match="bounds"):
        clf.predict(torch.full((1, 4), -1.5))
    assert clf.describe()["bounds"] == [-1.0, 1.0]
