"""`fortify train --mlflow`: the per-epoch history lands in MLflow as curves, train.json as artifact."""

from __future__ import annotations

import json

import pytest

from tests.report.factories import seed_mlflow_store


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with an empty local MLflow store."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    seed_mlflow_store(tmp_path / "store")
    return tmp_path / "store"


def test_train_cli_logs_its_history_to_mlflow(run_dir, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from fortify.cli.main import main

    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    args = ["train", "--data", "digits", "--arch", "cnn-tiny", "--epochs", "2", "--test-n", "50"]
    assert main([*args, "--threads", "1", "--out", str(tmp_path / "run"), "--mlflow"]) == 0
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("fortify").experiment_id])
    run = next(r for r in runs if r.data.params.get("kind") == "training")
    history = client.get_metric_history(run.info.run_id, "train.loss")
    assert sorted(m.step for m in history) == [1, 2]
    saved = json.loads((tmp_path / "run" / "train.json").read_text())
    assert [round(m.value, 6) for m in sorted(history, key=lambda m: m.step)] == [
        round(e["loss"], 6) for e in saved["sections"]["training"]["epochs"]
    ]
