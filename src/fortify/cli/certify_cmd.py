"""`fortify certify`: certified L2 accuracy of a saved model under randomized smoothing, as a Result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fortify import data as datasets
from fortify.certify import DEFAULT_RADII, Smooth, certified_accuracy
from fortify.cli.app import app
from fortify.cli.common import (
    DatasetName,
    Device,
    Label,
    Mean,
    ModelArgs,
    ModelFile,
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
from fortify.cli.estimate import certify_cost
from fortify.cli.progress import ProgressMode, Quiet, bars, configure
from fortify.cli.render import console, pct
from fortify.cli.scale_opts import GpusPerWorker, RayAddress, Shards, executor_for, file_loader, scale_line
from fortify.result import Result


def curve_table(result: Result, title: str) -> Table:
    """Certified accuracy at each radius, one row per radius, from ``sections["certification"]``."""
    section = result.sections["certification"]
    table = Table(title=title)
    table.add_column("L2 radius", justify="right")
    table.add_column("certified accuracy", justify="right", style="bold")
    for radius, accuracy in zip(section["radii"], section["certified_accuracy"], strict=True):
        table.add_row(f"{radius:g}", pct(accuracy))
    return table


@app.command("certify")
def certify_command(
    model: ModelFile,
    weights: Weights = None,
    model_arg: ModelArgs = None,
    data: DatasetName = "fashion-mnist",
    label: Label = None,
    mean: Mean = None,
    std: Std = None,
    sigma: Annotated[float, typer.Option(help="Gaussian noise level of the smoothing")] = 0.25,
    n: Annotated[int, typer.Option(min=1, help="noise samples per image to estimate pA")] = 10_000,
    n0: Annotated[int, typer.Option(min=1, help="noise samples per image to select the class")] = 100,
    alpha: Annotated[float, typer.Option(help="failure probability of each certificate")] = 0.001,
    n_samples: Annotated[int, typer.Option(min=1, help="number of test images to certify")] = 500,
    radii: Annotated[str, typer.Option(help="L2 radii of the curve, comma-separated")] = ",".join(
        f"{r:g}" for r in DEFAULT_RADII
    ),
    split: Split = "test",
    seed: Seed = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="noisy copies per forward pass")] = 1000,
    out: Annotated[Path | None, typer.Option(help="write the Result JSON here")] = None,
    device: Device = "auto",
    threads: Threads = None,
    progress: ProgressMode = "auto",
    quiet: Quiet = False,
    ray: RayAddress = None,
    shards: Shards = None,
    gpus_per_worker: GpusPerWorker = 0.0,
) -> None:
    """Certify test images with randomized smoothing (Cohen et al. 2019) and print the curve."""
    check_outputs(out=out)
    dev = setup_torch(threads, device)
    configure(progress, quiet)
    wanted = parse_numbers(radii, "--radii")
    data = data_name(data, label)
    norms = normalisation(mean, std, data)
    clf = load_model_for(model, data, dev, weights, model_arg, norms)
    executor = executor_for(ray, shards, gpus_per_worker, file_loader(model, data, weights, model_arg, norms))
    x, y = datasets.load(data, split, n=n_samples)
    certify_cost(clf, x, n0, n, batch_size)
    smooth = Smooth(clf, sigma, batch_size=batch_size, seed=seed)
    result = certified_accuracy(
        smooth, x, y, radii=wanted, n0=n0, n=n, alpha=alpha, dataset=data, progress=bars, executor=executor
    )
    section = result.sections["certification"]
    title = f"{data}: {result.n_samples} images, sigma {sigma:g}, n {n:,}, alpha {alpha:g}"
    console.print(curve_table(result, title))
    console.print(
        f"abstained on {pct(section['abstain_rate'])}; the largest radius n = {n:,} samples can certify is "
        f"{section['max_radius']:.3f}; {result.timing['total_s']:.1f}s "
        f"({result.timing['noise_samples_per_s']:,.0f} noisy samples/s)"
    )
    if executor is not None:
        console.print(scale_line(result), highlight=False, markup=False, soft_wrap=True)
    if out is not None:
        result.save(str(out))
        console.print(f"wrote {out}")
