"""`fortify sweep`: robust accuracy of a saved model at several radii, as one Result JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fortify import data as datasets
from fortify.attacks import FMN
from fortify.cli.app import app
from fortify.cli.common import (
    BatchSize,
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    ModelFile,
    Precision,
    Seed,
    Split,
    Std,
    Threads,
    Weights,
    check_outputs,
    data_name,
    load_model_for,
    normalisation,
    parse_numbers,
    setup_torch,
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
from fortify.cli.render import console, pct, print_diagnostics
from fortify.cli.scale_opts import GpusPerWorker, RayAddress, Shards, executor_for, file_loader, scale_line
from fortify.detect.calibration import with_detector
from fortify.evaluation import suite_names, sweep
from fortify.threat import make_threat


@app.command("sweep")
def sweep_command(
    model: ModelFile,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    eps: Annotated[str, typer.Option(help="increasing radii, comma-separated")] = "0.01,0.03,0.1,0.3",
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    norm: Annotated[str, typer.Option(help="linf or l2")] = "linf",
    n: Annotated[int, typer.Option(min=1, help="number of test samples")] = 1000,
    suite: Annotated[str, typer.Option(help=f"attack suite: {', '.join(suite_names())}")] = "standard",
    refine: Annotated[bool, typer.Option(help="run the suite where minimal distances leave doubt")] = True,
    split: Split = "test",
    seed: Seed = 0,
    batch_size: BatchSize = 250,
    precision: Precision = "fp32",
    out: Annotated[Path | None, typer.Option(help="write the Result JSON here")] = None,
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
    """Accuracy-epsilon curve from one minimum-norm pass, refined by a suite at each radius.

    With --precision bf16 the suite's refinement iterates in bfloat16; the minimum-norm pass stays
    float32.
    """
    check_outputs(out=out)
    dev = setup_torch(threads, device)
    configure(progress, quiet)
    epsilons = parse_numbers(eps, "--eps")
    kind = make_threat(norm, 0.0)
    data = data_name(data, label)
    spec = detector_spec(detector, detector_fpr, calibration_n, squeeze_bits, squeeze_median, data)
    norms = normalisation(mean, std, data)
    clf = load_model_for(model, data, dev, weights, model_arg, norms)
    x, y = datasets.load(data, split, n=n)
    calibration = None
    if spec is not None:
        clf, calibration = with_detector(clf, spec, data, split, x.shape[0])
    loader = None if spec is not None else file_loader(model, data, weights, model_arg, norms)
    executor = executor_for(ray, shards, gpus_per_worker, loader)
    if suite in suite_names():
        largest = kind.with_eps(max(epsilons, default=0.0))
        fmn = ("fmn", FMN(steps=100, seed=seed))  # the sweep's minimum-norm pass
        repeats = len(epsilons) if refine else 0
        suite_cost(suite, clf, x, y, largest, seed, batch_size=batch_size, repeats=repeats, extra=[fmn])
    result = sweep(
        clf,
        x,
        y,
        kind,
        epsilons,
        suite=suite,
        refine=refine,
        seed=seed,
        batch_size=batch_size,
        dataset=data,
        progress=bars,
        executor=executor,
        precision=precision,
    )
    curve = result.sweep
    assert curve is not None  # ft.sweep always records its curve
    table = Table(title=f"{model} on {data} ({result.n_samples} samples, {curve.method})")
    table.add_column(f"{norm} eps", justify="right")
    table.add_column("robust accuracy", justify="right", style="bold")
    table.add_column("time", justify="right")
    table.add_row("0 (clean)", pct(result.clean_accuracy), "")
    for value, acc, t in zip(curve.epsilons, curve.robust_accuracy, curve.time_s, strict=True):
        table.add_row(f"{value:g}", pct(acc), f"{t:.1f}s")
    console.print(table)
    if calibration is not None:
        console.print(detector_line(result, calibration), highlight=False, markup=False, soft_wrap=True)
    if executor is not None:
        console.print(scale_line(result), highlight=False, markup=False, soft_wrap=True)
    print_diagnostics(result)
    if out is not None:
        result.save(str(out))
        console.print(f"wrote {out}")
