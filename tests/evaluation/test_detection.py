"""A defended model with a detector: evaluation judges with it and attacks it, naive PGD does neither.

Feature squeezing with 2-bit depth reduction on the tiny CNN catches every naive PGD point at Linf 0.3
(they sit just across the decision boundary, and squeezing moves their prediction), so a naive
evaluation judged with the detector reports the model as robust. Putting the detector in the objective
(targeted attacks on the reject view, BPDA through the bit-depth squeezer) breaks most samples.
"""

from __future__ import annotations

import json

import pytest
import torch

import fortify as ft
from fortify.defenses import BitDepth, defend
from fortify.detect import FeatureSqueezing
from fortify.evaluation.detection import EvadeDetector, reject_view

EPS = ft.Linf(0.3)


@pytest.fixture(scope="module")
def guarded(tiny_cnn):
    """The tiny CNN behind a feature-squeezing detector calibrated at 5% FPR, and held-out samples."""
    clf, x, y = tiny_cnn
    det = FeatureSqueezing(clf, [BitDepth(2)]).calibrate(x[:128], fpr=0.05)
    return defend(clf, detector=det), x[128:176], y[128:176]


def robust_accuracy_with_detector(defended: ft.Classifier, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of points classified correctly or flagged: what a naive evaluation would report."""
    correct = defended.predict(x_adv) == y
    return float((correct | defended.flagged(x_adv)).float().mean())


def test_naive_pgd_looks_strong_against_the_detector_but_evaluate_breaks_it(guarded):
    defended, x, y = guarded
    naive = ft.attacks.PGD(steps=20)(defended, x, y, EPS)
    assert float((defended.predict(naive) == y).float().mean()) <= 0.1, "PGD fools the classifier..."
    assert robust_accuracy_with_detector(defended, naive, y) >= 0.9, "...but the detector flags it"

    result = ft.evaluate(defended, x, y, EPS, suite="quick")
    assert result.clean_accuracy == 1.0
    assert result.robust_accuracy <= 0.3
    assert result.attack("pgd").n_succeeded <= 0.1 * len(y), "points are judged with the detector"
    assert result.attack("evade-detector").n_succeeded >= 0.6 * len(y)
    assert "detector FeatureSqueezing attacked in the objective" in result.model["attacked_with"]
    assert "BPDA through its squeezers.0" in result.model["attacked_with"]
    record = result.detector
    assert record["name"] == "FeatureSqueezing" and record["in_objective"]
    assert record["clean_flag_rate"] <= 0.15
    assert record["adversarial_flag_rate"] <= result.robust_accuracy


def test_the_reject_logit_wins_exactly_where_the_detector_flags(guarded):
    defended, x, y = guarded
    view = reject_view(defended)
    points = torch.cat([x, ft.attacks.PGD(steps=20)(defended, x, y, EPS)])
    logits = view(points)
    assert logits.shape == (points.shape[0], defended.num_classes + 1)
    assert torch.equal(logits[:, :-1], defended(points))
    assert torch.equal(logits.argmax(dim=1) == defended.num_classes, defended.flagged(points))


def test_the_reject_view_crosses_the_bit_depth_squeezer_with_bpda(guarded):
    defended, x, _ = guarded
    clf, squeeze = defended.model, defended.detector.squeezers[0]

    def gradient(fn):
        xv = x[:8].clone().requires_grad_(True)
        return torch.autograd.grad(fn(xv).sum(), xv)[0]

    def straight_through_score(xv):
        squeezed = xv + (squeeze(xv) - xv).detach()
        return (clf(xv).softmax(dim=1) - clf(squeezed).softmax(dim=1)).abs().sum(dim=1)

    view = reject_view(defended)
    score_grad = gradient(lambda xv: view(xv)[:, -1]) - gradient(lambda xv: clf(xv).amax(dim=1))
    assert torch.allclose(score_grad, gradient(straight_through_score), atol=1e-6)
    assert not torch.allclose(score_grad, gradient(defended.detector), atol=1e-6), "raw: squeezer masked"


def test_custom_suites_get_the_detector_attack_and_results_keep_the_record(guarded):
    defended, x, y = guarded
    entries = [ft.evaluation.SuiteEntry("pgd", ft.attacks.PGD(steps=10), ran_on="all")]
    result = ft.evaluate(defended, x[:16], y[:16], EPS, suite=entries)
    assert [r.name for r in result.per_attack] == ["pgd", "evade-detector"]
    again = ft.Result.from_json(result.to_json())
    assert json.dumps(again.detector, sort_keys=True) == json.dumps(
        json.loads(result.to_json())["detector"], sort_keys=True
    )


def test_models_without_a_detector_are_evaluated_as_before(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:8], y[:8], EPS, suite="quick")
    assert result.detector is None
    assert [r.name for r in result.per_attack] == ["fgsm", "pgd"]


def test_an_uncalibrated_detector_is_refused(tiny_cnn):
    clf, x, y = tiny_cnn
    defended = defend(clf, detector=FeatureSqueezing(clf))
    with pytest.raises(ft.FortifyError, match="detector is not calibrated"):
        ft.evaluate(defended, x[:8], y[:8], EPS)


def test_evade_detector_needs_a_targeted_gradient_attack_and_a_detector(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(ft.FortifyError, match="targeted gradient attack"):
        EvadeDetector(inner=ft.attacks.PGD())
    with pytest.raises(ft.FortifyError, match="n_targets"):
        EvadeDetector(n_targets=0)
    with pytest.raises(ft.FortifyError, match="has no detector"):
        EvadeDetector()(clf, x[:4], y[:4], EPS)
