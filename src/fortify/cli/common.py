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
from torch import nn

from fortify import data as datasets
from fortify import zoo
from fortify._files import check_writable, check_writable_folder
from fortify.data.tables import csv_name, split_name
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
        "of PNG/JPEG per class), npz:FILE (arrays x, y) or csv:FILE (a header row, features in [0, 1], "
        "the labels in the --label column)"
    ),
]
Label = Annotated[
    str | None,
    typer.Option(
        help="the label column of --data csv:FILE (default: the column named 'label'); whole numbers are "
        "class ids, other values class names numbered in sorted order"
    ),
]
Mean = Annotated[
    str | None,
    typer.Option(
        help="the model's input normalisation (x - mean) / std, applied inside the classifier: one value, "
        "or one per channel (per feature for csv: data), comma-separated; recorded in the Result "
        "(default: none, or what the model file records)"
    ),
]
Std = Annotated[str | None, typer.Option(help="the std of that normalisation, as --mean (values > 0)")]
MLFLOW_STORE_HELP = (
    "the store is $MLFLOW_TRACKING_URI when set, else runs/mlflow/mlflow.db under the current folder: "
    "one store for train and evaluate"
)
"""Where ``--mlflow`` writes (``fortify.report.mlflow.store_uri`` with its default run folder)."""
TrustCode = Annotated[
    bool,
    typer.Option(
        "--trust-code",
        help="let a guard bundle rebuild a model from your own code (its import path), which runs that code",
    ),
]
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
Precision = Annotated[
    str,
    typer.Option(
        help="arithmetic of the attack iterations: fp32, bf16 (about 2x faster on CPUs with bfloat16 "
        "instructions; FGSM, PGD, APGD) or auto; verdicts and accuracies are always float32",
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


def data_name(data: str, label: str | None) -> str:
    """The dataset ``--data`` and ``--label`` name together: ``csv:FILE?label=COLUMN`` for a table."""
    if label is None:
        return data
    if not data.startswith("csv:"):
        raise FortifyError(f"--label names the label column of --data csv:FILE, not of {data}")
    file, named = split_name(data.removeprefix("csv:"))
    if named is not None:
        raise FortifyError("name the label column once: --label COLUMN or --data csv:FILE?label=COLUMN")
    return csv_name(file, label)


Normalisation = tuple[list[float] | None, list[float] | None]


def normalisation(mean: str | None, std: str | None, dataset: str) -> Normalisation:
    """``--mean`` / ``--std`` as numbers, checked against ``dataset``'s channels (features for a table):
    one value or one per channel, finite, std > 0."""
    channels = datasets.info(dataset).shape[0]
    out: list[list[float] | None] = []
    for option, text in (("--mean", mean), ("--std", std)):
        if text is None:
            out.append(None)
            continue
        values = parse_numbers(text, option)
        if len(values) not in (1, channels):
            raise FortifyError(
                f"{option} has {len(values)} values; {dataset} inputs have {channels} channel(s): give 1 or "
                f"{channels}"
            )
        if not all(math.isfinite(v) for v in values) or (option == "--std" and min(values) <= 0):
            raise FortifyError(f"{option} values must be finite{' and > 0' if option == '--std' else ''}")
        out.append(values)
    return out[0], out[1]


def _normalised(clf: Classifier, name: str, norm: Normalisation | None) -> Classifier:
    """``clf`` with ``--mean/--std`` set; refused if the model already records another normalisation."""
    if norm is None or norm == (None, None):
        return clf
    for stat, given in zip(("mean", "std"), norm, strict=True):
        if given is None:
            continue
        held = getattr(clf, stat)
        if held is not None and held.tolist() != torch.tensor(given, dtype=torch.float32).tolist():
            values, own = ",".join(f"{v:g}" for v in given), [float(f"{v:.8g}") for v in held.tolist()]
            raise FortifyError(
                f"{name} records its own {stat} {own}; --{stat} {values} would change the model: "
                f"leave --{stat} out"
            )
        clf.register_buffer(
            stat, torch.tensor(given, dtype=torch.float32, device=clf.device), persistent=False
        )
    return clf


def load_model_for(
    path: Path,
    dataset: str,
    device: torch.device,
    weights: Path | None = None,
    model_args: list[str] | None = None,
    norm: Normalisation | None = None,
) -> Classifier:
    """The model ``--model`` names, checked to fit ``dataset`` (input shape and class count).

    ``path`` is a fortify file, an ``.onnx`` file (converted to PyTorch), or an import path
    ``pkg.module:factory`` built with ``model_args`` and loaded with ``weights``; only the import
    path, typed by the user, runs the user's code. The classifier's ``identity`` names the
    architecture (zoo name, import path or ``onnx:FILE``), the weights file read and its SHA-256, and
    the training run the file records, so every Result made with it says which model it is about.
    ``norm`` (``normalisation(--mean, --std)``) is set inside the classifier; a model file that records
    a different one refuses it.
    """
    text, info = str(path), datasets.info(dataset)
    if is_import_path(text) and not path.exists():
        return _from_factory(text, weights, model_args or [], dataset, device, norm)
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
        _check_outputs(_normalised(clf, text, norm), text, dataset, device)
        return clf
    clf = zoo.load(path, device=device)
    meta = clf.metadata
    if tuple(meta["input_shape"]) != tuple(info.shape) or meta["num_classes"] != info.num_classes:
        raise FortifyError(
            f"{path} takes inputs {tuple(meta['input_shape'])} with {meta['num_classes']} classes, but "
            f"{dataset} has inputs {tuple(info.shape)} with {info.num_classes} classes"
        )
    return _normalised(clf, text, norm)


def _from_factory(
    factory: str,
    weights: Path | None,
    model_args: list[str],
    dataset: str,
    device: torch.device,
    norm: Normalisation | None,
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
    _check_outputs(_normalised(clf, str(weights), norm), factory, dataset, device)
    return clf


def fresh_module(arch: str, dataset: str, model_args: list[str] | None = None) -> nn.Module:
    """A new, untrained module for ``dataset``: a zoo architecture, or the user's ``pkg.module:factory``
    called with ``model_args`` (typing the import path is the consent to run it)."""
    if is_import_path(arch):
        return build(arch, parse_model_args(model_args or []))
    if model_args:
        raise FortifyError("--model-arg goes with an architecture given as pkg.module:factory")
    info = datasets.info(dataset)
    return zoo.create(arch, info.shape, info.num_classes)


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
