"""A poisoned training set on disk: ``x``, ``y`` and optionally ``poisoned`` (indices) in safetensors,
as ``fortify poison make`` writes it and ``fortify poison inspect`` / ``fortify train --poisoned`` read it."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from fortify.types import FortifyError


def load_poisoned(path: str | Path, what: str = "poisoned set") -> tuple[Tensor, Tensor, Tensor | None]:
    """``(x float32 (N, ...), y int64 (N,), poisoned int64 indices or None)``; one-line errors."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise FortifyError(f"{what} {path} is not a readable safetensors file") from exc
    x, y = tensors.get("x"), tensors.get("y")
    if x is None or y is None or x.dim() < 2 or y.shape != (x.shape[0],):
        raise FortifyError(f"{what} {path} must hold tensors x (N, ...) and y (N,)")
    poisoned = tensors.get("poisoned")
    return x.float(), y.long(), None if poisoned is None else poisoned.long()
