"""Stealing the served model over HTTP: queries until the monitor's PRADA alert, the student's quality
then, a block that ends the run without losing what it measured, and the CLI's one-line refusals."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.audits import extraction
from fortify.cli.main import main
from fortify.report import render_html
from fortify.runtime import AlertRule, Monitor
from fortify.service.app import create_app
from fortify.service.theft import AlertWatch
from tests.service.conftest import KEYS, key_configs
from tests.service.server import free_port, running

BUDGETS = [60, 240]


def _student() -> ft.Classifier:
    torch.manual_seed(3)
    return ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)


def _served(guard, settings_for, action: str = "alert"):
    rule = AlertRule(
        name="theft", metric="prada_w", window_s=3600, op="<", threshold=0.9, min_count=1, action=action
    )
    settings = settings_for(keys=key_configs(per_second=10_000, burst=10_000), expose_probabilities=True)
    return running(create_app(settings, guard=guard, monitor=Monitor(rules=[rule])))


@pytest.fixture(scope="module")
def pool():
    x, _ = ft.data.make_synthetic(400, seed=71)
    return x


def test_perturbed_queries_raise_the_prada_alert_and_the_curve_records_when(
    guard, settings_for, synthetic, pool
):
    x_test, y_test = synthetic
    queries = extraction.query_set("perturbed", pool, BUDGETS[-1], eps=0.05, seeds=4)
    with _served(guard, settings_for) as url:
        bb = ft.blackbox.from_url(url, api_key=KEYS["admin"], output="auto", batch_size=20)
        assert bb.output == "scores"
        watch = AlertWatch(bb.endpoint)
        stolen, curve = extraction.knockoff(
            bb, queries, BUDGETS, _student, x_test[:100], y_test[:100], epochs=3, chunk=20, detected=watch
        )
    assert curve.queried == BUDGETS[-1] and curve.budgets == BUDGETS and len(curve.agreement) == 2
    assert curve.detected_at is not None and curve.detected_at % 20 == 0 and curve.detected_at <= 240
    assert watch.alert is not None and watch.alert["metric"] == "prada_w" and watch.alert["value"] < 0.9
    assert watch.alert["client"] == "admin"
    at = curve.at_detection
    assert at is not None and at["queries"] == curve.detected_at and 0.0 <= at["accuracy"] <= 1.0
    assert curve.victim_accuracy is not None and curve.victim_accuracy > 0.9
    assert stolen.predict(x_test[:4]).shape == (4,)


def test_a_block_on_the_alert_ends_the_run_and_keeps_the_budgets_it_paid_for(
    guard, settings_for, synthetic, pool, tmp_path, monkeypatch, capsys
):
    """The CLI against a service whose rule blocks the key: the budgets answered before the block are
    measured and written; the rest are not, and the Result says why."""
    monkeypatch.setenv("FORTIFY_API_KEY", KEYS["admin"])
    out = tmp_path / "steal.json"
    args = ["audit", "extraction", "--data", "synthetic", "--budgets", "20,2000", "--queries", "noise"]
    args += ["--chunk", "20", "--arch", "cnn-tiny", "--epochs", "2", "--n-test", "50", "--out", str(out)]
    with _served(guard, settings_for, action="block") as url:
        assert main([*args, "--url", url, "--queries", "perturbed"]) == 0
    result = ft.Result.load(str(out))
    section = result.sections["extraction"]
    assert section["detected_at"] is not None and section["queried"] == section["detected_at"]
    assert "403" in section["stopped"] and section["budgets"] == [20] and section["partial"] is False
    assert (
        section["alert"]["rule"] == "theft" and section["at_detection"]["queries"] == section["detected_at"]
    )
    assert section["agreement"] == [] and section["endpoint"]["http_codes"]["403"] >= 1
    assert "alert fired after" in capsys.readouterr().out
    page = render_html(result)
    assert "Model extraction" in page and "(when the alert fired)" in page and "Stopped early" in page
    # the section is untrusted: garbage renders as dashes, never as an error
    result.sections["extraction"] = {
        "budgets": [1, "x"],
        "accuracy": "many",
        "at_detection": {"queries": None},
    }
    assert "Model extraction" in render_html(result)


def test_a_key_that_cannot_read_alerts_still_steals_and_says_detection_was_not_measured(
    guard, settings_for, tmp_path, monkeypatch
):
    monkeypatch.setenv("FORTIFY_API_KEY", KEYS["infer"])
    out = tmp_path / "steal.json"
    with _served(guard, settings_for) as url:
        code = main(
            ["audit", "extraction", "--url", url, "--data", "synthetic", "--budgets", "40", "--chunk", "40"]
            + ["--arch", "cnn-tiny", "--epochs", "1", "--n-test", "20", "--out", str(out)]
        )
    assert code == 0
    section = ft.Result.load(str(out)).sections["extraction"]
    assert section["detected_at"] is None and "403" in section["alerts_note"] and section["budgets"] == [40]


def test_an_unreachable_url_and_a_zero_budget_are_one_line_errors(tmp_path, capsys):
    out = tmp_path / "steal.json"
    dead = f"http://127.0.0.1:{free_port()}"
    base = ["audit", "extraction", "--data", "synthetic", "--arch", "cnn-tiny", "--out", str(out)]
    assert main([*base, "--url", dead, "--budgets", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach model" in err and len(err.splitlines()) == 1
    assert main([*base, "--url", dead, "--budgets", "0"]) == 2
    assert "--budgets must be positive integers" in capsys.readouterr().err
    assert main([*base, "--budgets", "10"]) == 2
    assert "exactly one of --model" in capsys.readouterr().err
    assert not out.exists()
