"""`fortify evaluate`: robustness of a saved model under a threat, as a Result JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fortify import data as datasets
from fortify.cli.app import app
from fortify.cli.common import (
    MODEL_HELP,
    BatchSize,
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    Precision,
    Seed,
    Split,
    Std,
    Threads,
    TrustCode,
    Weights,
    check_outputs,
    data_name,
    load_model_for,
    normalisation,
    setup_torch,
    threat_for,
)
from fortify.cli.detector_opts import (
    CalibrationN,
    DetectorFpr,
    DetectorName,
    SqueezeBits,
    SqueezeMedian,
    detector_line,
    detector_spec,
)
from fortify.cli.estimate import suite_cost
from fortify.cli.progress import ProgressMode, Quiet, bars, configure
from fortify.cli.render import console, pct, print_diagnostics, results_table
from fortify.cli.report_cmd import publish
from fortify.cli.scale_opts import GpusPerWorker, RayAddress, Shards, executor_for, file_loader, scale_line
from fortify.data.files import is_file_dataset
from fortify.detect.calibration import with_detector
from fortify.evaluation import evaluate, suite_names
from fortify.result import Result
from fortify.runtime import Guard, calibration_overlap, evaluate_guard
from fortify.threat import Threat, make_threat
from fortify.types import FortifyError


@app.command("evaluate")
def evaluate_command(
    model: Annotated[Path | None, typer.Option(help=MODEL_HELP)] = None,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    guard: Annotated[
        Path | None,
        typer.Option(
            help="a guard bundle (fortify guard build) instead of --model: the guard is attacked as "
            "deployed, with its policy in the objective, and judged broken only by misclassified, "
            "ACCEPTED points; naive attacks on its bare models are reported beside it"
        ),
    ] = None,
    trust_code: TrustCode = False,
    url: Annotated[
        str | None,
        typer.Option(help="a served endpoint (http://host:port) to red-team instead; key in FORTIFY_API_KEY"),
    ] = None,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    eps: Annotated[float, typer.Option(help="radius of the threat ball")] = 0.1,
    norm: Annotated[str, typer.Option(help="linf or l2")] = "linf",
    n: Annotated[int, typer.Option(min=1, help="number of test samples")] = 1000,
    suite: Annotated[str, typer.Option(help=f"attack suite: {', '.join(suite_names())}")] = "quick",
    split: Split = "test",
    seed: Seed = 0,
    batch_size: BatchSize = 250,
    precision: Precision = "fp32",
    out: Annotated[Path | None, typer.Option(help="write the Result JSON here")] = None,
    report: Annotated[Path | None, typer.Option(help="also write the HTML report here")] = None,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="log the run to MLflow")] = False,
    device: Device = "auto",
    threads: Threads = None,
    progress: ProgressMode = "auto",
    quiet: Quiet = False,
    detector: DetectorName = None,
    detector_fpr: DetectorFpr = None,
    calibration_n: CalibrationN = None,
    squeeze_bits: SqueezeBits = None,
    squeeze_median: SqueezeMedian = None,
    ray: RayAddress = None,
    shards: Shards = None,
    gpus_per_worker: GpusPerWorker = 0.0,
) -> None:
    """Attack a saved model with a suite and report per-sample worst-case robust accuracy.

    With --detector the model is judged and attacked together with a calibrated detector; with
    --guard, a guard bundle is evaluated instead of a model; with --ray, the samples are sharded over
    a Ray cluster.
    """
    check_outputs(out=out, report=report)
    dev = setup_torch(threads, device)
    configure(progress, quiet)
    threat = make_threat(norm, eps)
    data = data_name(data, label)
    if model is None and (mean is not None or std is not None):
        raise FortifyError(
            "--mean/--std declare the normalisation of a --model; a guard or endpoint has its own"
        )
    if (ray is not None or shards is not None) and (url is not None or guard is not None):
        raise FortifyError("--ray and --shards shard a --model's evaluation; a guard or endpoint runs here")
    if url is not None:
        from fortify.cli.serve_cmd import evaluate_url

        if model is not None or guard is not None:
            raise FortifyError("--url red-teams a served endpoint: give it without --model or --guard")
        evaluate_url(url, data, split, n, threat, seed, out)
        return
    if (model is None) == (guard is None):
        raise FortifyError("give exactly one of --model and --guard")
    if guard is not None:
        if detector is not None:
            raise FortifyError("--detector adds a detector to a model; a guard bundle has its own detectors")
        guarded = Guard.load(str(guard), trust_code=trust_code).to(dev)
        _evaluate_guard(
            guarded, guard, data, split, n, threat, suite, seed, batch_size, out, report, mlflow, precision
        )
        return
    assert model is not None
    spec = detector_spec(detector, detector_fpr, calibration_n, squeeze_bits, squeeze_median, data)
    norms = normalisation(mean, std, data)
    clf = load_model_for(model, data, dev, weights, model_arg, norms)
    x, y = datasets.load(data, split, n=n)
    threat = threat_for(norm, eps, clf.bounds, tuple(x.shape[1:]))
    # with a detector the workers get the driver's calibrated pair; otherwise they load the file
    loader = None if spec is not None else file_loader(model, data, weights, model_arg, norms)
    executor = executor_for(ray, shards, gpus_per_worker, loader)
    calibration = None
    if spec is not None:
        clf, calibration = with_detector(clf, spec, data, split, x.shape[0])
    if suite in suite_names():
        suite_cost(suite, clf, x, y, threat, seed, batch_size=batch_size, detector=spec is not None)
    names = datasets.info(data).classes if is_file_dataset(data) else None  # the user's own class names
    result = evaluate(
        clf,
        x,
        y,
        threat,
        suite=suite,
        seed=seed,
        batch_size=batch_size,
        dataset=data,
        class_names=names,
        progress=bars,
        executor=executor,
        precision=precision,
    )
    console.print(results_table([result], f"{model} on {data} ({result.n_samples} samples)"))
    if executor is not None:
        console.print(scale_line(result), highlight=False, markup=False, soft_wrap=True)
    if calibration is not None:
        console.print(detector_line(result, calibration), highlight=False, markup=False, soft_wrap=True)
    print_diagnostics(result)
    if out is not None:
        result.save(str(out))
        console.print(f"wrote {out}")
    publish(result, clf, x, y, threat, suite=suite, seed=seed, report=report, mlflow=mlflow, out=out)


def _evaluate_guard(
    guard: Guard,
    bundle: Path,
    data: str,
    split: str,
    n: int,
    threat: Threat,
    suite: str,
    seed: int,
    batch_size: int,
    out: Path | None,
    report: Path | None,
    mlflow: bool,
    precision: str = "fp32",
) -> None:
    overlap = calibration_overlap(guard, data, split, n)
    if overlap is not None:
        raise FortifyError(overlap)
    x, y = datasets.load(data, split, n=n)
    threat = threat_for(threat.norm, threat.eps, guard.classifier.bounds, tuple(x.shape[1:]))
    result = evaluate_guard(
        guard,
        x,
        y,
        threat,
        suite,
        seed=seed,
        batch_size=batch_size,
        dataset=data,
        progress=bars,
        precision=precision,
    )
    result.model = {**result.model, "guard_bundle": str(bundle)}
    console.print(results_table([result], f"guard {bundle} on {data} ({result.n_samples} samples)"))
    console.print(guard_lines(result), highlight=False, markup=False, soft_wrap=True)
    print_diagnostics(result)
    if out is not None:
        result.save(str(out))
        console.print(f"wrote {out}")
    publish(
        result, guard.classifier, x, y, threat, suite=suite, seed=seed, report=report, mlflow=mlflow, out=out
    )


def guard_lines(result: Result) -> str:
    """The guard section in a few lines: review rate, accepted accuracy, naive vs adaptive, latency."""
    g = result.sections["guard"]
    lines = [
        f"clean: review rate {pct(g['clean_review_rate'])}, accepted clean accuracy "
        f"{pct(g['accepted_clean_accuracy'])}",
        f"adaptive success through the guard: {pct(g['adaptive_success_rate'])}",
    ]
    for name, row in (g.get("naive") or {}).items():
        lines.append(
            f"naive {name} on the bare model: fools {pct(row['fooled'])}, detected {pct(row['detected'])}, "
            f"success through the guard {pct(row['success'])}"
        )
    lat = g["latency_ms"]
    lines.append(
        f"latency: one input p50 {lat['single_p50']:.2f} ms / p99 {lat['single_p99']:.2f} ms; "
        f"batch of 64 p50 {lat['batch64_p50']:.1f} ms"
    )
    return "\n".join(lines)
