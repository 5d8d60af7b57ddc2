"""Helpers shared by CLI commands: threads, devices, model loading with user-facing errors."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import torch
import typer
from safetensors import SafetensorError
from safetensors.torch import load_file

from fortify import data as datasets
from fortify import zoo
from fortify._files import check_writable, check_writable_folder
from fortify.model import Classifier
from fortify.threat import L0, Threat, make_threat
from fortify.types import Bounds, FortifyError
from fortify.zoo.factory import build, is_import_path, parse_model_args
from fortify.zoo.io import file_identity

# Options that several commands share, declared once.
MODEL_HELP = (
    "a model.safetensors written by fortify, an .onnx file, or your own code as pkg.module:factory "
    "(with --weights; typing the import path is consent to run that code)"
)
ModelFile = Annotated[Path, typer.Option(help=MODEL_HELP)]
Weights = Annotated[
    Path | None,
    typer.Option(help="the state dict (a .safetensors file) for a --model given as pkg.module:factory"),
]
ModelArgs = Annotated[
    list[str] | None,
    typer.Option(
        "--model-arg", help="name=value passed to a --model given as pkg.module:factory; repeatable"
    ),
]
DatasetName = Annotated[
    str,
    typer.Option(
        help=f"dataset: {', '.join(sorted(datasets.DATASETS))}, or your own folder:PATH (one sub-folder "
        "of PNG/JPEG per class) or npz:FILE (arrays x, y)"
    ),
]
MLFLOW_STORE_HELP = (
    "the store is $MLFLOW_TRACKING_URI when set, else runs/mlflow/mlflow.db under the current folder: "
    "one store for train and evaluate"
)
"""Where ``--mlflow`` writes (``fortify.report.mlflow.store_uri`` with its default run folder)."""
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")]
Threads = Annotated[
    int | None, typer.Option(help="CPU threads for torch (default: every CPU of this machine)")
]
Split = Annotated[
    str,
    typer.Option(
        help="which part of --data to use: test or train (folder:PATH and npz:FILE data without their own "
        "splits: every fifth sample in sorted order is test, the rest train)"
    ),
]
Seed = Annotated[
    int,
    typer.Option(
        min=0,
        help="seed of every random choice of the run (random starts and restarts, noise, sampling); "
        "recorded in the Result, so a run can be repeated",
    ),
]
BatchSize = Annotated[int, typer.Option(min=1, help="inputs per forward pass (memory vs speed)")]


def setup_torch(threads: int | None, device: str) -> torch.device:
    if threads is not None:
        cores = os.cpu_count() or 1
        if not 1 <= threads <= cores:
            raise FortifyError(f"--threads must be in [1, {cores}] (this machine's CPUs), got {threads}")
        torch.set_num_threads(threads)
    else:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FortifyError(f"--device {device}: CUDA is not available on this machine")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise FortifyError(f"--device {device!r} is not a valid torch device") from exc


def load_model_for(
    path: Path,
    dataset: str,
    device: torch.device,
    weights: Path | None = None,
    model_args: list[str] | None = None,
) -> Classifier:
    """The model ``--model`` names, checked to fit ``dataset`` (input shape and class count).

    ``path`` is a fortify file, an ``.onnx`` file (converted to PyTorch), or an import path
    ``pkg.module:factory`` built with ``model_args`` and loaded with ``weights``; only the import
    path, typed by the user, runs the user's code. The classifier's ``identity`` names the
    architecture (zoo name, import path or ``onnx:FILE``), the weights file read and its SHA-256, and
    the training run the file records, so every Result made with it says which model it is about.
    """
    text, info = str(path), datasets.info(dataset)
    if is_import_path(text) and not path.exists():
        return _from_factory(text, weights, model_args or [], dataset, device)
    if weights is not None or model_args:
        raise FortifyError("--weights and --model-arg go with --model pkg.module:factory, not a model file")
    if path.suffix.lower() == ".onnx":
        from fortify.model.adapters.onnx import classifier_from_onnx

        clf = classifier_from_onnx(path).to(device)
        clf.metadata = {
            "arch": f"onnx:{path.name}",
            "input_shape": list(info.shape),
            "num_classes": info.num_classes,
        }
        clf.identity = file_identity(f"onnx:{path.name}", "onnx", clf.module, path)
        _check_outputs(clf, text, dataset, device)
        return clf
    clf = zoo.load(path, device=device)
    meta = clf.metadata
    if tuple(meta["input_shape"]) != tuple(info.shape) or meta["num_classes"] != info.num_classes:
        raise FortifyError(
            f"{path} takes inputs {tuple(meta['input_shape'])} with {meta['num_classes']} classes, but "
            f"{dataset} has inputs {tuple(info.shape)} with {info.num_classes} classes"
        )
    return clf


def _from_factory(
    factory: str, weights: Path | None, model_args: list[str], dataset: str, device: torch.device
) -> Classifier:
    if weights is None:
        raise FortifyError(f"--model {factory} needs --weights FILE.safetensors (its state dict)")
    kwargs = parse_model_args(model_args)
    module = build(factory, kwargs)
    meta: dict[str, object] = {}
    try:
        meta = zoo.read_metadata(weights)
    except FortifyError:
        meta = {}  # a plain safetensors state dict carries no fortify metadata
    try:
        state = load_file(str(_plain_safetensors(weights)), device=str(device))
        module.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FortifyError(f"{weights}: weights do not load into {factory}: {first}") from exc
    info = datasets.info(dataset)
    clf = Classifier(
        module.to(device),
        num_classes=info.num_classes,
        bounds=tuple(meta.get("bounds", (0.0, 1.0))),  # type: ignore[arg-type]
        mean=meta.get("mean"),  # type: ignore[arg-type]
        std=meta.get("std"),  # type: ignore[arg-type]
    )
    clf.metadata = {
        **meta,
        "arch": factory,
        "factory": factory,
        "factory_kwargs": kwargs,
        "input_shape": list(info.shape),
        "num_classes": info.num_classes,
    }
    run = meta.get("training_run")
    clf.identity = file_identity(factory, "factory", module, weights, run if isinstance(run, dict) else None)
    _check_outputs(clf, factory, dataset, device)
    return clf


def _plain_safetensors(path: Path) -> Path:
    if not path.is_file():
        raise FortifyError(f"--weights {path} does not exist")
    if path.suffix.lower() in {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}:
        raise FortifyError(
            f"--weights {path} looks like a pickle checkpoint; fortify never unpickles. Convert it once: "
            "safetensors.torch.save_file(torch.load(path, weights_only=True), 'weights.safetensors')"
        )
    return path


def _check_outputs(clf: Classifier, name: str, dataset: str, device: torch.device) -> None:
    """One forward pass on a zero input: the model must return logits ``(1, num_classes)`` for ``dataset``."""
    info = datasets.info(dataset)
    probe = torch.zeros((1, *info.shape), device=device)
    try:
        with torch.no_grad():
            out = clf(probe)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FortifyError(f"{name} cannot take {dataset} inputs {tuple(info.shape)}: {first}") from exc
    if tuple(out.shape) != (1, info.num_classes):
        raise FortifyError(
            f"{name} returns outputs of shape {tuple(out.shape)} for one {dataset} input; expected "
            f"(1, {info.num_classes}) logits"
        )


def check_outputs(**outputs: Path | None) -> None:
    """Before any work: every output file given (``--out``, ``--report``...) can be written, else exit 2.

    Keyword names are the option names (``junit`` -> ``--junit``); ``None`` means the option is unset.
    """
    for name, path in outputs.items():
        if path is not None:
            check_writable(path, f"--{name.replace('_', '-')}")


def check_output_folder(option: str, folder: Path) -> None:
    """Before any work: ``folder`` (a run folder such as ``train --out``) exists or can be made, and
    is writable."""
    check_writable_folder(folder, option)


def threat_for(norm: str, eps: float, bounds: Bounds, shape: tuple[int, ...]) -> Threat:
    """A threat checked against the input space: an eps that no perturbation could need is refused."""
    if norm.lower() == "l0":
        return L0(eps)
    threat = make_threat(norm, eps)
    span = bounds[1] - bounds[0]
    largest = span if threat.norm == "linf" else span * math.sqrt(math.prod(shape))
    if eps > largest:
        raise FortifyError(
            f"eps {eps:g} is larger than any {threat.norm} distance inside the bounds [{bounds[0]:g}, "
            f"{bounds[1]:g}] (at most {largest:g}); did you mean {eps / 255:g} (eps/255)?"
        )
    return threat


def parse_numbers(text: str, option: str) -> list[float]:
    """``"0.01,0.03,0.1"`` -> ``[0.01, 0.03, 0.1]``; a bad number is a user error naming ``option``."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError as exc:
            raise FortifyError(f"{option} must be comma-separated numbers, got {part.strip()!r}") from exc
    return values
