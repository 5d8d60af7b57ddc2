"""Resumable training: the whole state of a training run in one file, written atomically.

A checkpoint holds everything the training loop needs to continue exactly where it stopped: the
model's weights and buffers, the optimizer's state, the random generators (torch's global generator,
the CUDA one on a GPU, the loop's method generator and the data shuffle's), the guard against
catastrophic overfitting (its last good weights and optimizer state, its reference check, the
recoveries spent and the method's shrunk step), the best epoch kept for ``keep_best`` / early stopping,
the history so far and where in the run it stopped (epoch, and the step within it when a signal
stopped the run mid-epoch). The learning-rate and epsilon schedules are functions of the progress, so
they need no state of their own.

On disk: one safetensors file (``checkpoint.safetensors`` in the run's checkpoint folder) whose tensors
are the state above and whose header metadata holds the rest as JSON under ``fortify_checkpoint``.
One file, written with ``atomic_write_bytes``: a crash or a kill at any moment leaves the previous
checkpoint or the new one. Reading treats the file as untrusted: safetensors (no pickle), a size
limit, JSON parsed with limits, every expected tensor present with its dtype, settings compared with
the run that resumes it.

Resuming gives bit-identical weights to an uninterrupted run with the same seed on the same machine
(same threads, same device); with a ``DataLoader`` as data, only when the loader's order does not
depend on how many epochs it has already served (its own generator restarts with the process).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from fortify._files import atomic_write_bytes
from fortify._untrusted import load_json
from fortify.types import FortifyError

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "fortify-training-checkpoint/1"
MAX_BYTES = 4 << 30
_META_KEY = "fortify_checkpoint"


@dataclass
class LoopState:
    """The training loop's state at a step boundary.

    ``tensors``: name -> tensor (weights under ``model/``, optimizer tensors under ``optim/``, RNG
    states under ``rng/``, the overfitting guard's snapshot under ``co_model/`` and ``co_optim/``, the
    best epoch's weights under ``best/``). ``info``: JSON-ready rest (see ``capture`` in
    ``fortify.training.train``): ``config``, ``epoch`` (epochs finished), ``step`` (steps finished in
    the current epoch; 0 at an epoch boundary), ``finished``, the history, optimizer structure...
    """

    tensors: dict[str, Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(folder: str | Path) -> Path:
    return Path(folder) / CHECKPOINT_FILE


def save_state(folder: str | Path, state: LoopState) -> Path:
    """Write ``state`` to ``folder/checkpoint.safetensors`` atomically; returns the file."""
    from safetensors.torch import save as save_tensors

    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.tensors.items()}
    header = json.dumps({"format": FORMAT, **state.info}, allow_nan=False)
    return atomic_write_bytes(checkpoint_path(folder), save_tensors(tensors, metadata={_META_KEY: header}))


def load_state(folder: str | Path) -> LoopState:
    """The state in ``folder/checkpoint.safetensors``; ``FortifyError`` (one line) when it is missing,
    too large, not a fortify checkpoint or damaged."""
    from safetensors import SafetensorError, safe_open

    path = checkpoint_path(folder)
    what = f"training checkpoint {path}"
    if not path.is_file():
        raise FortifyError(f"no training checkpoint in {Path(folder)} (expected {CHECKPOINT_FILE})")
    if path.stat().st_size > MAX_BYTES:
        raise FortifyError(f"{what} is larger than {MAX_BYTES} bytes; refusing to read it")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FortifyError(f"{what} is not a readable safetensors file: {first}") from exc
    if _META_KEY not in meta:
        raise FortifyError(f"{what} is not a fortify training checkpoint (no {_META_KEY} header)")
    info = load_json(meta[_META_KEY], what, max_bytes=64 << 20)
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        raise FortifyError(f"{what}: unknown format {found!r} (expected {FORMAT})")
    return LoopState(tensors=tensors, info=info)


def flatten_optimizer(state: dict[str, Any], prefix: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimizer ``state_dict`` as (tensors under ``prefix/PARAM/NAME``, JSON-ready structure)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}/{pid}/{name}"] = value
            else:
                scalars.setdefault(str(pid), {})[name] = value
    groups = []
    for group in state["param_groups"]:
        groups.append({k: list(v) if isinstance(v, tuple) else v for k, v in group.items()})
    return tensors, {"scalars": scalars, "param_groups": groups}


def unflatten_optimizer(tensors: dict[str, Tensor], structure: Any, prefix: str, what: str) -> dict[str, Any]:
    """The optimizer ``state_dict`` that ``flatten_optimizer`` took apart, checked for shape."""
    if not isinstance(structure, dict) or not isinstance(structure.get("param_groups"), list):
        raise FortifyError(f"{what}: the optimizer state is malformed")
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        parts = key.split("/")
        if parts[0] != prefix:
            continue
        if len(parts) != 3 or not parts[1].isdigit():
            raise FortifyError(f"{what}: unexpected optimizer tensor {key!r}")
        state.setdefault(int(parts[1]), {})[parts[2]] = value
    scalars = structure.get("scalars", {})
    if not isinstance(scalars, dict):
        raise FortifyError(f"{what}: the optimizer state is malformed")
    for pid, values in scalars.items():
        if not str(pid).isdigit() or not isinstance(values, dict):
            raise FortifyError(f"{what}: the optimizer state is malformed")
        state.setdefault(int(pid), {}).update(values)
    groups = []
    for group in structure["param_groups"]:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise FortifyError(f"{what}: the optimizer state is malformed")
        groups.append({k: tuple(v) if k == "betas" and isinstance(v, list) else v for k, v in group.items()})
    return {"state": state, "param_groups": groups}


def take(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors under ``prefix/``, with the prefix removed."""
    start = prefix + "/"
    return {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}


def under(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """``tensors`` with their names put under ``prefix/``."""
    return {f"{prefix}/{k}": v for k, v in tensors.items()}
