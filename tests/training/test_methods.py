"""Adversarial training methods: each makes a tiny model robust where standard training breaks,
deterministically under a seed, with its options validated."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.conftest import fresh_cnn_tiny

EPS = 0.25  # on the synthetic set, standard training is broken by PGD here (<= ~10% robust)


def _pgd_accuracy(clf: ft.Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    x_adv = ft.attacks.PGD(steps=20, seed=1)(clf, x, y, ft.Linf(EPS))
    return float((clf.predict(x_adv) == y).float().mean())


@pytest.fixture(scope="module")
def data():
    return ft.data.load("synthetic", "train"), ft.data.load("synthetic", "test")


@pytest.fixture(scope="module")
def standard_robust(data):
    (x, y), (xt, yt) = data
    clf = fresh_cnn_tiny()
    ft.train(clf, (x, y), epochs=6, lr=3e-3, batch_size=64, progress=False)
    return _pgd_accuracy(clf, xt, yt)


@pytest.mark.parametrize(
    "method, options",
    [("pgd", {"steps": 5}), ("fast", {}), ("fast", {"variant": "fgsm-rs"}), ("trades", {"steps": 5})],
)
def test_adversarial_training_beats_standard_training_under_pgd(data, standard_robust, method, options):
    (x, y), (xt, yt) = data
    clf = fresh_cnn_tiny()
    ft.train(
        clf,
        (x, y),
        epochs=6,
        lr=3e-3,
        batch_size=64,
        method=method,
        threat=ft.Linf(EPS),
        co_check_every=0,
        progress=False,
        **options,
    )
    clean = float((clf.predict(xt) == yt).float().mean())
    robust = _pgd_accuracy(clf, xt, yt)
    assert standard_robust < 0.15
    assert clean > 0.9
    assert robust > standard_robust + 0.3, (method, robust, standard_robust)


def test_weight_gradients_flow_after_the_inner_attack(data):
    (x, y), _ = data
    clf = fresh_cnn_tiny()
    method = ft.training.methods.build_method("pgd", {"steps": 2})
    ctx = ft.training.StepContext(ft.Linf(EPS), 0, 1, 0, 1, torch.Generator().manual_seed(0))
    clf.module.train()
    loss = method.loss(clf, x[:32], y[:32], ctx)
    loss.backward()
    assert clf.module.training, "the outer loss is computed in train mode"
    assert all(p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0 for p in clf.parameters())


@pytest.mark.parametrize("method", ["pgd", "fast", "trades"])
def test_adversarial_training_is_deterministic_under_a_seed(data, method):
    (x, y), _ = data
    a, b = fresh_cnn_tiny(), fresh_cnn_tiny()
    for clf in (a, b):
        ft.train(
            clf,
            (x[:128], y[:128]),
            epochs=1,
            batch_size=32,
            seed=3,
            method=method,
            threat=ft.Linf(EPS),
            progress=False,
        )
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "pgd"}, "needs a threat"),
        ({"method": "pgd", "threat": ft.Linf(0.1), "clean_ratio": 1.5}, "clean_ratio"),
        ({"method": "fast", "threat": ft.Linf(0.1), "variant": "pgd"}, "variant"),
        ({"method": "trades", "threat": ft.Linf(0.1), "beta": -1.0}, "beta"),
        ({"method": "fast", "threat": ft.Linf(0.1), "warp": 3}, "bad options"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr_schedule": "linear"}, "lr schedule"),
        ({"eps_ramp": 2.0}, "eps_ramp"),
        ({"early_stopping": 2}, "validation"),
    ],
)
def test_bad_training_options_are_rejected(data, kwargs, message):
    (x, y), _ = data
    with pytest.raises(ft.FortifyError, match=message):
        ft.train(fresh_cnn_tiny(), (x[:64], y[:64]), epochs=1, progress=False, **kwargs)


def test_pgd_clean_ratio_mixes_clean_and_adversarial_losses(data):
    (x, y), _ = data
    clf = fresh_cnn_tiny()
    ctx = ft.training.StepContext(ft.Linf(EPS), 0, 1, 0, 1, torch.Generator().manual_seed(0))
    losses = {}
    for ratio in (0.0, 0.5, 1.0):
        method = ft.training.methods.build_method("pgd", {"steps": 3, "clean_ratio": ratio})
        ctx.generator.manual_seed(0)
        losses[ratio] = float(method.loss(clf, x[:64], y[:64], ctx).detach())
    assert losses[0.5] == pytest.approx((losses[0.0] + losses[1.0]) / 2, rel=1e-4)
    assert losses[0.0] > losses[1.0]
