"""C&W L2 (Carlini & Wagner 2017): minimal perturbations, binary search, pixels at the bounds can move."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.attacks.whitebox_helpers import L2_GRID, pgd_minimal_eps


def test_cw_finds_smaller_median_l2_than_pgd_needs(tiny_cnn):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    pgd_needs = pgd_minimal_eps(clf, x, y, "l2", L2_GRID)
    out = ft.attacks.CW(steps=50, binary_search_steps=4).min_norm(clf, x, y, "l2")
    assert bool(out.success.all())
    assert float(out.distances.median()) < float(pgd_needs.median())


def test_more_binary_search_steps_never_give_larger_distances(tiny_cnn):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    few = ft.attacks.CW(steps=20, binary_search_steps=1).min_norm(clf, x, y, "l2").distances
    many = ft.attacks.CW(steps=20, binary_search_steps=3).min_norm(clf, x, y, "l2").distances
    assert bool((many <= few + 1e-5).all())
    assert float(many.median()) < float(few.median())


def test_pixels_exactly_at_the_bounds_can_change(tiny_cnn):
    clf, x, y = tiny_cnn
    x = x[:16].clone()
    x[:, :, :2, :] = 0.0  # saturate two rows: tanh-space C&W could never move these pixels
    x[:, :, -2:, :] = 1.0
    keep = clf.predict(x) == y[:16]
    x_adv = ft.attacks.CW(steps=20, binary_search_steps=1, lr=0.05)(clf, x[keep], y[:16][keep], ft.L2(4.0))
    changed = (x_adv - x[keep]).abs() > 1e-6
    assert bool(changed[:, :, :2, :].any()) and bool(changed[:, :, -2:, :].any())


def test_targeted_cw_hits_its_targets(tiny_cnn):
    clf, x, y = tiny_cnn
    targets = (y[:16] + 2) % clf.num_classes
    attack = ft.attacks.CW(steps=30, binary_search_steps=2, lr=0.05, targeted=True)
    out = attack.min_norm(clf, x[:16], targets, "l2")
    assert bool(out.success.all())
    assert torch.equal(clf.predict(out.x_adv), targets)


def test_confidence_buys_a_margin_at_a_larger_distance(tiny_cnn):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    plain = ft.attacks.CW(steps=30, binary_search_steps=2, lr=0.05).min_norm(clf, x, y, "l2")
    sure = ft.attacks.CW(steps=30, binary_search_steps=2, lr=0.05, confidence=2.0).min_norm(clf, x, y, "l2")
    logits = clf.logits(sure.x_adv)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_other = logits.scatter(1, y[:, None], -torch.inf).amax(1)
    ok = sure.success
    assert bool((z_other[ok] - z_y[ok] >= 2.0 - 1e-3).all())
    assert float(sure.distances[ok].median()) > float(plain.distances[ok].median())


def test_cw_refuses_linf():
    with pytest.raises(ft.FortifyError, match="l2"):
        clf = ft.Classifier(torch.nn.Flatten(), num_classes=4)
        ft.attacks.CW().min_norm(clf, torch.rand(2, 4), torch.tensor([0, 1]), "linf")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"binary_search_steps": 0}, "binary_search_steps"),
        ({"initial_const": -1.0}, "initial_const"),
        ({"confidence": -0.5}, "confidence"),
        ({"lr": 0.0}, "lr"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_value(kwargs, match):
    with pytest.raises(ft.FortifyError, match=match):
        ft.attacks.CW(**kwargs)
