"""FMN (Pintor et al. 2021): minimum-norm search with an adaptive radius, L2 and Linf, targeted."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.attacks.whitebox_helpers import L2_GRID, LINF_GRID, pgd_minimal_eps


@pytest.mark.parametrize(("norm", "grid"), [("l2", L2_GRID), ("linf", LINF_GRID)])
def test_fmn_finds_no_larger_median_distance_than_pgd_needs(tiny_cnn, norm, grid):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    pgd_needs = pgd_minimal_eps(clf, x, y, norm, grid)
    out = ft.attacks.FMN(steps=50).min_norm(clf, x, y, norm)
    assert bool(out.success.all())
    assert float(out.distances.median()) < float(pgd_needs.median())


def test_targeted_fmn_hits_its_targets(tiny_cnn):
    clf, x, y = tiny_cnn
    targets = (y[:16] + 1) % clf.num_classes
    out = ft.attacks.FMN(steps=50, targeted=True).min_norm(clf, x[:16], targets, "l2")
    assert bool(out.success.all())
    assert torch.equal(clf.predict(out.x_adv), targets)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"alpha_init": 0.0}, "alpha_init"),
        ({"gamma_init": 1.0}, "gamma_init"),
        ({"gamma_init": 0.01, "gamma_final": 0.1}, "gamma_final"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_value(kwargs, match):
    with pytest.raises(ft.FortifyError, match=match):
        ft.attacks.FMN(**kwargs)
