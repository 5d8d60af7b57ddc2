"""Mahalanobis, confidence, input statistics and disagreement: the scores mean what they promise."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.detect import Confidence, Disagreement, InputStatistics, Mahalanobis


def _fresh(n: int, seed: int):
    return ft.data.make_synthetic(n, seed=seed)


def test_mahalanobis_scores_noise_far_above_clean_inputs(tiny_cnn):
    clf, x, y = tiny_cnn
    x_cal, y_cal = _fresh(400, 1)
    det = Mahalanobis(clf).calibrate(x_cal, y=y_cal)
    noise = torch.rand(100, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert float(det.scores(noise).median()) > float(det.scores(x).quantile(0.95))
    assert det.means.shape[0] == 4 and det.precision.shape[0] == det.precision.shape[1]


def test_mahalanobis_reads_a_named_layer_and_refuses_an_unknown_one(tiny_cnn):
    clf, x, _ = tiny_cnn
    det = Mahalanobis(clf, layer="module.1")  # the first ReLU of cnn-tiny
    assert det.features(x[:3]).shape == (3, 8 * 8 * 8)
    with pytest.raises(ft.FortifyError, match="has no layer 'fc9'"):
        Mahalanobis(clf, layer="fc9")
    with pytest.raises(ft.FortifyError, match="not fitted"):
        Mahalanobis(clf).score(x[:2])


def test_mahalanobis_is_differentiable_so_adaptive_attacks_can_aim_at_it(tiny_cnn):
    clf, x, _ = tiny_cnn
    det = Mahalanobis(clf).calibrate(*_fresh(400, 2)[:1])
    point = x[:4].clone().requires_grad_(True)
    det.score(point).sum().backward()
    assert det.differentiable and point.grad is not None and point.grad.abs().sum() > 0


def test_confidence_scores_are_one_minus_max_probability_or_the_entropy(tiny_cnn):
    clf, x, _ = tiny_cnn
    probs = clf.predict_proba(x[:10])
    msp = Confidence(clf).scores(x[:10])
    assert torch.allclose(msp, 1 - probs.amax(dim=1), atol=1e-6)
    entropy = Confidence(clf, kind="entropy").scores(x[:10])
    assert torch.allclose(entropy, -(probs * probs.log()).sum(dim=1), atol=1e-5)
    with pytest.raises(ft.FortifyError, match="unknown confidence kind"):
        Confidence(clf, kind="margin")


def test_input_statistics_flag_flat_and_saturated_images():
    x_cal, _ = _fresh(400, 3)
    det = InputStatistics().calibrate(x_cal)
    flat = torch.full((5, 1, 8, 8), 0.5)
    saturated = (torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    assert det.flagged(flat).all() and det.flagged(saturated).all()
    with pytest.raises(ft.FortifyError, match="images"):
        det.score(torch.rand(3, 10))


def test_disagreement_is_zero_for_twins_and_positive_for_different_models(tiny_cnn):
    clf, x, _ = tiny_cnn
    torch.manual_seed(5)
    other = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)
    assert torch.allclose(Disagreement([clf, clf]).scores(x[:8]), torch.zeros(8), atol=1e-6)
    assert float(Disagreement([clf, other]).scores(x[:8]).mean()) > 0.05
    with pytest.raises(ft.FortifyError, match="at least two"):
        Disagreement([clf])
