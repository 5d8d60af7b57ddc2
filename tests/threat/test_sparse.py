"""ft.L0: a sparse threat counting changed pixels (a pixel changes when any of its channels does)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fortify as ft
from fortify.threat import Threat


def test_pixel_count_counts_a_pixel_once_whatever_its_channels():
    x = torch.zeros(2, 3, 4, 4)
    x_adv = x.clone()
    x_adv[0, :, 1, 1] = 0.5  # one pixel, three channels
    x_adv[0, 0, 2, 3] = 0.1  # a second pixel, one channel
    x_adv[1, 2, 0, 0] = 0.2
    assert ft.L0(2).norm_of(x_adv - x).tolist() == [2.0, 1.0]


def test_non_image_inputs_count_every_coordinate():
    delta = torch.tensor([[0.0, 0.2, 0.0, -0.1], [0.0, 0.0, 0.0, 0.0]])
    assert ft.L0(1).norm_of(delta).tolist() == [2.0, 0.0]


def test_projection_keeps_the_largest_changes_and_resets_the_rest():
    x = torch.zeros(1, 1, 2, 2)
    x_adv = torch.tensor([[[[0.1, 0.9], [0.5, 0.2]]]])
    projected = ft.L0(2).project(x_adv, x)
    assert torch.equal(projected, torch.tensor([[[[0.0, 0.9], [0.5, 0.0]]]]))


def test_whole_numbers_only_and_registered_for_round_trips():
    with pytest.raises(ft.FortifyError, match="whole number"):
        ft.L0(1.5)
    with pytest.raises(ValueError):
        ft.L0(-1)
    assert ft.make_threat("l0", 3) == ft.L0(3)
    assert Threat.from_dict(ft.L0(4).to_dict()) == ft.L0(4)
    assert ft.L0(2).with_eps(5) == ft.L0(5)


@given(
    k=st.integers(0, 20),
    shape=st.sampled_from([(3, 1, 5, 5), (2, 3, 4, 6), (4, 12), (2, 2, 3)]),
    seed=st.integers(0, 2**16),
)
def test_property_projection_lands_in_the_ball_and_is_idempotent(k, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    x_adv = torch.rand(shape, generator=gen)
    threat = ft.L0(k)
    projected = threat.clip(x_adv, x, (0.0, 1.0))
    assert bool(threat.contains(projected, x).all())
    assert torch.equal(threat.project(projected, x), projected)
    kept = projected != x
    assert torch.equal(projected[kept], x_adv[kept])  # kept pixels keep their adversarial values


@given(
    k=st.integers(0, 10),
    shape=st.sampled_from([(3, 1, 5, 5), (2, 3, 4, 6), (4, 12)]),
    seed=st.integers(0, 2**16),
)
def test_property_random_start_and_direction_touch_at_most_k_pixels(k, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    threat = ft.L0(k)
    start = threat.random_start(x, (0.0, 1.0), gen)
    assert bool(threat.contains(start, x).all())
    assert float(start.min()) >= 0.0 and float(start.max()) <= 1.0
    direction = threat.ascent_direction(torch.randn(shape, generator=gen))
    assert bool((threat.norm_of(direction) <= k).all())
    assert bool((threat.norm_of(threat.random_delta(x, gen)) <= k).all())
