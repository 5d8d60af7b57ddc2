"""Helpers shared by CLI commands: threads, devices, model loading with user-facing errors."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import torch
import typer

from fortify import data as datasets
from fortify import zoo
from fortify._files import check_writable, check_writable_folder
from fortify.model import Classifier
from fortify.threat import L0, Threat, make_threat
from fortify.types import Bounds, FortifyError

# Options that several commands share, declared once.
ModelFile = Annotated[Path, typer.Option(help="a model.safetensors written by fortify")]
DatasetName = Annotated[str, typer.Option(help=f"dataset: {', '.join(sorted(datasets.DATASETS))}")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for torch")]


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


def load_model_for(path: Path, dataset: str, device: torch.device) -> Classifier:
    """Load a fortify model file and check that it fits ``dataset`` (input shape and class count)."""
    clf = zoo.load(path, device=device)
    meta, info = clf.metadata, datasets.info(dataset)
    if tuple(meta["input_shape"]) != tuple(info.shape) or meta["num_classes"] != info.num_classes:
        raise FortifyError(
            f"{path} takes inputs {tuple(meta['input_shape'])} with {meta['num_classes']} classes, but "
            f"{dataset} has inputs {tuple(info.shape)} with {info.num_classes} classes"
        )
    return clf


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
