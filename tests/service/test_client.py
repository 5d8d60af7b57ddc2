"""``ft.blackbox.from_url``: the live endpoint as a BlackBox, through auth, limits (429) and the guard."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.service.app import create_app
from fortify.service.client import EndpointError
from tests.service.conftest import KEYS, key_configs
from tests.service.server import running


def test_labels_through_the_endpoint_match_the_guard(guard, settings_for, synthetic):
    x, _ = synthetic
    with running(create_app(settings_for(), guard=guard)) as url:
        bb = ft.blackbox.from_url(url, model="fortify", api_key=KEYS["infer"], batch_size=4)
        labels = bb.predict(x[:10])
        stats = bb.endpoint.stats()
    assert labels.tolist() == [v.label for v in guard(x[:10])]
    assert bb.queries == 10 and bb.calls == 3 and bb.num_classes == 4 and bb.bounds == (0.0, 1.0)
    assert sum(stats["verdicts"].values()) == 10 and stats["requests"] == 4  # metadata + 3 infer
    assert 0.0 <= stats["review_rate"] <= 1.0


def test_429_is_retried_after_retry_after(guard, settings_for, synthetic):
    x, _ = synthetic
    settings = settings_for(keys=key_configs(per_second=4.0, burst=2))
    with running(create_app(settings, guard=guard)) as url:
        bb = ft.blackbox.from_url(url, api_key=KEYS["infer"], batch_size=1, backoff_s=0.05)
        labels = bb.predict(x[:4])
        stats = bb.endpoint.stats()
    assert labels.tolist() == [v.label for v in guard(x[:4])]
    assert stats["http_codes"].get("429", 0) >= 1 and stats["retries"] >= 1 and stats["waited_s"] >= 1.0


def test_score_attack_runs_against_the_live_endpoint(guard, settings_for, synthetic):
    x, y = synthetic
    settings = settings_for(expose_probabilities=True, keys=key_configs(per_second=1000, burst=1000))
    with running(create_app(settings, guard=guard)) as url:
        bb = ft.blackbox.from_url(url, api_key=KEYS["infer"], output="scores")
        probs = bb.scores(x[:6])
        x_adv = ft.attacks.Square(n_queries=30)(bb, x[:6], y[:6], ft.Linf(0.1))
        stats = bb.endpoint.stats()
    assert probs.shape == (6, 4) and torch.allclose(probs.sum(1), torch.ones(6, dtype=probs.dtype), atol=1e-4)
    assert probs.argmax(1).tolist() == [v.label for v in guard(x[:6])]
    assert (x_adv - x[:6]).abs().max() <= 0.1 + 1e-6 and bb.queries > 6
    assert stats["requests"] >= 3


def test_refusals_are_one_line_errors(guard, settings_for):
    with running(create_app(settings_for(), guard=guard)) as url:
        with pytest.raises(EndpointError, match="HTTP 401: invalid API key"):
            ft.blackbox.from_url(url, api_key="fk_wrong")
        with pytest.raises(ft.FortifyError, match="no 'probabilities' output"):
            ft.blackbox.from_url(url, api_key=KEYS["infer"], output="scores")
        with pytest.raises(EndpointError, match="404"):
            ft.blackbox.from_url(url, model="other", api_key=KEYS["infer"])
    with pytest.raises(EndpointError, match="failed after"):
        ft.blackbox.from_url(url, api_key=KEYS["infer"], max_retries=1, backoff_s=0.01)
