"""DeepFool (Moosavi-Dezfooli et al. 2016): small L2 and Linf perturbations, batched over classes."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.attacks.deepfool import _class_gradients
from tests.attacks.whitebox_helpers import L2_GRID, LINF_GRID, pgd_minimal_eps


@pytest.mark.parametrize(("norm", "grid"), [("l2", L2_GRID), ("linf", LINF_GRID)])
def test_deepfool_finds_smaller_median_distance_than_pgd_needs(tiny_cnn, norm, grid):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    pgd_needs = pgd_minimal_eps(clf, x, y, norm, grid)
    out = ft.attacks.DeepFool().min_norm(clf, x, y, norm)
    assert bool(out.success.all())
    assert float(out.distances.median()) < float(pgd_needs.median())


def test_batched_class_gradients_match_one_backward_per_class(tiny_cnn):
    clf, x, _ = tiny_cnn
    x_var = x[:5].clone().requires_grad_(True)
    logits = clf(x_var)
    singles = [
        torch.autograd.grad(logits[:, k].sum(), x_var, retain_graph=True)[0] for k in range(logits.shape[1])
    ]
    batched = _class_gradients(logits, x_var)
    assert torch.allclose(batched, torch.stack(singles), atol=1e-6)


def test_overshoot_pushes_points_further(tiny_cnn):
    clf, x, y = tiny_cnn
    small = ft.attacks.DeepFool(overshoot=0.0).min_norm(clf, x[:16], y[:16], "l2").distances
    large = ft.attacks.DeepFool(overshoot=0.5).min_norm(clf, x[:16], y[:16], "l2").distances
    assert float(large.median()) > float(small.median())


def test_deepfool_has_no_targeted_variant():
    with pytest.raises(TypeError, match="targeted"):
        ft.attacks.DeepFool(targeted=True)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"steps": 0}, "steps"), ({"overshoot": -0.1}, "overshoot"), ({"candidates": 1}, "candidates")],
)
def test_bad_hyperparameters_raise_naming_the_value(kwargs, match):
    with pytest.raises(ft.FortifyError, match=match):
        ft.attacks.DeepFool(**kwargs)
