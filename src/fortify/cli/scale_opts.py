"""`--ray [ADDRESS]`, `--shards N` and `--gpus-per-worker`: the options that run `evaluate`, `sweep`
and `certify` sharded, on a Ray cluster or (``--shards`` alone) here, shard by shard."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from fortify.cli.common import Normalisation, load_model_for
from fortify.types import Executor, FortifyError

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="[ADDRESS]",
        help="shard the samples over Ray workers that each load the model once: --ray alone starts a "
        "local Ray for the job (or joins RAY_ADDRESS when set); --ray ray://HOST:10001 or "
        "--ray HOST:6379 joins that cluster (pip install 'fortify[ray]')",
    ),
]
Shards = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="cut the samples into this many shards (default with --ray: one per worker); the Result "
        "depends on the shards only, so --shards K without --ray reproduces a --ray --shards K run here",
    ),
]
Nproc = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="train data-parallel in N processes on this machine (torchrun; gloo on CPU, NCCL on GPU), "
        "with --batch-size the global batch; rank 0 writes the files",
    ),
]
GpusPerWorker = Annotated[
    float, typer.Option(min=0.0, help="GPUs each Ray worker takes (its model is moved to the GPU)")
]


def executor_for(
    ray: str | None,
    shards: int | None,
    gpus_per_worker: float,
    loader: Any = None,
) -> Executor | None:
    """The executor the options ask for: ``Ray`` with ``--ray``, ``InProcess`` with ``--shards``
    alone, ``None`` (one piece, here) without either. ``loader`` is what Ray workers call to load
    their model (``model_loader``); ``None`` ships the driver's classifier to them."""
    from fortify.scale import InProcess, Ray

    if ray is None:
        if gpus_per_worker:
            raise FortifyError("--gpus-per-worker goes with --ray")
        return InProcess(shards) if shards is not None else None
    address = None if ray == "local" else ray
    return Ray(address, shards=shards, gpus_per_worker=gpus_per_worker, model_loader=loader)


def file_loader(
    path: Path,
    dataset: str,
    weights: Path | None,
    model_args: list[str] | None,
    norm: Normalisation | None,
) -> Any:
    """A picklable loader of ``--model`` for Ray workers: the same checks as here, on the worker's CPU
    (a worker with a GPU moves it there). Paths are made absolute, so workers on this machine find the
    file whatever their working folder; workers elsewhere need it at the same path."""
    absolute = path.resolve() if path.exists() else path
    weights = weights.resolve() if weights is not None and weights.exists() else weights
    return functools.partial(
        load_model_for, absolute, dataset, torch.device("cpu"), weights, model_args, norm
    )


def scale_line(result: Any) -> str:
    """One line on how a sharded job ran: shards, workers, retried shards, wall vs worker time."""
    scale = result.sections.get("scale", {})
    shards = scale.get("shards", [])
    where = "here" if scale.get("executor") == "in-process" else f"on Ray ({scale.get('address', 'local')})"
    retries = scale.get("retries", [])
    again = f", {len(retries)} shard(s) run again after their worker died" if retries else ""
    timing = result.timing
    worker = f", {timing['worker_s']:.1f}s of worker time" if "worker_s" in timing else ""
    return f"{len(shards)} shard(s) {where} on {scale.get('workers', 1)} worker(s){again}{worker}"


def launch_training(nproc: int, device: str) -> int:
    """``fortify train`` (this command's arguments without ``--nproc``) in ``nproc`` processes;
    ``--threads`` defaults to this machine's cores shared between them."""
    import os

    from fortify.cli.main import ARGS
    from fortify.scale.launch import check_nproc, launch, without_option

    auto = "cuda" if torch.cuda.is_available() else "cpu"
    check_nproc(nproc, torch.device(auto if device == "auto" else device.split(":")[0]))
    args = without_option(ARGS, "--nproc")
    if not any(a == "--threads" or a.startswith("--threads=") for a in args):
        args += ["--threads", str(max(1, (os.cpu_count() or 1) // nproc))]
    return launch(nproc, args)


def rank_outputs(out: Path, progress: str, quiet: bool, mlflow: bool) -> tuple[Path, str, bool, bool]:
    """Inside a torchrun group: rank 0 keeps ``out`` and its output; every other rank trains alongside
    into a throw-away folder, silently, so that only rank 0 writes the run's files."""
    import atexit
    import shutil
    import tempfile

    import torch.distributed as dist

    if dist.get_rank() == 0:
        return out, progress, quiet, mlflow
    scratch = Path(tempfile.mkdtemp(prefix="fortify-rank-"))
    atexit.register(shutil.rmtree, scratch, True)
    return scratch / "out", "none", True, False
