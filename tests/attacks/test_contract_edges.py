"""The edges of the attack contract: exact projection (``contains`` holds with no tolerance), dtype
mismatches and wrong output shapes as one-line FortifyErrors, and NaN / probability outputs caught by
the diagnostics so such a Result is never ``reliable``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fortify as ft


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("threat", [ft.Linf, ft.L2])
@pytest.mark.parametrize("eps", [1e-3, 0.031, 0.3, 2.5])
def test_clip_is_exact_every_point_is_inside_with_no_tolerance(dtype, threat, eps):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(128, 3, 8, 8, generator=generator).to(dtype)
    far = (x + torch.randn(x.shape, generator=generator).to(dtype)).clamp(0, 1)
    t = threat(eps)
    clipped = t.clip(far, x, (0.0, 1.0))
    assert bool((t.norm_of(clipped - x) <= t.eps).all())
    assert bool(t.contains(clipped, x).all())
    assert float(clipped.min()) >= 0.0 and float(clipped.max()) <= 1.0
    # still the projection: within a few ulps of the rounded one
    assert torch.allclose(
        clipped, t.project(far, x).clamp(0, 1), atol=1e-2 if dtype == torch.float16 else 1e-5
    )


class _Head(nn.Module):
    def __init__(self, outputs: int, squeeze: bool = False, softmax: bool = False, nan: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, outputs)
        self.squeeze, self.softmax, self.nan = squeeze, softmax, nan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x.flatten(1))
        if self.nan:
            z = torch.where(x.flatten(1)[:, :1] > 0.5, torch.full_like(z, float("nan")), z)
        if self.softmax:
            z = z.softmax(dim=1)
        return z.squeeze(1) if self.squeeze else z


ATTACKS = [ft.attacks.FGSM(), ft.attacks.PGD(steps=2), ft.attacks.Square(n_queries=5), ft.attacks.DeepFool()]


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_an_input_of_another_dtype_than_the_weights_is_a_clear_error(attack, dtype):
    clf = ft.Classifier(_Head(4), num_classes=4)
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, 4, (5,))
    with pytest.raises(
        ft.FortifyError, match=f"inputs are {dtype} but the model's weights are torch.float32"
    ):
        attack(clf, x.to(dtype), y, ft.Linf(0.1))


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize(("head", "shape"), [(_Head(7), r"\(5, 7\)"), (_Head(1, squeeze=True), r"\(5,\)")])
def test_wrong_output_width_or_1d_outputs_are_a_clear_error(attack, head, shape):
    clf = ft.Classifier(head, num_classes=4)
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, 4, (5,))
    with pytest.raises(ft.FortifyError, match=f"module returned shape {shape}.*expected \\(N, 4\\)"):
        attack(clf, x, y, ft.Linf(0.1))
    with pytest.raises(ft.FortifyError, match="module returned shape"):
        ft.evaluate(clf, x, y, ft.Linf(0.1))


@pytest.mark.parametrize(
    ("head", "evidence", "scope"),
    [
        (_Head(4, softmax=True), "are probabilities", "model"),  # compensated: attacked through the log
        (_Head(4, nan=True), "NaN or infinite outputs", "evaluation"),
    ],
)
def test_nan_or_probability_outputs_fail_the_output_check(head, evidence, scope):
    clf = ft.Classifier(head, num_classes=4)
    x, y = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.randint(0, 4, (12,))
    result = ft.evaluate(clf, x, y, ft.Linf(0.1), suite="quick")
    check = next(d for d in result.diagnostics if d.name == "outputs_are_logits")
    assert not check.passed and evidence in check.evidence and check.scope == scope
    if scope == "evaluation":
        assert not result.reliable  # NaN outputs: no attack can be trusted


def test_finite_logits_pass_the_output_check(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:16], y[:16], ft.Linf(0.1), suite="quick")
    check = next(d for d in result.diagnostics if d.name == "outputs_are_logits")
    assert check.passed and check.details["samples"] == 16
