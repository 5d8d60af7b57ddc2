"""FGSM and PGD: strength against the tiny undefended model, and their own arguments."""

from __future__ import annotations

import pytest
import torch

import fortify as ft


@pytest.mark.parametrize("threat", [ft.Linf(0.2), ft.L2(1.2)], ids=["linf", "l2"])
def test_pgd_is_at_least_as_strong_as_fgsm_on_the_same_samples(tiny_cnn, threat):
    clf, x, y = tiny_cnn
    fgsm_ok = clf.predict(ft.attacks.FGSM()(clf, x, y, threat)) == y
    pgd_ok = clf.predict(ft.attacks.PGD(steps=20)(clf, x, y, threat)) == y
    assert int(pgd_ok.sum()) <= int(fgsm_ok.sum())
    assert int(pgd_ok.sum()) < x.shape[0]  # the eps is small enough that the comparison means something


@pytest.mark.parametrize("threat", [ft.Linf(0.3), ft.L2(2.0)], ids=["linf", "l2"])
def test_pgd_breaks_the_undefended_model(tiny_cnn, threat):
    clf, x, y = tiny_cnn
    assert float((clf.predict(x) == y).float().mean()) > 0.95
    x_adv = ft.attacks.PGD(steps=20)(clf, x, y, threat)
    assert float((clf.predict(x_adv) == y).float().mean()) < 0.05


def test_more_restarts_never_hurt(tiny_cnn):
    clf, x, y = tiny_cnn
    threat = ft.Linf(0.15)
    one = clf.predict(ft.attacks.PGD(steps=5, restarts=1)(clf, x, y, threat)) == y
    three = clf.predict(ft.attacks.PGD(steps=5, restarts=3)(clf, x, y, threat)) == y
    assert int(three.sum()) <= int(one.sum())


def test_targeted_pgd_reaches_its_targets(tiny_cnn):
    clf, x, y = tiny_cnn
    targets = (y + 1) % clf.num_classes
    x_adv = ft.attacks.PGD(steps=30, targeted=True)(clf, x, targets, ft.Linf(0.35))
    assert float((clf.predict(x_adv) == targets).float().mean()) > 0.9


def test_without_early_stop_every_sample_is_perturbed(tiny_cnn):
    clf, x, y = tiny_cnn
    x_adv = ft.attacks.PGD(steps=10, early_stop=False)(clf, x, y, ft.Linf(0.3))
    moved = ft.Linf(1).norm_of(x_adv - x)
    assert float(moved.min()) > 0


def test_step_size_is_relative_to_eps_by_default():
    pgd = ft.attacks.PGD(steps=10)
    assert pgd.step_for(ft.Linf(0.2)) == pytest.approx(0.05)
    assert ft.attacks.PGD(step_size=0.01).step_for(ft.Linf(0.2)) == 0.01
    assert ft.attacks.PGD(rel_stepsize=0.1).step_for(ft.L2(2.0)) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 0},
        {"steps": 2.5},
        {"restarts": 0},
        {"step_size": -1.0},
        {"rel_stepsize": 0.0},
        {"step_size": 0.1, "rel_stepsize": 0.1},
    ],
)
def test_bad_pgd_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ft.attacks.PGD(**kwargs)


def test_stray_keywords_are_rejected():
    with pytest.raises(TypeError):
        ft.attacks.PGD(stepz=10)
    with pytest.raises(TypeError):
        ft.attacks.PGD(10)  # keyword-only


def test_bad_call_arguments_are_rejected(tiny_cnn):
    clf, x, y = tiny_cnn
    pgd = ft.attacks.PGD(steps=2)
    with pytest.raises(ValueError, match="labels"):
        pgd(clf, x[:4], y[:3], ft.Linf(0.1))
    with pytest.raises(ValueError, match="labels must lie"):
        pgd(clf, x[:4], torch.full((4,), 9), ft.Linf(0.1))
    with pytest.raises(ValueError, match="integers"):
        pgd(clf, x[:4], y[:4].float(), ft.Linf(0.1))
    with pytest.raises(ValueError, match="bounds"):
        pgd(clf, x[:4] + 2, y[:4], ft.Linf(0.1))
    with pytest.raises(TypeError):
        pgd(clf.module, x[:4], y[:4], ft.Linf(0.1))
    with pytest.raises(TypeError):
        pgd(clf, x[:4], y[:4], 0.1)


def test_attacks_leave_weights_trainable(tiny_cnn):
    clf, x, y = tiny_cnn
    ft.attacks.PGD(steps=2)(clf, x[:4], y[:4], ft.Linf(0.1))
    assert all(p.requires_grad for p in clf.parameters())


def test_no_nan_when_the_model_outputs_infinite_logits():
    class Exploding(torch.nn.Module):
        def forward(self, x):
            out = torch.nn.functional.linear(x.flatten(1), torch.ones(3, 4)) * 1e38
            return out * torch.tensor([1.0, 10.0, -10.0])

    clf = ft.Classifier(Exploding(), num_classes=3)
    x = torch.rand(6, 4)
    y = torch.ones(6, dtype=torch.long)
    for attack in (ft.attacks.FGSM(), ft.attacks.PGD(steps=3)):
        x_adv = attack(clf, x, y, ft.Linf(0.1))
        assert bool(torch.isfinite(x_adv).all())
