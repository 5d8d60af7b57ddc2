"""TrainConfig: the keyword form and the config form of ft.train are one run; the config is frozen,
validated when built, and survives a JSON round trip."""

from __future__ import annotations

import json

import pydantic
import pytest
import torch

import fortify as ft
from tests.conftest import fresh_cnn_tiny


def test_a_config_and_the_same_keywords_train_the_same_weights():
    x, y = ft.data.load("synthetic", "train")
    a, b = fresh_cnn_tiny(), fresh_cnn_tiny()
    b.load_state_dict(a.state_dict())
    config = ft.TrainConfig(
        epochs=1, batch_size=32, seed=5, method="pgd", threat=ft.Linf(0.1), method_options={"steps": 2}
    )
    first = ft.train(a, (x[:96], y[:96]), config)
    second = ft.train(
        b, (x[:96], y[:96]), epochs=1, batch_size=32, seed=5, method="pgd", threat=ft.Linf(0.1), steps=2
    )
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert first.config == second.config and first.options == second.options == {"steps": 2}


def test_a_config_round_trips_through_json_and_is_frozen():
    config = ft.TrainConfig(
        epochs=3, lr=0.01, threat=ft.L2(0.5), method="trades", method_options={"beta": 2.0}
    )
    again = ft.TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.threat == ft.L2(0.5)
    with pytest.raises(pydantic.ValidationError):
        config.epochs = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    "settings", [{"epochs": 0}, {"lr": 0.0}, {"optimizer": "rmsprop"}, {"eps_ramp": 2.0}]
)
def test_a_bad_setting_is_refused_when_the_config_is_built(settings):
    with pytest.raises(ft.FortifyError):
        ft.TrainConfig(**settings)


def test_a_config_and_keywords_together_are_refused():
    x, y = ft.data.load("synthetic", "train")
    with pytest.raises(ft.FortifyError, match="not both"):
        ft.train(fresh_cnn_tiny(), (x[:32], y[:32]), ft.TrainConfig(), epochs=2)
