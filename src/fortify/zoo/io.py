"""Safe model files: weights in safetensors, metadata as JSON in the same file's header.

Nothing is ever unpickled: a pickle-based file (``.pt``/``.pth``/``.pkl``/``.ckpt`` or a pickle / zip
payload) is refused with an explanation, because loading it could execute arbitrary code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
from torch import nn

from fortify._files import atomic_write_bytes
from fortify._version import __version__
from fortify.model import Classifier
from fortify.types import FortifyError, UnsafeFileError
from fortify.zoo.architectures import SPEC_ATTRIBUTE, create

META_KEY = "fortify"
_PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


def save(model: nn.Module, path: str | Path, **meta: Any) -> Path:
    """Write ``model`` (a zoo module or a ``Classifier`` around one) to ``path`` as safetensors.

    ``meta`` adds JSON-ready metadata (dataset, training method, metrics...). Architecture, input shape,
    class count, bounds, normalisation and the fortify version are recorded automatically.
    """
    module, clf_meta = _unwrap(model)
    spec = getattr(module, SPEC_ATTRIBUTE, None)
    if spec is None:
        raise FortifyError(
            "only models built with ft.zoo.create(...) can be saved by name; for other modules save "
            "module.state_dict() with safetensors yourself"
        )
    record = {**spec, **clf_meta, **meta, "fortify_version": __version__}
    try:
        header = json.dumps(record)
    except TypeError as exc:
        raise FortifyError(f"metadata must be JSON-serialisable: {exc}") from exc
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    return atomic_write_bytes(path, save_tensors(tensors, metadata={META_KEY: header}))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata stored in a fortify safetensors file."""
    from safetensors import safe_open

    source = _checked_path(path)
    try:
        with safe_open(str(source), framework="pt") as handle:
            header = (handle.metadata() or {}).get(META_KEY)
    except (SafetensorError, OSError) as exc:
        raise FortifyError(f"{source} is not a readable safetensors file: {exc}") from exc
    if header is None:
        raise FortifyError(f"{source} has no fortify metadata; was it written by ft.zoo.save?")
    return json.loads(header)


def load(path: str | Path, *, device: str | torch.device | None = None) -> Classifier:
    """Rebuild the model saved at ``path`` as a ``Classifier``; its ``metadata`` holds the file's JSON."""
    meta = read_metadata(path)
    module = create(meta["arch"], tuple(meta["input_shape"]), meta["num_classes"])
    try:
        state = load_file(str(path), device=str(device) if device is not None else "cpu")
        module.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        raise FortifyError(f"{path}: weights do not match architecture {meta['arch']!r}: {exc}") from exc
    if device is not None:
        module.to(device)
    clf = Classifier(
        module,
        num_classes=meta["num_classes"],
        bounds=tuple(meta.get("bounds", (0.0, 1.0))),
        mean=meta.get("mean"),
        std=meta.get("std"),
    )
    clf.metadata = meta
    return clf


def _unwrap(model: nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    if isinstance(model, Classifier):
        meta: dict[str, Any] = {"bounds": list(model.bounds)}
        if model.mean is not None:
            meta["mean"] = model.mean.tolist()
        if model.std is not None:
            meta["std"] = model.std.tolist()
        return model.module, meta
    if isinstance(model, nn.Module):
        return model, {}
    raise TypeError(f"expected an nn.Module or Classifier, got {type(model).__name__}")


def _checked_path(path: str | Path) -> Path:
    source = Path(path)
    if not source.is_file():
        raise FortifyError(f"model file {source} does not exist")
    with source.open("rb") as handle:
        head = handle.read(9)
    header_len = int.from_bytes(head[:8], "little") if len(head) == 9 else -1
    is_safetensors = 0 < header_len < source.stat().st_size and head[8:9] == b"{"
    pickled = head[:1] == b"\x80" or head[:2] == b"PK"
    if source.suffix.lower() in _PICKLE_SUFFIXES or (pickled and not is_safetensors):
        raise UnsafeFileError(
            f"{source} looks like a pickle-based checkpoint; fortify refuses to unpickle files because "
            "that can execute arbitrary code. Convert it once, in a process you trust: "
            "load the state_dict with torch.load(path, weights_only=True) and save it with ft.zoo.save"
        )
    if not is_safetensors:
        raise FortifyError(f"{source} is not a safetensors file")
    return source
