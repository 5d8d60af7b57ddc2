"""Adaptive evaluation: defenses that only hide gradients must not look robust to ``evaluate``."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.evaluation import AttackView, attack_view, plan_for
from tests.evaluation.defenses import Dropout, Quantize, QuantizedClassifier, RandomResize, Saturate, behind

EPS = ft.Linf(0.3)
N = 16


def naive_pgd_accuracy(clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    x_adv = ft.attacks.PGD(steps=10)(clf, x, y, EPS)
    return float((clf.predict(x_adv) == y).float().mean())


def diagnostic(result: ft.Result, name: str) -> ft.result.Diagnostic:
    return next(d for d in result.diagnostics if d.name == name)


def test_quantised_inputs_fool_naive_pgd_but_not_evaluate(tiny_cnn):
    clf, x, y = tiny_cnn
    defended = behind(clf, Quantize())
    x, y = x[:N], y[:N]
    assert naive_pgd_accuracy(defended, x, y) >= 0.9, (
        "the defense must mask gradients for this test to mean anything"
    )
    result = ft.evaluate(defended, x, y, EPS)
    assert result.robust_accuracy <= 0.4
    why = diagnostic(result, "gradients")
    assert why.passed and "BPDA" in why.evidence and "raw gradients informative on only 0%" in why.evidence
    assert "BPDA" in result.model["attacked_with"]


def test_saturated_logits_fool_naive_pgd_but_not_evaluate(tiny_cnn):
    clf, x, y = tiny_cnn
    defended = behind(clf, back=Saturate())
    x, y = x[:N], y[:N]
    assert naive_pgd_accuracy(defended, x, y) >= 0.9
    result = ft.evaluate(defended, x, y, EPS)
    assert result.robust_accuracy <= 0.1
    assert "cross-entropy gradients vanish" in diagnostic(result, "gradients").evidence
    assert [r.name for r in result.per_attack] == ["fgsm", "apgd-dlr"]


def test_a_non_differentiable_classifier_is_attacked_through_its_core(tiny_cnn):
    clf, x, y = tiny_cnn
    defended = QuantizedClassifier(clf.module, num_classes=4)
    x, y = x[:N], y[:N]
    assert naive_pgd_accuracy(defended, x, y) >= 0.9
    result = ft.evaluate(defended, x, y, EPS)
    assert result.robust_accuracy <= 0.4
    assert "the classifier itself" in diagnostic(result, "gradients").evidence


def test_random_defenses_are_attacked_with_eot(tiny_cnn):
    clf, x, y = tiny_cnn
    defended = behind(clf, RandomResize())
    x, y = x[:N], y[:N]
    torch.manual_seed(0)
    result = ft.evaluate(defended, x, y, EPS, eot_samples=4)
    assert "EOT over 4 draws" in diagnostic(result, "gradients").evidence
    assert diagnostic(result, "randomness").passed
    assert result.robust_accuracy <= 0.2


def test_undeclared_randomness_is_detected_and_marks_the_result_unreliable(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(behind(clf, Dropout()), x[:8], y[:8], ft.Linf(0.1), eot_samples=2)
    check = diagnostic(result, "randomness")
    assert not check.passed and check.details["detected"] and not check.details["declared"]
    assert not result.reliable
    assert "EOT over 2 draws" in diagnostic(result, "gradients").evidence


def test_defend_pipelines_are_attacked_through_their_own_bpda(tiny_cnn):
    defenses = pytest.importorskip("fortify.defenses")
    clf, x, y = tiny_cnn
    defended = defenses.defend(clf, preprocess=[defenses.BitDepth(1)])
    x, y = x[:N], y[:N]
    result = ft.evaluate(defended, x, y, EPS)
    assert result.robust_accuracy <= naive_pgd_accuracy(defended, x, y)
    assert diagnostic(result, "gradients").passed


def test_the_attack_view_keeps_forward_values_and_leaves_plain_models_alone(tiny_cnn):
    clf, x, _ = tiny_cnn
    assert attack_view(clf, plan_for(clf)) is clf
    defended = behind(clf, Quantize())
    view = attack_view(defended, plan_for(defended))
    assert isinstance(view, AttackView)
    assert torch.allclose(view(x[:8]), defended(x[:8]), atol=1e-5)
    x_var = x[:8].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(view(x_var).sum(), x_var)
    assert grad.abs().sum() > 0


def test_eot_samples_must_be_positive(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(ft.FortifyError, match="eot_samples"):
        ft.evaluate(clf, x[:4], y[:4], EPS, eot_samples=0)


def test_a_model_with_the_wrong_output_shape_is_refused(tiny_cnn):
    clf, x, y = tiny_cnn
    wrong = ft.Classifier(clf.module, num_classes=5)
    with pytest.raises(ft.FortifyError, match="expected"):
        ft.evaluate(wrong, x[:4], y[:4], EPS)
