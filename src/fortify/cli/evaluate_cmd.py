"""`fortify evaluate`: robustness of a saved model under a threat, as a Result JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fortify import data as datasets
from fortify.cli.app import app
from fortify.cli.common import DatasetName, Device, ModelFile, Threads, load_model_for, setup_torch
from fortify.cli.detector_opts import (
    CalibrationN,
    DetectorFpr,
    DetectorName,
    SqueezeBits,
    SqueezeMedian,
    detector_line,
    detector_spec,
)
from fortify.cli.progress import bars
from fortify.cli.render import console, print_diagnostics, results_table
from fortify.cli.report_cmd import publish
from fortify.detect.calibration import with_detector
from fortify.evaluation import evaluate, suite_names
from fortify.threat import make_threat


@app.command("evaluate")
def evaluate_command(
    model: ModelFile,
    data: DatasetName = "fashion-mnist",
    eps: Annotated[float, typer.Option(help="radius of the threat ball")] = 0.1,
    norm: Annotated[str, typer.Option(help="linf or l2")] = "linf",
    n: Annotated[int, typer.Option(min=1, help="number of test samples")] = 1000,
    suite: Annotated[str, typer.Option(help=f"attack suite: {', '.join(suite_names())}")] = "quick",
    split: str = "test",
    seed: int = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 250,
    out: Annotated[Path | None, typer.Option(help="write the Result JSON here")] = None,
    report: Annotated[Path | None, typer.Option(help="also write the HTML report here")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="log the run to MLflow")] = False,
    device: Device = "auto",
    threads: Threads = None,
    detector: DetectorName = None,
    detector_fpr: DetectorFpr = None,
    calibration_n: CalibrationN = None,
    squeeze_bits: SqueezeBits = None,
    squeeze_median: SqueezeMedian = None,
) -> None:
    """Attack a saved model with a suite and report per-sample worst-case robust accuracy.

    With --detector the model is judged and attacked together with a calibrated detector.
    """
    dev = setup_torch(threads, device)
    threat = make_threat(norm, eps)
    spec = detector_spec(detector, detector_fpr, calibration_n, squeeze_bits, squeeze_median, data)
    clf = load_model_for(model, data, dev)
    x, y = datasets.load(data, split, n=n)
    calibration = None
    if spec is not None:
        clf, calibration = with_detector(clf, spec, data, split, x.shape[0])
    result = evaluate(
        clf, x, y, threat, suite=suite, seed=seed, batch_size=batch_size, dataset=data, progress=bars
    )
    console.print(results_table([result], f"{model} on {data} ({result.n_samples} samples)"))
    if calibration is not None:
        console.print(detector_line(result, calibration), highlight=False, markup=False, soft_wrap=True)
    print_diagnostics(result)
    if out is not None:
        result.save(str(out))
        console.print(f"wrote {out}")
    publish(result, clf, x, y, threat, suite=suite, seed=seed, report=report, mlflow=mlflow, out=out)
