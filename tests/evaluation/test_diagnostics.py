"""Diagnostics: every result carries them, and each one fails when its condition is violated."""

from __future__ import annotations

import torch
from torch import nn

import fortify as ft
from fortify.evaluation import diagnostics as checks
from tests.evaluation.defenses import Quantize, RandomResize, behind


class Constant(nn.Module):
    """Ignores its input: no attack can change its answer."""

    def __init__(self, num_classes: int, label: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))
        self.bias.data[label] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(dim=1, keepdim=True)


def test_every_result_carries_the_sanity_checks_with_their_cost(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:16], y[:16], ft.Linf(0.2))
    names = {d.name for d in result.diagnostics}
    assert names == {
        "outputs_are_logits",
        "gradient_masking",
        "randomness",
        "gradients",
        "iterative_vs_single_step",
        "unbounded_attack",
    }
    assert all(d.passed for d in result.diagnostics) and result.reliable
    assert all(d.details["time_s"] >= 0 for d in result.diagnostics)
    assert result.timing["diagnostics_s"] < result.timing["total_s"]


def test_masked_raw_gradients_fail_the_gradient_check(tiny_cnn):
    clf, x, y = tiny_cnn
    defended = behind(clf, Quantize())
    naive = checks.check_gradients(defended, defended, x[:8], y[:8], "plain gradients")
    assert not naive.passed and naive.details["used"]["ce"]["nonzero"] == 0.0


def test_an_unbreakable_model_fails_the_unbounded_attack_check(tiny_cnn):
    _, x, y = tiny_cnn
    label = int(y[0])
    clf = ft.Classifier(Constant(4, label), num_classes=4)
    mask = y == label
    diag = checks.check_unbounded(clf, clf, x[mask][:8], y[mask][:8], ft.Linf(0.1), [ft.attacks.PGD(steps=5)])
    assert not diag.passed and diag.details["accuracy"] == 1.0 and diag.details["eps"] == 1.0


def test_unbounded_radius_covers_the_input_box():
    x = torch.zeros(2, 1, 4, 4)
    assert checks.unbounded_radius(ft.Linf(0.1), x, (0.0, 1.0)) == 1.0
    assert abs(checks.unbounded_radius(ft.L2(0.1), x, (0.0, 1.0)) - 4.0) < 1e-6


def test_accuracy_rising_with_eps_fails_the_monotonicity_check():
    assert checks.check_monotone([0.1, 0.2, 0.3], [0.8, 0.5, 0.5]).passed
    failed = checks.check_monotone([0.1, 0.2, 0.3], [0.8, 0.5, 0.7])
    assert not failed.passed and "0.2->0.3" in failed.evidence
    assert checks.check_monotone([0.1, 0.2], [0.5, 0.55], slack=0.1).passed


def test_black_box_successes_beyond_white_box_fail_the_check():
    assert checks.check_white_vs_black_box(n_white_broken=40, n_black_only=1, n_correct=100).passed
    failed = checks.check_white_vs_black_box(n_white_broken=10, n_black_only=20, n_correct=100)
    assert not failed.passed and "gradient masking" in failed.evidence


def test_randomness_is_detected_on_two_forward_passes(tiny_cnn):
    clf, x, _ = tiny_cnn
    diag, detected = checks.check_randomness(clf, x)
    assert diag.passed and not detected and diag.details["max_difference"] == 0.0


def test_margin_loss_is_positive_exactly_when_misclassified():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    loss = checks.margin_loss(logits, torch.tensor([0, 0]))
    assert loss[0] < 0 < loss[1]


class _Scaled(torch.nn.Module):
    def __init__(self, module: torch.nn.Module, factor: float) -> None:
        super().__init__()
        self.module, self.factor = module, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) * self.factor


def _failed(result: ft.Result) -> dict[str, ft.result.Diagnostic]:
    return {d.name: d for d in result.diagnostics if not d.passed}


def test_a_model_that_masks_gradients_never_passes_every_check_even_when_the_suite_compensates(tiny_cnn):
    clf, x, y = tiny_cnn
    saturated = ft.Classifier(_Scaled(clf, 1e4), num_classes=clf.num_classes)
    result = ft.evaluate(saturated, x[:32], y[:32], ft.Linf(0.3), suite="quick")
    masking = _failed(result)["gradient_masking"]
    assert masking.scope == "model" and "cross-entropy gradients vanish" in masking.evidence
    assert "DLR" in masking.evidence and result.robust_accuracy <= 0.1  # the suite found the truth
    assert result.reliable  # ...so the number is trusted, while the finding is still reported
    quantised = ft.evaluate(behind(clf, Quantize()), x[:32], y[:32], ft.Linf(0.3), suite="quick")
    masking = _failed(quantised)["gradient_masking"]
    assert "zero input gradients" in masking.evidence and "BPDA" in masking.evidence
    plain = ft.evaluate(clf, x[:32], y[:32], ft.Linf(0.3), suite="quick")
    assert "gradient_masking" not in _failed(plain)
    random = ft.evaluate(behind(clf, RandomResize()), x[:16], y[:16], ft.Linf(0.3), suite="quick")
    masking = _failed(random)["gradient_masking"]
    assert "random outputs" in masking.evidence and "EOT" in masking.evidence


def test_probability_outputs_are_named_and_attacked_through_their_logarithm(tiny_cnn):
    clf, x, y = tiny_cnn
    probs = ft.Classifier(torch.nn.Sequential(clf, torch.nn.Softmax(dim=1)), num_classes=clf.num_classes)
    threat = ft.Linf(0.16)
    ours = ft.evaluate(probs, x[:48], y[:48], threat, suite="quick")
    logits = ft.evaluate(clf, x[:48], y[:48], threat, suite="quick")
    outputs = _failed(ours)["outputs_are_logits"]
    assert outputs.scope == "model" and "logarithm" in outputs.evidence
    assert "log-probabilities" in ours.model["attacked_with"]
    # log-softmax is the logits up to a per-sample constant: every loss, so every attack, sees the same
    assert abs(ours.robust_accuracy - logits.robust_accuracy) <= 1 / 48
    assert 0 < logits.robust_accuracy < logits.clean_accuracy  # the radius matters: the test can fail
