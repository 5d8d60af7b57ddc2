"""Moved to ``fortify.report.mlflow`` (the MLflow writer); this module keeps ``ft.track`` working."""

from fortify.report.mlflow import (
    DEFAULT_EXPERIMENT,
    EPS_STEP_SCALE,
    TRAINING_METRICS,
    log,
    metrics_of,
    params_of,
    store_uri,
    training_curves,
)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "EPS_STEP_SCALE",
    "TRAINING_METRICS",
    "log",
    "metrics_of",
    "params_of",
    "store_uri",
    "training_curves",
]
