"""Robust models that ship with fortify: a baseline without hours of training.

Each shipped model is three things in ``fortify/zoo/weights/``: its safetensors file (weights and the
usual fortify metadata), the evaluation ``Result`` that measured it, and an entry in ``index.json``
naming both with the SHA-256 of the weights. ``pretrained(name)`` checks the digest before it loads
the file (a damaged or swapped file is refused) and returns a ``Classifier``; ``available()`` lists
what ships, with the clean and robust accuracy read from each model's own Result (never typed in).

>>> clf = ft.zoo.pretrained("fmnist-linf-0.1")
>>> [(m.name, m.clean_accuracy, m.robust_accuracy) for m in ft.zoo.available()]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from fortify._files import file_sha256, read_limited
from fortify._untrusted import load_json
from fortify.model import Classifier
from fortify.result import Result
from fortify.types import FortifyError
from fortify.zoo.io import load

INDEX = "index.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{0,63}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,127}$")


def weights_folder() -> Path:
    """The folder the shipped models are in (inside the installed package)."""
    return Path(str(resources.files("fortify.zoo") / "weights"))


@dataclass(frozen=True)
class Pretrained:
    """One shipped model: ``name``, its files, what it is, and its measured figures (from ``result``)."""

    name: str
    weights: Path
    result: Path
    sha256: str
    description: str
    dataset: str
    threat: str | None
    clean_accuracy: float | None
    robust_accuracy: float | None
    suite: str | None
    n_samples: int | None


def available(folder: Path | None = None) -> list[Pretrained]:
    """Every model that ships (in ``folder``, by default the package's), sorted by name."""
    folder = weights_folder() if folder is None else folder
    index = folder / INDEX
    if not index.is_file():
        return []
    what = f"pretrained index {index}"
    entries = load_json(read_limited(index, "pretrained index", 1 << 20), what, max_bytes=1 << 20)
    if not isinstance(entries, dict):
        raise FortifyError(f"{what} must map model names to entries")
    return [_entry(folder, name, entry, what) for name, entry in sorted(entries.items())]


def pretrained(
    name: str, *, device: str | torch.device | None = None, folder: Path | None = None
) -> Classifier:
    """The shipped model ``name`` as a ``Classifier`` (weights checked against the index's SHA-256).
    Its ``metadata["pretrained"]`` names the model and the Result file that measured it."""
    models = {m.name: m for m in available(folder)}
    if name not in models:
        known = ", ".join(models) or "none in this installation"
        raise FortifyError(f"no pretrained model {name!r}; shipped: {known}")
    model = models[name]
    if not model.weights.is_file():
        raise FortifyError(f"pretrained model {name!r}: its weights {model.weights.name} are missing")
    if file_sha256(model.weights) != model.sha256:
        raise FortifyError(
            f"pretrained model {name!r}: {model.weights.name} does not match the SHA-256 in {INDEX}; "
            "reinstall fortify"
        )
    clf = load(model.weights, device=device)
    clf.metadata = {**clf.metadata, "pretrained": {"name": name, "result": str(model.result)}}
    return clf


def _entry(folder: Path, name: Any, entry: Any, what: str) -> Pretrained:
    if not isinstance(name, str) or not _NAME.match(name) or not isinstance(entry, dict):
        raise FortifyError(f"{what}: bad entry {name!r}")
    files = {key: entry.get(key) for key in ("weights", "result")}
    for key, file in files.items():
        if not isinstance(file, str) or not _FILE.match(file):
            raise FortifyError(f"{what}: entry {name!r} needs a plain file name under {key!r}")
    digest, description = entry.get("sha256"), entry.get("description", "")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise FortifyError(f"{what}: entry {name!r} needs the weights' hex SHA-256 under 'sha256'")
    if not isinstance(description, str):
        raise FortifyError(f"{what}: entry {name!r}: description must be text")
    result_path = folder / str(files["result"])
    result = Result.load(str(result_path))
    threat = f"{result.threat.norm} {result.threat.eps:g}" if result.threat is not None else None
    return Pretrained(
        name=name,
        weights=folder / str(files["weights"]),
        result=result_path,
        sha256=digest,
        description=description,
        dataset=result.dataset or "",
        threat=threat,
        clean_accuracy=result.clean_accuracy,
        robust_accuracy=result.robust_accuracy,
        suite=result.suite,
        n_samples=result.n_samples,
    )
