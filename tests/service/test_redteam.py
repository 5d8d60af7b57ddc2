"""Red-teaming the live endpoint: a black-box attack through auth, limits and guard, as a Result."""

from __future__ import annotations

import pytest

import fortify as ft
from fortify.cli.main import main
from fortify.runtime import AlertRule, Monitor
from fortify.service.app import create_app
from fortify.service.redteam import evaluate_endpoint
from tests.service.conftest import KEYS, key_configs
from tests.service.server import running


@pytest.fixture
def endpoint(guard, settings_for):
    rule = AlertRule(
        name="attack", metric="review_rate", window=20, threshold=0.05, min_count=20, cooldown_s=0
    )
    settings = settings_for(keys=key_configs(per_second=10_000, burst=10_000), expose_probabilities=True)
    with running(create_app(settings, guard=guard, monitor=Monitor(rules=[rule]))) as url:
        yield url


def test_a_score_attack_through_the_endpoint_is_judged_by_its_verdicts(endpoint, synthetic):
    x, y = synthetic
    bb = ft.blackbox.from_url(endpoint, api_key=KEYS["admin"], output="scores")
    result = evaluate_endpoint(bb, x[:8], y[:8], ft.Linf(0.3), n_queries=60, dataset="synthetic")
    section = result.sections["endpoint"]
    correct = [s for s in result.samples if s.clean_correct]
    broken = [s for s in correct if s.broken_by is not None]
    assert result.n_samples == 8 and result.clean_accuracy == len(correct) / 8
    assert result.attack_success_rate == len(broken) / len(correct)
    assert result.robust_accuracy == (len(correct) - len(broken)) / 8
    assert all(s.adv_pred != s.label for s in broken) and all(
        s.perturbation_norm <= 0.3 + 1e-6 for s in correct
    )
    assert result.per_attack[0].name == "square" and sum(section["verdicts"].values()) >= bb.queries
    assert 0.0 <= section["clean_review_rate"] <= 1.0 and section["alerts_note"] is None
    assert isinstance(section["alerts"], list)
    assert ft.Result.from_json(result.to_json()).sections["endpoint"]["requests"] == section["requests"]


def test_evaluate_url_from_the_cli(endpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FORTIFY_API_KEY", KEYS["infer"])
    monkeypatch.setenv("FORTIFY_ENDPOINT_QUERIES", "40")
    out = tmp_path / "endpoint.json"
    args = [
        "evaluate",
        "--url",
        endpoint,
        "--data",
        "synthetic",
        "--n",
        "6",
        "--eps",
        "0.3",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    result = ft.Result.load(str(out))
    assert result.n_samples == 6 and result.suite == "endpoint-square"
    # an infer-only key cannot read the alerts: said, not hidden
    assert (
        result.sections["endpoint"]["alerts"] is None and "403" in result.sections["endpoint"]["alerts_note"]
    )
    assert "endpoint:" in capsys.readouterr().out
    assert main(["evaluate", "--url", endpoint, "--guard", str(tmp_path)]) == 2
