"""Experiment tracking: log Results to MLflow (params, metrics, per-eps curves, JSON and report artifacts).

One store serves ``fortify train --mlflow`` and ``fortify evaluate --mlflow`` alike, so a model's
training and evaluation runs sit side by side: ``tracking_uri`` when given, else
``$MLFLOW_TRACKING_URI``, else a local SQLite store ``runs/mlflow/mlflow.db`` under the current folder
(``run_dir`` moves it), with artifacts under ``runs/mlflow/mlartifacts``. Browse it with
``mlflow ui --backend-store-uri sqlite:///runs/mlflow/mlflow.db``; that needs the full ``mlflow``
package (``pip install mlflow``): the ``mlflow`` extra (``pip install 'fortify[mlflow]'``) installs
only the skinny client, which logs but has no UI server.

Every run is tagged with the model's identity (``fortify.model_sha256``, ``fortify.training_run_id``,
``fortify.architecture``, see ``fortify.result.identity``): the training run of a model and every
evaluation of it carry the same ``fortify.training_run_id``. A training Result's hyperparameters
(``sections["training"]["config"]``) are params ``train.<name>``; a DP run's spent budget is metrics
``privacy.epsilon``, ``privacy.noise_multiplier``...
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fortify._files import atomic_write_text
from fortify._validate import is_number
from fortify.report.page import write_html
from fortify.result import Result, readers
from fortify.result.identity import training_settings
from fortify.types import FortifyError

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "fortify"
DEFAULT_RUN_DIR = "runs/mlflow"
"""The local store's folder, relative to the current folder, when no tracking URI is set."""
EPS_STEP_SCALE = 1000
"""Per-eps metrics are logged with ``step = round(1000 * eps)``: MLflow steps are integers."""


def store_uri(run_dir: str | Path = DEFAULT_RUN_DIR, tracking_uri: str | None = None) -> str:
    """The tracking URI to use: the argument, else ``$MLFLOW_TRACKING_URI``, else SQLite in ``run_dir``."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or _local_uri(run_dir)


def _local_uri(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def params_of(result: Result) -> dict[str, str]:
    """Flat string parameters describing how the result was produced.

    Nested mappings are flattened with dots (``model.identity.weights_sha256``,
    ``train.method_options.steps``); a training Result's settings (``training_settings``: method,
    seed, the loop's config) become ``train.<name>``, its method options
    ``train.method_options.<name>``. Keys are cut to 250 characters, values to 500.
    """
    params: dict[str, object] = {
        "kind": result.kind,
        "dataset": result.dataset,
        "suite": result.suite,
        "seed": result.seed,
        "n_samples": result.n_samples,
        "schema_version": result.schema_version,
    }
    if result.threat is not None:
        params |= {"threat.norm": result.threat.norm, "threat.eps": result.threat.eps}
    params |= _flat("model", result.model)
    params |= {f"attack.{r.name}.{k}": v for r in result.per_attack for k, v in r.config.items()}
    if result.environment is not None:
        params |= {f"env.{k}": v for k, v in result.environment.model_dump().items()}
    training = result.sections.get("training")
    if training is not None:
        params |= _flat("train", training_settings(training))
    return {_key(key)[:250]: str(value)[:500] for key, value in params.items() if value is not None}


def _flat(prefix: str, value: object, depth: int = 0) -> dict[str, object]:
    """``{"a": {"b": 1}}`` under ``prefix`` -> ``{"prefix.a.b": 1}`` (at most 4 levels; lists stay whole)."""
    if isinstance(value, dict) and value and depth < 4:
        out: dict[str, object] = {}
        for key, item in value.items():
            out |= _flat(f"{prefix}.{key}", item, depth + 1)
        return out
    return {prefix: value}


def tags_of(result: Result) -> dict[str, str]:
    """Tags naming the model a run is about, shared by its training run and every evaluation of it."""
    identity = readers.model_identity(result)
    if identity is None:
        return {"fortify.kind": result.kind}
    run = identity.get("training_run") or {}
    found = {
        "fortify.kind": result.kind,
        "fortify.architecture": identity.get("architecture"),
        "fortify.model_sha256": identity.get("weights_sha256"),
        "fortify.training_run_id": run.get("id"),
    }
    return {key: str(value)[:500] for key, value in found.items() if value is not None}


def metrics_of(results: Sequence[Result]) -> list[tuple[str, float, int]]:
    """``(key, value, step)`` triples: the main result's headline numbers at step 0, curves per eps.

    Curve points (from sweeps, or from several results of one norm) are logged as
    ``robust_accuracy.<norm>`` with ``step = round(1000 * eps)``; where two sources measured the same
    eps the lower value is kept.
    """
    main = results[0]
    out: list[tuple[str, float, int]] = []
    headline = {
        "clean_accuracy": main.clean_accuracy,
        "robust_accuracy": main.robust_accuracy,
        "attack_success_rate": main.attack_success_rate,
        "reliable": float(main.reliable),
        "diagnostics_failed": float(sum(not d.passed for d in main.diagnostics)),
    }
    headline |= {f"time.{k}": v for k, v in main.timing.items()}
    headline |= {f"attack.{r.name}.cumulative_accuracy": r.cumulative_accuracy for r in main.per_attack}
    calibration = getattr(main, "calibration", None)
    if calibration is not None:
        headline |= {"ece_clean": calibration.ece_clean, "ece_adversarial": calibration.ece_adversarial}
    training = main.sections.get("training")
    budget = training.get("privacy") if training is not None else None
    if budget is not None:  # a DP run's spent budget (the asked-for one is a param)
        headline |= {f"privacy.{k}": float(v) for k in PRIVACY_METRICS if is_number(v := budget.get(k))}
    out += [(key, float(value), 0) for key, value in headline.items() if value is not None]
    out += training_curves(main)
    for result in results:
        if result.threat is not None and result.robust_accuracy is not None:
            out.append(
                (f"robust_accuracy.{result.threat.norm}", result.robust_accuracy, _step(result.threat.eps))
            )
        sweep = getattr(result, "sweep", None)
        if sweep is not None:
            out += [
                (f"robust_accuracy.{sweep.norm}", acc, _step(eps))
                for eps, acc in zip(sweep.epsilons, sweep.robust_accuracy, strict=False)
            ]
    curve = readers.certification_curve(main)
    if curve is not None:
        out += [("certified_accuracy.l2", acc, _step(r)) for r, acc in zip(curve.xs, curve.ys, strict=True)]
    lowest: dict[tuple[str, int], float] = {}
    for key, value, step in out:
        if math.isfinite(value):
            where = (_key(key), step)
            lowest[where] = min(value, lowest.get(where, value))
    return [(key, value, step) for (key, step), value in lowest.items()]


PRIVACY_METRICS = ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps")
"""What a differentially private training run spent, logged as ``privacy.<name>``."""
TRAINING_METRICS = ("loss", "accuracy", "val_accuracy", "val_robust_accuracy", "time_s", "lr", "eps")


def training_curves(result: Result) -> list[tuple[str, float, int]]:
    """Per-epoch training history of a training Result as ``("train.<field>", value, epoch)``."""
    training = result.sections.get("training")
    epochs = training.get("epochs", []) if training is not None else []
    return [
        (f"train.{name}", float(value), int(record["epoch"]))
        for record in epochs
        for name in TRAINING_METRICS
        if "epoch" in record and isinstance(value := record.get(name), (int, float))
    ]


def _key(name: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . / `` and spaces; anything else becomes ``_``."""
    return re.sub(r"[^\w\-. /]", "_", name)


