"""OnePixel (differential evolution): changes at most k pixels, finds what exhaustive search finds,
and counts its queries."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fortify as ft


@given(k=st.integers(1, 4), n=st.integers(1, 6), seed=st.integers(0, 100))
def test_property_changes_at_most_k_pixels_of_an_image(tiny_cnn, k, n, seed):
    clf, x, y = tiny_cnn
    attack = ft.attacks.OnePixel(pixels=k, population=8, steps=3, seed=seed)
    x_adv = attack(clf, x[:n], y[:n], ft.L0(k))
    assert bool((ft.L0(k).norm_of(x_adv - x[:n]) <= k).all())
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


def test_a_pixel_is_all_its_channels():
    weights = torch.randn(3 * 4 * 4, 3, generator=torch.Generator().manual_seed(0))
    box = ft.BlackBox(lambda z: z.flatten(1) @ weights, 3)
    x = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    y = box.predict(x)
    x_adv = ft.attacks.OnePixel(pixels=2, population=20, steps=10)(box, x, y, ft.L0(2))
    changed = (x_adv != x).any(dim=1).flatten(1).sum(dim=1)
    assert bool((changed <= 2).all()) and bool((changed > 0).any())


def test_one_feature_attack_matches_exhaustive_search_on_the_tabular_model(tiny_mlp):
    mlp, x, y = tiny_mlp
    right = mlp.predict(x) == y
    x, y = x[right], y[right]
    out = ft.attacks.OnePixel(pixels=1, population=40, steps=20).attack(mlp, x, y, ft.L0(1))
    robust = float((mlp.predict(out.x_adv) == y).float().mean())
    broken = torch.zeros(len(y), dtype=torch.bool)
    for feature in range(x.shape[1]):  # every single-feature change on a grid of 21 values
        for value in torch.linspace(0, 1, 21):
            moved = x.clone()
            moved[:, feature] = value
            broken |= mlp.predict(moved) != y
    assert robust <= 1 - float(broken.float().mean()) + 0.05
    assert robust < 0.9
    assert int(out.queries.max()) <= 40 * 21 + 2


def test_bad_configuration_and_threats(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(ft.FortifyError, match="population"):
        ft.attacks.OnePixel(population=3)
    with pytest.raises(ft.FortifyError, match="pixels"):
        ft.attacks.OnePixel(pixels=0)
    with pytest.raises(ft.FortifyError, match="L0"):
        ft.attacks.OnePixel(population=4, steps=1)(clf, x[:2], y[:2], ft.Linf(0.1))
    with pytest.raises(ft.FortifyError, match="does not fit"):
        ft.attacks.OnePixel(pixels=3, population=4, steps=1)(clf, x[:2], y[:2], ft.L0(2))
