"""Preprocessing defenses: shapes, ranges and flags; vectorised on batches; what each one does."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.defenses import JPEG, BitDepth, GaussianNoise, MedianFilter, RandomResizePad, RandomRotation

COMPONENTS = [
    (JPEG(75), False, False),
    (BitDepth(4), False, False),
    (MedianFilter(3), True, False),
    (GaussianNoise(0.1), True, True),
    (RandomResizePad(1.2), True, True),
    (RandomRotation(15.0), True, True),
]


@pytest.mark.parametrize("component, differentiable, randomized", COMPONENTS)
def test_components_keep_shape_and_bounds_and_declare_their_flags(component, differentiable, randomized):
    x = torch.rand(5, 3, 12, 10)
    out = component(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert component.differentiable is differentiable and component.randomized is randomized
    assert component.describe()["name"] == type(component).__name__


@pytest.mark.parametrize("component, differentiable, randomized", COMPONENTS)
def test_batches_are_processed_like_single_images(component, differentiable, randomized):
    x = torch.rand(4, 1, 16, 16)
    if randomized:
        torch.manual_seed(0)
        first = component(x)
        torch.manual_seed(0)
        assert torch.equal(first, component(x)), "randomness comes from torch's seeded generator"
        return
    batched = component(x)
    single = torch.cat([component(x[i : i + 1]) for i in range(4)])
    assert torch.allclose(batched, single, atol=1e-5)


@pytest.mark.parametrize("component", [c for c, d, _ in COMPONENTS if not d])
def test_straight_through_keeps_the_value_and_passes_the_identity_gradient(component):
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    out = component.straight_through(x)
    assert torch.allclose(out, component(x.detach()))
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, torch.ones_like(x))


def test_components_respect_other_bounds():
    bits = BitDepth(1)
    bits.bounds = (-1.0, 1.0)
    out = bits(torch.tensor([[-0.9, -0.1, 0.2, 0.95]]))
    assert out.tolist() == [[-1.0, -1.0, 1.0, 1.0]]


def test_jpeg_approximation_is_near_identity_at_quality_100_and_lossy_at_low_quality():
    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(3, 3, 36, 36), 5, stride=1)  # (3, 3, 32, 32)
    assert (JPEG(100)(smooth) - smooth).abs().max() < 0.02
    assert (JPEG(10)(smooth) - smooth).abs().mean() > (JPEG(90)(smooth) - smooth).abs().mean()


def test_jpeg_approximation_is_close_to_a_real_grey_encoder():
    image_module = pytest.importorskip("PIL.Image")
    import io

    import numpy as np

    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 35, 35), 4, stride=1)  # (1, 1, 32, 32), smooth
    pixels = (x[0, 0] * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    image_module.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=50)
    real = torch.from_numpy(np.array(image_module.open(buffer), dtype=np.float32) / 255.0)
    ours = JPEG(50)(torch.from_numpy(pixels.astype(np.float32) / 255.0)[None, None])[0, 0]
    assert (ours - real).abs().mean() < 2 / 255, "within ~2 grey levels of libjpeg on average"


def test_median_filter_removes_salt_noise_and_bit_depth_quantises():
    x = torch.full((1, 1, 9, 9), 0.5)
    x[0, 0, 4, 4] = 1.0
    assert torch.allclose(MedianFilter(3)(x), torch.full_like(x, 0.5))
    levels = BitDepth(2)(torch.rand(1000, 1)).unique()
    assert len(levels) <= 4


def test_random_transforms_differ_per_image_and_per_call():
    x = torch.rand(1, 1, 16, 16).repeat(4, 1, 1, 1)
    out = RandomRotation(30.0)(x)
    assert not torch.allclose(out[0], out[1])
    assert not torch.allclose(RandomResizePad(1.5)(x), RandomResizePad(1.5)(x))
    assert torch.allclose(RandomRotation(0.0)(x), x, atol=1e-5)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: JPEG(0), "quality"),
        (lambda: BitDepth(0), "bits"),
        (lambda: MedianFilter(0), "size"),
        (lambda: GaussianNoise(-1.0), "sigma"),
        (lambda: RandomResizePad(0.5), "max_scale"),
        (lambda: RandomRotation(200.0), "degrees"),
    ],
)
def test_bad_hyperparameters_are_rejected(build, message):
    with pytest.raises(ft.FortifyError, match=message):
        build()


def test_image_components_reject_flat_inputs():
    with pytest.raises(ft.FortifyError, match="images"):
        JPEG(75)(torch.rand(4, 30))
