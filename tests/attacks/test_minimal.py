"""The minimum-norm API (``min_norm``, ``minimal_distances``) and white-box attacks on infinite logits."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.attacks.whitebox_helpers import inf_logits_classifier

MIN_NORM = [
    pytest.param(lambda: ft.attacks.CW(steps=30, binary_search_steps=2), "l2", id="cw"),
    pytest.param(lambda: ft.attacks.DeepFool(), "l2", id="deepfool-l2"),
    pytest.param(lambda: ft.attacks.DeepFool(), "linf", id="deepfool-linf"),
    pytest.param(lambda: ft.attacks.FMN(steps=30), "l2", id="fmn-l2"),
    pytest.param(lambda: ft.attacks.FMN(steps=30), "linf", id="fmn-linf"),
]


@pytest.mark.parametrize(("make", "norm"), MIN_NORM)
def test_distances_are_norms_of_adversarial_points_zero_when_already_wrong(tiny_cnn, make, norm):
    clf, x, y = tiny_cnn
    x, y = x[:12], y[:12].clone()
    y[:3] = (y[:3] + 1) % clf.num_classes  # three samples already misclassified
    out = make().min_norm(clf, x, y, norm)
    assert out.distances.shape == (12,) and out.x_adv.shape == x.shape
    assert bool((out.distances[:3] == 0).all()) and torch.equal(out.x_adv[:3], x[:3])
    ok = out.success
    assert torch.equal(clf.predict(out.x_adv)[ok] != y[ok], torch.ones(int(ok.sum()), dtype=torch.bool))
    norms = ft.make_threat(norm, 1.0).norm_of(out.x_adv - x)
    assert torch.allclose(out.distances[ok], norms[ok])
    assert bool(torch.isinf(out.distances[~ok]).all())


@pytest.mark.parametrize(("make", "norm"), MIN_NORM)
def test_samples_within_eps_of_an_adversarial_point_are_broken_at_that_eps(tiny_cnn, make, norm):
    clf, x, y = tiny_cnn
    x, y = x[:16], y[:16]
    d = ft.attacks.minimal_distances(make(), clf, x, y, norm)
    eps = float(d.median())
    x_adv = make()(clf, x, y, ft.make_threat(norm, eps))
    inside = d <= eps
    assert bool((clf.predict(x_adv)[inside] != y[inside]).all())


def test_minimal_distances_accepts_a_threat_and_rejects_fixed_radius_attacks(tiny_cnn):
    clf, x, y = tiny_cnn
    d = ft.attacks.minimal_distances(ft.attacks.DeepFool(), clf, x[:4], y[:4], ft.L2(0.5))
    assert d.shape == (4,)
    with pytest.raises(TypeError, match="minimum-norm"):
        ft.attacks.minimal_distances(ft.attacks.PGD(), clf, x[:4], y[:4], "l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="norm"):
        ft.attacks.minimal_distances(ft.attacks.DeepFool(), clf, x[:4], y[:4], "l7")


def test_a_failed_search_reports_an_infinite_distance(tiny_cnn):
    clf, x, y = tiny_cnn
    out = ft.attacks.FMN(steps=1, alpha_init=1e-6, alpha_final=1e-6).min_norm(clf, x[:8], y[:8], "l2")
    assert bool(torch.isinf(out.distances[~out.success]).all())
    assert bool((~out.success).any())


WHITE_BOX = [
    pytest.param(lambda: ft.attacks.APGD(steps=10), id="apgd-ce"),
    pytest.param(lambda: ft.attacks.APGD(loss="dlr", steps=10), id="apgd-dlr"),
    pytest.param(lambda: ft.attacks.APGDT(steps=5, n_target_classes=2), id="apgd-t"),
    pytest.param(lambda: ft.attacks.CW(steps=10, binary_search_steps=2), id="cw"),
    pytest.param(lambda: ft.attacks.DeepFool(steps=10), id="deepfool"),
    pytest.param(lambda: ft.attacks.FMN(steps=10), id="fmn"),
]


@pytest.mark.parametrize("make", WHITE_BOX)
def test_no_nan_when_the_model_outputs_infinite_logits(make):
    torch.manual_seed(0)
    x = torch.rand(16, 1, 4, 4)
    x[:8] = x[:8] * 0.2 + 0.8  # bright: class-0 logit is +inf
    clf = inf_logits_classifier((1, 4, 4))
    y = torch.zeros(16, dtype=torch.long)
    threat = ft.L2(1.0)
    x_adv = make()(clf, x, y, threat)
    assert bool(torch.isfinite(x_adv).all())
    assert bool(threat.contains(x_adv, x).all())
    if isinstance(make(), ft.attacks.MinNormAttack):
        assert not bool(torch.isnan(make().min_norm(clf, x, y, "l2").distances).any())
