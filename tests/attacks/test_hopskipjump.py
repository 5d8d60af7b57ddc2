"""HopSkipJump: decision-based (labels only), breaks an undefended model within its budget, counts queries."""

from __future__ import annotations

import pytest
import torch

import fortify as ft


def _labels_only(clf: ft.Classifier) -> ft.BlackBox:
    return ft.BlackBox(lambda x: clf.predict(x), clf.num_classes, output="labels")


@pytest.mark.parametrize("threat", [ft.Linf(0.3), ft.L2(2.0)], ids=["linf", "l2"])
def test_breaks_the_undefended_model_from_labels_alone(tiny_cnn, threat):
    clf, x, y = tiny_cnn
    box = _labels_only(clf)
    attack = ft.attacks.HopSkipJump(n_queries=500, steps=20, init_evals=30)
    out = attack.attack(box, x[:64], y[:64], threat)
    assert float((clf.predict(out.x_adv) == y[:64]).float().mean()) <= 0.1
    assert bool(threat.contains(out.x_adv, x[:64]).all())
    assert int(out.queries.sum()) == box.queries
    # budget, overrun by at most one step-size and one binary search, plus the base's two checks
    assert int(out.queries.max()) <= 500 + 30 + 20 + 2


def test_more_queries_find_closer_adversarial_points(tiny_cnn):
    clf, x, y = tiny_cnn
    threat = ft.L2(1.0)
    small = ft.attacks.HopSkipJump(n_queries=200, init_evals=20)(clf, x[:32], y[:32], threat)
    large = ft.attacks.HopSkipJump(n_queries=2000, init_evals=20)(clf, x[:32], y[:32], threat)
    acc_small = float((clf.predict(small) == y[:32]).float().mean())
    acc_large = float((clf.predict(large) == y[:32]).float().mean())
    assert acc_large < acc_small


def test_labels_only_model_keeps_clean_inputs_it_could_not_break(tiny_cnn):
    clf, x, y = tiny_cnn
    x_adv = ft.attacks.HopSkipJump(n_queries=100, init_evals=10)(
        _labels_only(clf), x[:16], y[:16], ft.L2(0.05)
    )
    still = clf.predict(x_adv) == y[:16]
    assert torch.equal(x_adv[still], x[:16][still])  # "no worse" for a labels-only model: the clean input


def test_targeted_hopskipjump_reaches_the_targets(tiny_cnn):
    clf, x, y = tiny_cnn
    target = (y[:32] + 1) % clf.num_classes
    x_adv = ft.attacks.HopSkipJump(n_queries=1000, targeted=True)(clf, x[:32], target, ft.L2(3.0))
    assert float((clf.predict(x_adv) == target).float().mean()) >= 0.8


def test_bad_configuration(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(ft.FortifyError, match="max_evals"):
        ft.attacks.HopSkipJump(init_evals=100, max_evals=10)
    with pytest.raises(ft.FortifyError, match="steps"):
        ft.attacks.HopSkipJump(steps=0)
    with pytest.raises(ft.FortifyError, match="Linf and ft.L2"):
        ft.attacks.HopSkipJump(n_queries=10)(clf, x[:2], y[:2], ft.L0(1))
