"""Differentially private training (method "dp", Opacus): it trains, records the budget it spent within
the target, refuses what it cannot train privately with one line, leaves the model clean afterwards,
and repeats under a seed."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import fortify as ft
from tests.conftest import fresh_cnn_tiny

pytest.importorskip("opacus")


@pytest.fixture(scope="module")
def data():
    return ft.data.load("synthetic", "train")


def _dp(clf, data, **options):
    settings = {"epochs": 2, "batch_size": 64, "lr": 3e-3, "progress": False}
    return ft.train(clf, data, method="dp", **(settings | options))


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_dp_training_learns_and_spends_no_more_than_the_target(data, accountant):
    clf = fresh_cnn_tiny()
    history = _dp(clf, data, epsilon=3.0, delta=1e-5, max_grad_norm=1.0, accountant=accountant, epochs=3)
    budget = history.privacy
    assert budget is not None and 0 < budget["epsilon"] <= 3.0
    assert budget["accountant"] == accountant and budget["delta"] == 1e-5 and budget["max_grad_norm"] == 1.0
    assert budget["sample_rate"] == pytest.approx(64 / 512) and budget["steps"] == 3 * 8
    assert budget["noise_multiplier"] > 0 and budget["target_epsilon"] == 3.0 and budget["epochs"] == 3
    assert history.epochs[-1].accuracy > 0.5  # four separable classes: DP noise still lets it learn


def test_a_smaller_budget_needs_more_noise(data):
    low = _dp(fresh_cnn_tiny(), data, epsilon=1.0).privacy
    high = _dp(fresh_cnn_tiny(), data, epsilon=8.0).privacy
    assert low is not None and high is not None and low["noise_multiplier"] > high["noise_multiplier"]


def test_dp_training_is_reproducible_per_seed(data):
    first, second = fresh_cnn_tiny(), fresh_cnn_tiny()
    _dp(first, data, epsilon=3.0, seed=5)
    _dp(second, data, epsilon=3.0, seed=5)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_model_is_left_without_opacus_hooks_or_attributes(data):
    clf = fresh_cnn_tiny()
    _dp(clf, data, epsilon=3.0)
    assert not hasattr(clf.module, "autograd_grad_sample_hooks")
    for p in clf.parameters():
        assert not hasattr(p, "grad_sample") and not hasattr(p, "_forward_counter")
    assert all("activations" not in vars(layer) for layer in clf.module.modules())
    x, y = data
    ft.attacks.PGD(steps=3)(clf, x[:32], y[:32], ft.Linf(0.1))  # attacks work on it as on any model
    ft.train(clf, (x, y), epochs=1, progress=False)  # and it trains normally again


@pytest.mark.parametrize(
    "base, options",
    [("pgd", {"steps": 2, "clean_ratio": 0.5}), ("fast", {}), ("trades", {"steps": 2})],
)
def test_dp_adversarial_training_keeps_the_inner_attack_out_of_the_private_gradients(data, base, options):
    x, y = data
    clf = fresh_cnn_tiny()
    history = _dp(
        clf,
        (x, y),
        epsilon=8.0,
        base=base,
        threat=ft.Linf(0.1),
        val=(x[:64], y[:64]),
        co_check_every=0,
        **options,
    )
    assert history.privacy is not None and 0 < history.privacy["epsilon"] <= 8.0
    assert history.options["base"] == base
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in history.epochs)
    assert history.epochs[-1].val_robust_accuracy is not None


def test_overfitting_checks_in_a_dp_run_use_validation_data_only(data):
    x, y = data
    options = {"epsilon": 8.0, "base": "fast", "threat": ft.Linf(0.1)}
    history = _dp(fresh_cnn_tiny(), (x, y), **options)
    assert history.co_checks == [] and history.config["co_check_every"] == 0  # off without val
    checked = _dp(fresh_cnn_tiny(), (x, y), val=(x[:64], y[:64]), **options)
    assert checked.co_checks  # on, on the validation samples
    with pytest.raises(ft.FortifyError, match="needs val="):
        _dp(fresh_cnn_tiny(), (x, y), co_check_every=2, **options)


def test_empty_poisson_batches_still_count_as_noisy_steps(data):
    x, y = data
    history = _dp(fresh_cnn_tiny(), (x[:8], y[:8]), epsilon=8.0, batch_size=1, epochs=3)
    assert history.privacy is not None and history.privacy["steps"] == 3 * 8
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in history.epochs)


def test_a_dataloader_is_poisson_sampled_from_its_dataset(data):
    x, y = data
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    history = _dp(fresh_cnn_tiny(), loader, epsilon=3.0)
    assert history.privacy is not None and history.privacy["sample_rate"] == pytest.approx(0.25)
    with pytest.raises(ft.FortifyError, match="DataLoader over a Dataset"):
        _dp(fresh_cnn_tiny(), [(x[:64], y[:64]), (x[64:128], y[64:128])], epsilon=3.0)


def _with_batchnorm() -> ft.Classifier:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 4)
    )
    return ft.Classifier(module, num_classes=4)


def test_batchnorm_is_refused_with_one_line_naming_the_layer(data):
    with pytest.raises(ft.FortifyError) as caught:
        _dp(_with_batchnorm(), data, epsilon=3.0)
    message = str(caught.value)
    assert "layer '1' (BatchNorm2d)" in message and "replace_batchnorm=True" in message
    assert "\n" not in message


def test_batchnorm_can_be_replaced_by_groupnorm_in_place(data):
    clf = _with_batchnorm()
    module = clf.module
    history = _dp(clf, data, epsilon=3.0, replace_batchnorm=True)
    assert clf.module is module and isinstance(module[1], nn.GroupNorm)
    assert history.events[0].kind == "replaced_batchnorm" and history.events[0].details == {"layers": ["1"]}
    assert history.privacy is not None


def test_other_layers_opacus_cannot_train_are_refused_with_one_line(data):
    class Recurrent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.head = nn.LSTM(8, 8, batch_first=True), nn.Linear(8, 4)

        def forward(self, x):
            return self.head(self.rnn(x.flatten(1, 2))[0][:, -1])

    clf = ft.Classifier(Recurrent(), num_classes=4)
    with pytest.raises(
        ft.FortifyError, match=r"Opacus cannot train layer 'rnn' \(LSTM\) privately"
    ) as caught:
        _dp(clf, data, epsilon=3.0)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "epsilon"),
        ({"epsilon": 0.0}, "epsilon must be a finite number > 0"),
        ({"epsilon": -1.0}, "epsilon must be"),
        ({"epsilon": float("inf")}, "epsilon must be a finite number"),
        ({"epsilon": 3.0, "delta": 0.0}, r"delta must be a number in \(0, 1\)"),
        ({"epsilon": 3.0, "delta": 1.0}, "delta must be"),
        ({"epsilon": 3.0, "max_grad_norm": 0.0}, "max_grad_norm must be"),
        ({"epsilon": 3.0, "accountant": "gdp"}, "accountant must be one of"),
        ({"epsilon": 3.0, "base": "consistency"}, "dp cannot wrap method 'consistency'"),
        ({"epsilon": 3.0, "base": "pgd", "beta": 1.0}, "bad options for training method 'pgd'"),
        ({"epsilon": 0.01}, "epsilon 0.01 at delta 1e-05 cannot be reached over 2 epoch"),
    ],
)
def test_bad_privacy_settings_are_one_line_errors(data, options, message):
    with pytest.raises(ft.FortifyError, match=message) as caught:
        _dp(fresh_cnn_tiny(), data, **options)
    assert "\n" not in str(caught.value)


def test_without_opacus_the_error_says_how_to_install_it(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)  # `import opacus` now raises ImportError
    with pytest.raises(ft.FortifyError, match=r"needs Opacus: pip install 'fortify\[privacy\]'"):
        _dp(fresh_cnn_tiny(), data, epsilon=3.0)


def test_secure_rng_without_torchcsprng_is_a_clear_error(data):
    pytest.importorskip("opacus")
    try:
        import torchcsprng  # noqa: F401

        pytest.skip("torchcsprng is installed")
    except ImportError:
        pass
    with pytest.raises(ft.FortifyError, match="secure_rng needs torchcsprng"):
        _dp(fresh_cnn_tiny(), data, epsilon=3.0, secure_rng=True)
