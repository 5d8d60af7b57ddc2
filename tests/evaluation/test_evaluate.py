"""evaluate: per-sample worst case, per-attack accounting, per-sample records."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.evaluation import SuiteEntry


def test_robust_accuracy_is_the_per_sample_worst_case(tiny_cnn):
    clf, x, y = tiny_cnn
    threat = ft.Linf(0.2)
    result = ft.evaluate(clf, x, y, threat, seed=0)
    fgsm, pgd = result.attack("fgsm"), result.attack("pgd")
    assert result.robust_accuracy <= min(fgsm.accuracy, pgd.accuracy) + 1e-9
    robust = [s for s in result.samples if s.robust]
    assert result.robust_accuracy == pytest.approx(len(robust) / len(result.samples))
    assert all(s.clean_correct for s in robust)
    # recompute the worst case independently from the attacks' own outputs
    ok = clf.predict(x) == y
    for attack in (ft.attacks.FGSM(seed=0), ft.attacks.PGD(steps=20, seed=0)):
        ok &= clf.predict(attack(clf, x, y, threat)) == y
    assert result.robust_accuracy == pytest.approx(float(ok.float().mean()))


def test_per_sample_records_name_the_breaking_attack_and_norm(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:64], y[:64], ft.L2(1.2))
    broken = [s for s in result.samples if s.clean_correct and not s.robust]
    assert broken, "the eps must break some samples for this test to mean anything"
    for s in broken:
        assert s.broken_by in {"fgsm", "pgd"}
        assert s.adv_pred != s.label
        assert 0 < s.perturbation_norm <= 1.2 * (1 + 1e-5)
    assert result.attack_success_rate == pytest.approx(
        len(broken) / sum(s.clean_correct for s in result.samples)
    )


def test_remaining_mode_only_attacks_unbroken_samples(tiny_cnn):
    clf, x, y = tiny_cnn
    suite = [
        SuiteEntry("fgsm", ft.attacks.FGSM(), "all"),
        SuiteEntry("pgd", ft.attacks.PGD(steps=10), "remaining"),
    ]
    result = ft.evaluate(clf, x, y, ft.Linf(0.2), suite=suite)
    fgsm, pgd = result.per_attack
    assert pgd.n_attacked == fgsm.n_attacked - fgsm.n_succeeded
    assert pgd.accuracy is None and pgd.cumulative_accuracy == result.robust_accuracy
    assert result.suite == "custom"


def test_misclassified_samples_are_never_robust(tiny_cnn):
    clf, x, y = tiny_cnn
    wrong = (y[:10] + 1) % 4
    result = ft.evaluate(clf, x[:10], wrong, ft.Linf(0.0))
    assert result.clean_accuracy == 0.0 and result.robust_accuracy == 0.0


def test_zero_eps_leaves_accuracy_unchanged(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x, y, ft.Linf(0.0))
    assert result.robust_accuracy == result.clean_accuracy


def test_evaluation_is_reproducible_from_its_seed(tiny_cnn):
    clf, x, y = tiny_cnn
    a = ft.evaluate(clf, x[:50], y[:50], ft.Linf(0.2), seed=7)
    b = ft.evaluate(clf, x[:50], y[:50], ft.Linf(0.2), seed=7)
    assert [s.model_dump() for s in a.samples] == [s.model_dump() for s in b.samples]


def test_groups_are_recorded_per_sample(tiny_cnn):
    clf, x, y = tiny_cnn
    groups = ["a" if i % 2 else "b" for i in range(8)]
    result = ft.evaluate(clf, x[:8], y[:8], ft.Linf(0.1), groups=groups)
    assert [s.group for s in result.samples] == groups


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"suite": "nope"}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"groups": ["a"]}, ValueError),
        ({"suite": []}, ValueError),
    ],
)
def test_bad_arguments(tiny_cnn, kwargs, error):
    clf, x, y = tiny_cnn
    with pytest.raises(error):
        ft.evaluate(clf, x[:4], y[:4], ft.Linf(0.1), **kwargs)


def test_non_classifier_is_a_type_error(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(TypeError):
        ft.evaluate(clf.module, x[:4], y[:4], ft.Linf(0.1))
    with pytest.raises(TypeError):
        ft.evaluate(clf, x[:4], y[:4], "linf")


def test_batching_does_not_change_the_answer(tiny_cnn):
    clf, x, y = tiny_cnn
    big = ft.evaluate(clf, x[:60], y[:60], ft.Linf(0.2), batch_size=250)
    small = ft.evaluate(clf, x[:60], y[:60], ft.Linf(0.2), batch_size=7)
    assert abs(big.robust_accuracy - small.robust_accuracy) <= 0.05
    assert torch.isclose(torch.tensor(big.clean_accuracy), torch.tensor(small.clean_accuracy))
