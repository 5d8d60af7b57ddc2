"""MLflow tracking: params, metrics with per-eps steps, JSON and report artifacts, store selection."""

from __future__ import annotations

import json
import sys

import pytest

import fortify as ft
from fortify import track
from tests.report.factories import HOSTILE, make_result, seed_mlflow_store


def test_metrics_put_each_eps_on_its_own_step():
    results = [make_result(eps=0.1, robust=0.4, full=True), make_result(eps=0.3, robust=0.0)]
    metrics = track.metrics_of(results)
    curve = sorted((step, value) for key, value, step in metrics if key == "robust_accuracy.linf")
    assert curve == [(50, 0.7), (100, 0.4), (200, 0.1), (300, 0.0)]
    headline = {key: value for key, value, step in metrics if step == 0}
    assert headline["clean_accuracy"] == 0.9 and headline["robust_accuracy"] == 0.4
    assert headline["reliable"] == 1.0 and headline["ece_adversarial"] == 0.6
    assert any(key == "certified_accuracy.l2" for key, _, _ in metrics)


def test_params_describe_threat_suite_model_and_attacks():
    result = make_result()
    params = track.params_of(result)
    assert (
        params["threat.norm"] == "linf" and params["threat.eps"] == "0.1" and params["suite"] == result.suite
    )
    assert params["attack.pgd.steps"] == "20" and params["model.module"] == "TinyCNN"
    assert all(isinstance(v, str) for v in params.values())
    assert "attack._script_alert__x___/script_.steps" in track.params_of(make_result(attack_name=HOSTILE))


def test_missing_mlflow_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # what an environment without the extra sees
    with pytest.raises(ft.FortifyError, match=r"pip install 'fortify\[mlflow\]'"):
        track.log(make_result(), run_dir=tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'x.db'}")


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One run logged to the default local store of a run folder (creating the store once)."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    run_dir = tmp_path_factory.mktemp("run")
    seed_mlflow_store(run_dir)
    results = [make_result(eps=0.1, robust=0.4, full=True), make_result(eps=0.3, robust=0.0)]
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_id = track.log(results, run_dir=run_dir, run_name="tiny <cnn>")
    return run_dir, run_id


def test_log_writes_params_metrics_and_artifacts_to_the_run_folder(logged):
    from mlflow.tracking import MlflowClient

    run_dir, run_id = logged
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.run_name == "tiny <cnn>" and run.info.status == "FINISHED"
    assert run.data.params["threat.eps"] == "0.1" and run.data.metrics["robust_accuracy"] == 0.4
    history = client.get_metric_history(run_id, "robust_accuracy.linf")
    assert sorted((m.step, m.value) for m in history) == [(50, 0.7), (100, 0.4), (200, 0.1), (300, 0.0)]
    artifacts = sorted(a.path for a in client.list_artifacts(run_id))
    assert artifacts == ["report.html", "result-0.json", "result-1.json"]
    stored = next((run_dir / "mlartifacts").rglob("result-0.json"))
    assert ft.Result.from_json(stored.read_text()).robust_accuracy == 0.4


def test_tracking_uri_from_the_environment_wins_over_the_run_folder(logged, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    run_dir, _ = logged
    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    elsewhere = tmp_path / "other-run"
    report = tmp_path / "given.html"
    report.write_text("<html>mine</html>")
    run_id = track.log(make_result(), run_dir=elsewhere, report=report)
    assert not (elsewhere / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=uri)
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["given.html", "result.json"]
    assert json.loads(json.dumps(client.get_run(run_id).data.params))["suite"] == make_result().suite


def _training_result(epochs: int = 2) -> ft.Result:
    records = [
        {"epoch": e, "loss": 1 / e, "accuracy": 0.5 + e / 10, "time_s": 2.0, "val_robust_accuracy": 0.3 * e}
        for e in range(1, epochs + 1)
    ]
    return ft.Result(kind="training", clean_accuracy=0.8, sections={"training": {"epochs": records}})


def test_training_history_becomes_per_epoch_curves():
    curves = track.training_curves(_training_result(3))
    loss = sorted((step, value) for key, value, step in curves if key == "train.loss")
    assert loss == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert sorted(step for key, _, step in curves if key == "train.val_robust_accuracy") == [1, 2, 3]
    assert not any(key == "train.val_accuracy" for key, _, _ in curves)  # absent values are not invented
    assert track.training_curves(make_result()) == []


def test_a_dp_runs_spent_budget_is_logged_as_metrics():
    budget = {"epsilon": 2.9, "delta": 1e-5, "accountant": "rdp", "noise_multiplier": 1.4}
    budget |= {"max_grad_norm": 1.0, "sample_rate": 0.05, "steps": 200, "target_epsilon": 3.0, "epochs": 10}
    result = ft.Result(kind="training", sections={"training": {"method": "dp", "privacy": budget}})
    metrics = {key: value for key, value, step in track.metrics_of([result]) if step == 0}
    assert metrics["privacy.epsilon"] == 2.9 and metrics["privacy.steps"] == 200.0
    assert metrics["privacy.noise_multiplier"] == 1.4 and "privacy.accountant" not in metrics
    assert not any(key.startswith("privacy.") for key, _, _ in track.metrics_of([_training_result()]))
