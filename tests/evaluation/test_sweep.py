"""Sweeps: one minimum-norm pass draws the accuracy-epsilon curve; the suite refines it."""

from __future__ import annotations

import math

import pytest

import fortify as ft

EPSILONS = [0.05, 0.1, 0.2, 0.3]


@pytest.fixture(scope="module")
def coarse(tiny_cnn):
    clf, x, y = tiny_cnn
    return ft.sweep(clf, x[:24], y[:24], ft.Linf, EPSILONS, suite="quick", refine=False)


def test_the_curve_comes_from_minimal_distances_in_one_pass(coarse):
    curve = coarse.sweep
    assert curve.method == "min-norm" and curve.epsilons == EPSILONS and curve.min_norm_attack == "fmn"
    assert [r.name for r in coarse.per_attack] == ["fmn"]
    distances = [s.min_distance if s.min_distance is not None else math.inf for s in coarse.samples]
    for eps, acc in zip(curve.epsilons, curve.robust_accuracy, strict=True):
        pairs = zip(coarse.samples, distances, strict=True)
        expected = sum(s.clean_correct and d > eps * (1 + 1e-6) for s, d in pairs)
        assert acc == pytest.approx(expected / 24)
    assert curve.robust_accuracy[-1] < curve.robust_accuracy[0] <= curve.clean_accuracy


def test_the_curve_is_non_increasing_and_checked_independently(coarse):
    acc = coarse.sweep.robust_accuracy
    assert all(b <= a for a, b in zip(acc, acc[1:], strict=False))
    monotone = next(d for d in coarse.diagnostics if d.name == "monotone_in_eps")
    assert monotone.passed and len(monotone.details["robust_accuracy"]) == len(EPSILONS)
    assert coarse.threat.eps == EPSILONS[-1] and coarse.robust_accuracy == acc[-1]


def test_refining_with_the_suite_never_raises_the_curve(tiny_cnn, coarse):
    clf, x, y = tiny_cnn
    fine = ft.sweep(clf, x[:24], y[:24], ft.Linf(0.0), EPSILONS[1:3], suite="quick")
    assert fine.sweep.method == "min-norm+suite"
    for eps, acc in zip(fine.sweep.epsilons, fine.sweep.robust_accuracy, strict=True):
        assert acc <= coarse.sweep.robust_accuracy[EPSILONS.index(eps)] + 1e-9
    assert {r.name for r in fine.per_attack} >= {"fmn", "fgsm@0.1", "pgd@0.2"}


@pytest.mark.parametrize(
    ("epsilons", "match"),
    [
        ([], "empty"),
        ([0.1, 0.05], "increasing"),
        ([0.1, 0.1], "increasing"),
        ([-0.1, 0.1], ">= 0"),
        ([0.1, float("nan")], ">= 0"),
    ],
)
def test_bad_epsilons_are_refused(tiny_cnn, epsilons, match):
    clf, x, y = tiny_cnn
    with pytest.raises(ft.FortifyError, match=match):
        ft.sweep(clf, x[:4], y[:4], ft.Linf, epsilons)


def test_threat_kinds_and_min_norm_attacks_are_checked(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(TypeError, match="Threat"):
        ft.sweep(clf, x[:4], y[:4], 3, [0.1])
    with pytest.raises(TypeError, match="minimum-norm"):
        ft.sweep(clf, x[:4], y[:4], "l2", [0.1], min_norm=ft.attacks.PGD())


def test_the_sweep_keeps_its_minimum_norm_points_in_the_gallery(tiny_cnn, coarse):
    clf, _, _ = tiny_cnn
    samples = {s.index: s for s in coarse.samples}
    assert coarse.gallery and all(e.attack == "fmn" for e in coarse.gallery)
    for entry in coarse.gallery:
        clean, adv = entry.images()
        # stored losslessly: points a hair past the decision boundary still fool the model
        assert int(clf.predict(adv[None])) == entry.adv_pred == samples[entry.index].adv_pred != entry.label
        assert entry.perturbation_norm == samples[entry.index].min_distance
        assert float((adv - clean).abs().max()) == pytest.approx(entry.perturbation_norm, rel=1e-6)


def test_a_sweep_of_a_model_that_gets_nothing_right_is_all_zeros(tiny_cnn):
    clf, x, y = tiny_cnn
    wrong = (y[:12] + 1) % clf.num_classes  # labels the model never predicts here
    assert not bool((clf.predict(x[:12]) == wrong).any())
    result = ft.sweep(clf, x[:12], wrong, ft.Linf, [0.05, 0.1], suite="quick")
    assert result.clean_accuracy == 0.0 and result.sweep.robust_accuracy == [0.0, 0.0]