def _step(eps: float) -> int:
    return int(round(EPS_STEP_SCALE * eps))


def log(
    results: Result | Sequence[Result],
    *,
    run_dir: str | Path = DEFAULT_RUN_DIR,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    report: str | Path | bool = True,
) -> str:
    """Log one MLflow run for ``results`` (one Result, or several forming a curve); returns the run id.

    Logs parameters (threat, suite, seed, model and its identity, attack configs, versions, training
    hyperparameters; see ``params_of``), tags (``tags_of``), metrics (headline numbers at step 0;
    robust accuracy per eps as steps, see ``metrics_of``), each Result's JSON and the HTML report as
    artifacts. ``report`` is the path of an existing report to attach, ``True`` to render
    one, or ``False`` for none. Raises ``FortifyError`` when mlflow is not installed.
    """
    items = [results] if isinstance(results, Result) else list(results)
    if not items:
        raise FortifyError("track.log needs at least one result")
    uri = store_uri(run_dir, tracking_uri)
    local = Path(run_dir) if uri == _local_uri(run_dir) else None
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    client = _client(uri)
    from mlflow.entities import Metric, Param

    experiment_id = _experiment(client, experiment, local)
    name = run_name or _default_name(items[0])
    run = client.create_run(experiment_id, run_name=name, tags=tags_of(items[0]))
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in params_of(items[0]).items()]
    metrics = [Metric(k, v, now, step) for k, v, step in metrics_of(items)]
    for start in range(0, max(len(params), len(metrics)), 100):
        client.log_batch(run_id, metrics=metrics[start : start + 100], params=params[start : start + 100])
    with tempfile.TemporaryDirectory(prefix="fortify-mlflow-") as tmp:
        for i, result in enumerate(items):
            path = Path(tmp) / (f"result-{i}.json" if len(items) > 1 else "result.json")
            atomic_write_text(path, result.to_json())
            client.log_artifact(run_id, str(path))
        if report is True:
            client.log_artifact(run_id, str(write_html(items, Path(tmp) / "report.html")))
        elif report:
            client.log_artifact(run_id, str(report))
    client.set_terminated(run_id)
    logger.info("logged MLflow run %s to %s", run_id, uri)
    return run_id


def _client(uri: str):  # noqa: ANN202  (mlflow is optional: no import at module level)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise FortifyError("MLflow logging needs the mlflow extra: pip install 'fortify[mlflow]'") from exc
    return MlflowClient(tracking_uri=uri)


def _experiment(client: object, name: str, local_dir: Path | None) -> str:
    """The id of experiment ``name``, created if needed (artifacts next to a local store)."""
    found = client.get_experiment_by_name(name)  # type: ignore[attr-defined]
    if found is not None:
        return str(found.experiment_id)
    location = None
    if local_dir is not None:
        location = (local_dir.resolve() / "mlartifacts").as_uri()
    return str(client.create_experiment(name, artifact_location=location))  # type: ignore[attr-defined]


def _default_name(result: Result) -> str:
    identity = readers.model_identity(result) or {}
    model = identity.get("architecture") or result.model.get("module", "model")
    if result.kind == "training":
        return f"train {model} {result.dataset or ''}".strip()
    return f"{model} {result.dataset or ''} {readers.threat_label(result)} {result.suite or ''}".strip()
