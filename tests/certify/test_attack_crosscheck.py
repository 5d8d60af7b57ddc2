"""Empirical cross-check: PGD with EOT over the noise never moves the smoothed prediction inside a
certified radius, while the same attack with a larger budget does move it (so it is a real attack)."""

from __future__ import annotations

import torch

import fortify as ft
from fortify.certify import ABSTAIN, NoiseAveraged, Smooth
from tests.certify.conftest import NOISE_SIGMA

ALPHA = 0.001


def _attack_each(
    target: ft.Classifier, x: torch.Tensor, labels: torch.Tensor, radii: torch.Tensor
) -> torch.Tensor:
    attack = ft.attacks.PGD(steps=10, rel_stepsize=0.25, seed=0)
    return torch.cat(
        [attack(target, x[i : i + 1], labels[i : i + 1], ft.L2(float(radii[i]))) for i in range(x.shape[0])]
    )


def test_pgd_with_eot_never_succeeds_inside_the_certified_radius(noise_trained_cnn) -> None:
    clf, x_test, _ = noise_trained_cnn
    smooth = Smooth(clf, NOISE_SIGMA, seed=0)
    cert = smooth.certify(x_test[:6], n0=64, n=1000, alpha=ALPHA)
    keep = cert.prediction != ABSTAIN
    assert int(keep.sum()) >= 5
    x, labels, radii = x_test[:6][keep], cert.prediction[keep], cert.radius[keep]
    target = NoiseAveraged(clf, NOISE_SIGMA, samples=8, seed=0)

    inside = smooth.predict(_attack_each(target, x, labels, radii), n=500, alpha=ALPHA)
    assert torch.all((inside == labels) | (inside == ABSTAIN)), (inside, labels)

    outside = smooth.predict(_attack_each(target, x, labels, 4 * radii), n=500, alpha=ALPHA)
    assert bool(((outside != labels) & (outside != ABSTAIN)).any()), (
        "the attack should work with 4x the budget"
    )


def test_noise_averaged_is_a_randomized_differentiable_classifier(noise_trained_cnn) -> None:
    clf, x_test, _ = noise_trained_cnn
    target = NoiseAveraged(clf, NOISE_SIGMA, samples=8)
    x = x_test[:4].clone().requires_grad_(True)
    out = target(x)
    assert out.shape == (4, 4) and target.randomized
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(4), atol=1e-5)
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)
    assert bool(grad.abs().sum() > 0)
    assert not torch.equal(target(x_test[:4]), target(x_test[:4]))
