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


def test_a_models_training_and_evaluation_runs_sit_side_by_side_in_the_default_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    import hashlib

    from mlflow.tracking import MlflowClient

    from fortify.cli.main import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "runs" / "mlflow"  # the one documented default, for train and evaluate alike
    seed_mlflow_store(store)
    train = [
        "train",
        "--data",
        "digits",
        "--arch",
        "cnn-tiny",
        "--epochs",
        "1",
        "--n",
        "300",
        "--lr",
        "0.003",
    ]
    assert main([*train, "--test-n", "20", "--threads", "1", "--out", "run", "--mlflow"]) == 0
    model = tmp_path / "run" / "model.safetensors"
    evaluate = ["evaluate", "--model", str(model), "--data", "digits", "--n", "16", "--eps", "0.05"]
    assert main([*evaluate, "--threads", "1", "--device", "cpu", "--out", "eval.json", "--mlflow"]) == 0

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fortify").experiment_id])
    by_kind = {r.data.params["kind"]: r for r in runs}
    assert sorted(by_kind) == ["evaluation", "training"] and len(runs) == 2
    training, evaluation = by_kind["training"], by_kind["evaluation"]
    run_id = json.loads((tmp_path / "run" / "train.json").read_text())["model"]["identity"]["training_run"][
        "id"
    ]
    assert (
        training.data.tags["fortify.training_run_id"]
        == evaluation.data.tags["fortify.training_run_id"]
        == run_id
    )
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert evaluation.data.params["model.identity.weights_sha256"] == digest
    assert (
        training.data.tags["fortify.model_sha256"] == evaluation.data.tags["fortify.model_sha256"] == digest
    )
    params = training.data.params  # hyperparameters are params, not only the train.json artifact
    assert (
        params["train.lr"] == "0.003"
        and params["train.epochs"] == "1"
        and params["train.method"] == "standard"
    )
    assert params["train.batch_size"] == "128" and params["env.threads"] == "1"
    assert not (tmp_path / "run" / "mlflow").exists() and not (tmp_path / "mlflow.db").exists()
