"""Helpers shared by CLI commands: threads, devices, model loading with user-facing errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import torch
import typer

from fortify import data as datasets
from fortify import zoo
from fortify.model import Classifier
from fortify.types import FortifyError

# Options that several commands share, declared once.
ModelFile = Annotated[Path, typer.Option(help="a model.safetensors written by fortify")]
DatasetName = Annotated[str, typer.Option(help=f"dataset: {', '.join(sorted(datasets.DATASETS))}")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1 ...")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for torch")]


def setup_torch(threads: int | None, device: str) -> torch.device:
    if threads is not None:
        if threads < 1:
            raise FortifyError(f"--threads must be >= 1, got {threads}")
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


def parse_numbers(text: str, option: str) -> list[float]:
    """``"0.01,0.03,0.1"`` -> ``[0.01, 0.03, 0.1]``; a bad number is a user error naming ``option``."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError as exc:
            raise FortifyError(f"{option} must be comma-separated numbers, got {part.strip()!r}") from exc
    return values
