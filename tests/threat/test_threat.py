"""Threats: projection, clipping, random start, norms, bad eps."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fortify as ft

NORMS = ["linf", "l2"]
shapes = st.sampled_from([(1, 5), (3, 1, 4, 4), (2, 3, 2, 2), (7, 10)])


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), -1])
@pytest.mark.parametrize("cls", [ft.Linf, ft.L2])
def test_bad_eps_is_rejected_naming_the_value(cls, bad):
    with pytest.raises(ValueError, match="eps"):
        cls(bad)


@pytest.mark.parametrize("cls", [ft.Linf, ft.L2])
def test_non_numeric_eps_is_a_type_error(cls):
    with pytest.raises(TypeError):
        cls("0.1")


@pytest.mark.parametrize("norm", NORMS)
@given(shape=shapes, eps=st.floats(0.0, 3.0), scale=st.floats(0.0, 10.0), seed=st.integers(0, 1000))
def test_clip_lands_in_ball_and_bounds(norm, shape, eps, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    far = x + scale * torch.randn(shape, generator=gen)
    threat = ft.make_threat(norm, eps)
    out = threat.clip(far, x, (0.0, 1.0))
    assert bool(threat.contains(out, x).all())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@pytest.mark.parametrize("norm", NORMS)
@given(shape=shapes, eps=st.floats(0.01, 2.0), seed=st.integers(0, 1000))
def test_projection_is_identity_inside_the_ball(norm, shape, eps, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    threat = ft.make_threat(norm, eps)
    inside = x + 0.5 * threat.random_delta(x, gen)
    assert torch.allclose(threat.project(inside, x), inside, atol=1e-6)


@pytest.mark.parametrize("norm", NORMS)
def test_random_start_is_inside_the_ball_and_seeded(norm):
    x = torch.rand(64, 1, 6, 6)
    threat = ft.make_threat(norm, 0.5)
    a = threat.random_start(x, (0.0, 1.0), torch.Generator().manual_seed(3))
    b = threat.random_start(x, (0.0, 1.0), torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert bool(threat.contains(a, x).all())
    assert float((a - x).abs().max()) > 0


def test_l2_random_delta_is_uniform_in_the_ball_by_radius():
    # For a uniform point in a d-ball the radius r/eps has CDF t^d; with d=2 the median radius is eps/sqrt(2).
    x = torch.zeros(20_000, 2)
    radii = ft.L2(1.0).norm_of(ft.L2(1.0).random_delta(x, torch.Generator().manual_seed(0)))
    assert abs(float(radii.median()) - 1 / math.sqrt(2)) < 0.02
    assert float(radii.max()) <= 1.0 + 1e-6


def test_linf_random_delta_covers_the_cube_uniformly():
    delta = ft.Linf(0.2).random_delta(torch.zeros(50_000, 1), torch.Generator().manual_seed(0))
    assert float(delta.min()) >= -0.2 and float(delta.max()) <= 0.2
    assert abs(float(delta.mean())) < 0.005 and abs(float(delta.abs().mean()) - 0.1) < 0.005


def test_ascent_directions_have_unit_norm():
    grad = torch.randn(5, 3, 4, 4)
    assert torch.equal(ft.Linf(0.1).ascent_direction(grad), grad.sign())
    assert torch.allclose(ft.L2(0.1).norm_of(ft.L2(0.1).ascent_direction(grad)), torch.ones(5))


def test_norm_of_matches_definitions():
    delta = torch.tensor([[3.0, -4.0], [0.5, 0.0]])
    assert torch.allclose(ft.Linf(1).norm_of(delta), torch.tensor([4.0, 0.5]))
    assert torch.allclose(ft.L2(1).norm_of(delta), torch.tensor([5.0, 0.5]))


def test_make_threat_names_and_round_trip():
    assert ft.make_threat("Linf", 0.1) == ft.Linf(0.1)
    assert ft.make_threat("L2", 0.5) == ft.L2(0.5)
    assert ft.Threat.from_dict(ft.L2(0.5).to_dict()) == ft.L2(0.5)
    with pytest.raises(ValueError, match="unknown norm"):
        ft.make_threat("l7", 0.1)
