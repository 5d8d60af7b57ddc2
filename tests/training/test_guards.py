"""The training loop's guards: catastrophic-overfitting detection and recovery, early stopping with
the best checkpoint kept, robust validation per epoch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import fortify as ft
from fortify.training.early_stopping import BestCheckpoint
from fortify.training.methods import StepContext, register_method
from fortify.training.overfitting import CatastrophicOverfittingMonitor
from tests.conftest import fresh_cnn_tiny

EPS = 0.25


class Collapsible(nn.Module):
    """A model that can switch on the loss surface of catastrophic overfitting at chosen points.

    When ``collapsed`` is 1, the logits are negated (wrong almost everywhere) and a narrow Gaussian bump
    adds a huge logit for the right class exactly at the ``centers``: the loss there is saturated and
    flat (zero input gradient), so FGSM from the clean point cannot move and FGSM accuracy rises to
    ~100%, while PGD's random start leaves the bump and finds the broken model around it. This is the
    signature Wong et al. (2020) describe (a loss surface that is only flat where FGSM looks), built
    on purpose.
    """

    def __init__(self, base: nn.Module, centers: Tensor, labels: Tensor, num_classes: int) -> None:
        super().__init__()
        self.base = base
        self.register_buffer("centers", centers.flatten(1).clone())
        self.register_buffer("onehot", F.one_hot(labels, num_classes).float())
        self.register_buffer("collapsed", torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)
        d2 = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.centers.T + self.centers.pow(2).sum(1)
        ).clamp_min(0)
        near = d2 < 5e-3  # exp(-d2 / 1e-4) elsewhere would be denormal (slow) or zero
        bump = torch.where(near, torch.exp(-d2.clamp_max(5e-3) / 1e-4), 0.0) @ self.onehot * 1e4
        return (1 - 2 * self.collapsed) * self.base(x) + self.collapsed * bump


@register_method("test-collapse-after")
class CollapseAfter:
    """PGD training that flips the model into its collapsed state at step ``at``, until told to shrink."""

    name = "test-collapse-after"

    def __init__(self, *, at: int) -> None:
        self.at = at
        self.pgd = ft.training.methods.build_method("pgd", {"steps": 5})
        self.shrunk = 0

    def shrink_step(self, factor: float) -> bool:
        self.shrunk += 1
        return True

    def loss(self, clf: ft.Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        global_step = ctx.epoch * ctx.steps_per_epoch + ctx.step
        if global_step == self.at and not self.shrunk:
            clf.module.collapsed.fill_(1.0)
        return self.pgd.loss(clf, x, y, ctx)


def _collapsible(xv: Tensor, yv: Tensor) -> ft.Classifier:
    torch.manual_seed(0)
    base = ft.zoo.create("cnn-tiny", (1, 8, 8), 4)
    return ft.Classifier(Collapsible(base, xv, yv, 4), num_classes=4)


def test_monitor_flags_pgd_falling_while_fgsm_rises():
    (x, y), (xv, yv) = ft.data.load("synthetic", "train"), ft.data.load("synthetic", "test", n=128)
    clf = _collapsible(xv, yv)
    ft.train(
        clf,
        (x, y),
        epochs=3,
        lr=3e-3,
        batch_size=64,
        method="pgd",
        threat=ft.Linf(EPS),
        steps=5,
        progress=False,
    )
    monitor = CatastrophicOverfittingMonitor(xv, yv, ft.Linf(EPS))
    optimizer = torch.optim.Adam(clf.parameters())
    good = monitor.check(clf, optimizer, step=1)
    assert not good.collapsed and good.pgd_accuracy > 0.3
    clf.module.collapsed.fill_(1.0)
    bad = monitor.check(clf, optimizer, step=2)
    assert (
        bad.collapsed
        and bad.fgsm_accuracy > good.fgsm_accuracy
        and bad.pgd_accuracy < good.pgd_accuracy - 0.2
    )
    monitor.restore(clf, optimizer)
    assert float(clf.module.collapsed) == 0.0, "restore steps back to the last good weights and buffers"


def test_training_recovers_from_catastrophic_overfitting():
    (x, y), (xv, yv) = ft.data.load("synthetic", "train"), ft.data.load("synthetic", "test", n=128)
    clf = _collapsible(xv, yv)
    history = ft.train(
        clf,
        (x, y),
        epochs=5,
        lr=3e-3,
        batch_size=64,
        method="test-collapse-after",
        threat=ft.Linf(EPS),
        at=30,
        val=(xv, yv),
        co_check_every=4,
        progress=False,
    )
    events = [e for e in history.events if e.kind == "catastrophic_overfitting"]
    assert len(events) == 1 and events[0].step == 32
    assert events[0].details["step_shrunk"] and events[0].details["stepped_back_to"] == 28
    assert float(clf.module.collapsed) == 0.0
    assert not history.catastrophic_overfitting
    assert history.co_checks[-1]["pgd_accuracy"] > 0.3


def test_fast_training_does_not_raise_false_alarms():
    (x, y), (xv, yv) = ft.data.load("synthetic", "train"), ft.data.load("synthetic", "test", n=128)
    clf = fresh_cnn_tiny()
    history = ft.train(
        clf,
        (x, y),
        epochs=4,
        lr=3e-3,
        batch_size=64,
        method="fast",
        threat=ft.Linf(EPS),
        val=(xv, yv),
        progress=False,
    )
    assert history.config["co_check_every"] == 8  # 512 samples, 8 steps per epoch: once per epoch by default
    assert len(history.co_checks) == 1 + 4
    assert not [e for e in history.events if e.kind == "catastrophic_overfitting"]


def test_best_checkpoint_keeps_the_best_weights_and_stops_after_patience():
    module = nn.Linear(2, 2)
    best = BestCheckpoint(patience=2)
    values = [0.1, 0.5, 0.4, 0.3]
    weights = []
    stops = []
    for epoch, value in enumerate(values, start=1):
        with torch.no_grad():
            module.weight.fill_(epoch)
        weights.append(module.weight.clone())
        stops.append(best.update(module, value, epoch))
    assert stops == [False, False, False, True]
    assert best.best_epoch == 2
    best.restore(module)
    assert torch.equal(module.weight, weights[1])


def test_training_keeps_the_epoch_with_the_best_robust_validation_accuracy():
    (x, y), (xv, yv) = ft.data.load("synthetic", "train"), ft.data.load("synthetic", "test", n=128)
    clf = fresh_cnn_tiny()
    # a large constant lr makes robust validation accuracy go up and down between epochs
    history = ft.train(
        clf,
        (x, y),
        epochs=6,
        lr=2e-2,
        batch_size=64,
        method="fast",
        threat=ft.Linf(EPS),
        val=(xv, yv),
        early_stopping=2,
        co_check_every=0,
        progress=False,
    )
    robust = [e.val_robust_accuracy for e in history.epochs]
    assert all(r is not None for r in robust)
    best_epoch = max(range(len(robust)), key=lambda i: (robust[i], history.epochs[i].val_accuracy)) + 1
    assert history.best_epoch == best_epoch
    x_adv = ft.attacks.PGD(steps=10, seed=0)(clf, xv, yv, ft.Linf(EPS))
    assert float((clf.predict(x_adv) == yv).float().mean()) == pytest.approx(robust[best_epoch - 1])
    if best_epoch != len(robust):
        assert history.events[-1].kind == "restored_best"
    stopped = [e for e in history.events if e.kind == "early_stop"]
    assert len(history.epochs) == 6 or (stopped and len(history.epochs) == best_epoch + 2)


def test_fine_tuning_continues_from_the_given_weights():
    (x, y), (xt, yt) = ft.data.load("synthetic", "train"), ft.data.load("synthetic", "test")
    clf = fresh_cnn_tiny()
    ft.train(clf, (x, y), epochs=4, lr=3e-3, batch_size=64, progress=False)
    before = float((clf.predict(xt) == yt).float().mean())
    ft.train(
        clf, (x, y), epochs=1, lr=1e-3, batch_size=64, method="fast", threat=ft.Linf(0.1), progress=False
    )
    assert before > 0.9 and float((clf.predict(xt) == yt).float().mean()) > 0.9
