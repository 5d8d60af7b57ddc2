"""APGD (Croce & Hein 2020): the paper's schedule, its losses, and its strength against PGD."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.attacks.apgd import checkpoints, dlr_loss, targeted_dlr_loss


def _accuracy(clf, x_adv, y) -> float:
    return float((clf.predict(x_adv) == y).float().mean())


def test_checkpoints_follow_the_papers_p_sequence():
    # p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 -> w_j = ceil(p_j * 100)
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    small = checkpoints(5)
    assert small == sorted(set(small)) and small[-1] <= 5 and small[0] >= 1


def test_dlr_is_invariant_to_shifting_and_scaling_the_logits():
    torch.manual_seed(0)
    z, y = torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert torch.allclose(dlr_loss(z, y), dlr_loss(3.0 * z + 7.0, y), atol=1e-5)
    t = (y + 1) % 10
    assert torch.allclose(targeted_dlr_loss(z, t, y), targeted_dlr_loss(2.0 * z - 1.0, t, y), atol=1e-5)


def test_dlr_is_positive_exactly_when_misclassified():
    torch.manual_seed(1)
    z, y = torch.randn(64, 5), torch.randint(0, 5, (64,))
    assert torch.equal(dlr_loss(z, y) > 0, z.argmax(1) != y)


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.2), ("l2", 1.0)])
def test_apgd_at_least_as_strong_as_pgd_at_equal_iterations(tiny_cnn, norm, eps):
    clf, x, y = tiny_cnn
    x, y = x[:64], y[:64]
    threat = ft.make_threat(norm, eps)
    pgd = _accuracy(clf, ft.attacks.PGD(steps=20)(clf, x, y, threat), y)
    assert 0.0 < pgd < 1.0, "pick an eps where PGD is neither useless nor perfect"
    for loss in ("ce", "dlr"):
        apgd = _accuracy(clf, ft.attacks.APGD(loss=loss, steps=20)(clf, x, y, threat), y)
        assert apgd <= pgd, (loss, apgd, pgd)


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_targeted_apgd_hits_its_targets(tiny_cnn, loss):
    clf, x, y = tiny_cnn
    x, y = x[:32], y[:32]
    targets = (y + 1) % clf.num_classes
    x_adv = ft.attacks.APGD(loss=loss, steps=30, targeted=True)(clf, x, targets, ft.Linf(0.3))
    assert float((clf.predict(x_adv) == targets).float().mean()) >= 0.9


def test_apgd_t_breaks_an_undefended_model_through_top_k_targets(tiny_cnn):
    clf, x, y = tiny_cnn
    x_adv = ft.attacks.APGDT(steps=20, n_target_classes=3)(clf, x[:32], y[:32], ft.Linf(0.3))
    assert _accuracy(clf, x_adv, y[:32]) <= 0.05


def test_restarts_never_make_apgd_weaker(tiny_cnn):
    clf, x, y = tiny_cnn
    threat = ft.Linf(0.15)
    one = _accuracy(clf, ft.attacks.APGD(steps=10)(clf, x[:48], y[:48], threat), y[:48])
    three = _accuracy(clf, ft.attacks.APGD(steps=10, restarts=3)(clf, x[:48], y[:48], threat), y[:48])
    assert three <= one


def test_apgd_without_early_stop_runs_every_step_and_still_succeeds(tiny_cnn):
    clf, x, y = tiny_cnn
    x_adv = ft.attacks.APGD(steps=15, early_stop=False)(clf, x[:32], y[:32], ft.L2(2.0))
    assert _accuracy(clf, x_adv, y[:32]) <= 0.1


def test_dlr_needs_three_classes():
    torch.manual_seed(0)
    clf = ft.Classifier(torch.nn.Linear(6, 2), num_classes=2)
    x = torch.rand(8, 6)
    with pytest.raises(ft.FortifyError, match="3 classes"):
        ft.attacks.APGD(loss="dlr")(clf, x, clf.predict(x), ft.Linf(0.1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "loss"),
        ({"steps": 0}, "steps"),
        ({"restarts": 0}, "restarts"),
        ({"rho": 1.5}, "rho"),
        ({"momentum": 0.0}, "momentum"),
        ({"n_target_classes": 0}, "n_target_classes"),
        ({"n_target_classes": 3, "targeted": True}, "n_target_classes"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_value(kwargs, match):
    with pytest.raises(ft.FortifyError, match=match):
        ft.attacks.APGD(**kwargs)


def test_apgdt_has_no_user_targeted_mode():
    with pytest.raises(TypeError):
        ft.attacks.APGDT(targeted=True)  # type: ignore[call-arg]
