"""Data given as an iterable of ``(x, y)`` batches: a ``torch.utils.data.DataLoader``, a list of pairs,
a generator.

``is_batches`` says whether a data argument is such an iterable (rather than one tensor or NumPy
array); ``iter_batches`` checks each batch as it arrives and yields it as tensors; ``chunks`` regroups
the batches into chunks of a fixed number of samples, each with its global offset, so a data set
larger than memory can be processed one chunk at a time. Nothing is read ahead: a chunk holds at most
``size`` samples plus the rest of the batch that completed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeGuard

import torch
from torch import Tensor

from fortify._validate import from_numpy, positive_int
from fortify.types import FortifyError


def is_batches(data: object) -> TypeGuard[Iterable[Any]]:
    """True for an iterable of batches: anything iterable but a tensor, a NumPy array, text or a mapping."""
    import numpy as np

    if isinstance(data, (Tensor, np.ndarray, str, bytes, Mapping)):
        return False
    return hasattr(data, "__iter__")


def _pair(batch: object, k: int) -> tuple[Any, Any]:
    """The ``(x, y)`` of one batch: a sequence's first two items (a ``TensorDataset`` or a torchvision
    set gives ``[x, y]``) or a mapping's ``"x"`` and ``"y"``."""
    if isinstance(batch, Mapping) and "x" in batch and "y" in batch:
        return batch["x"], batch["y"]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise FortifyError(
        f"batch {k} is a {type(batch).__name__}; each batch must be an (x, y) pair (or a mapping with "
        "'x' and 'y'), as a DataLoader over a TensorDataset yields"
    )


def iter_batches(data: Iterable[Any], *, keep_empty: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Each batch of ``data`` as ``(x, y)`` tensors, checked: ``x`` ``(B, ...)`` floating, ``y`` ``(B,)``
    integer (NumPy batches are converted as ``fortify._validate.from_numpy`` does). Every batch must
    have the trailing shape and dtype of the first. Raises ``FortifyError`` naming the batch. Empty
    batches are skipped unless ``keep_empty`` (DP training's Poisson batches may be empty and still
    count as a step)."""
    shape: tuple[int, ...] | None = None
    dtype: torch.dtype | None = None
    for k, batch in enumerate(data):
        x, y = from_numpy(*_pair(batch, k))
        if not isinstance(x, Tensor) or not isinstance(y, Tensor):
            raise FortifyError(
                f"batch {k}: x and y must be tensors or NumPy arrays, got {type(x).__name__} and "
                f"{type(y).__name__}"
            )
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise FortifyError(
                f"batch {k}: x must be (B, ...) and y (B,), got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        if shape is None:
            shape, dtype = tuple(x.shape[1:]), x.dtype
        elif tuple(x.shape[1:]) != shape or x.dtype != dtype:
            raise FortifyError(
                f"batch {k}: inputs {tuple(x.shape[1:])} {x.dtype}, but the first batch's are {shape} {dtype}"
            )
        if x.shape[0] or keep_empty:
            yield x, y


def chunks(data: Iterable[Any], size: int) -> Iterator[tuple[int, Tensor, Tensor]]:
    """``(start, x, y)`` chunks of exactly ``size`` samples (the last may be smaller) regrouped from the
    batches of ``data``; ``start`` is the global index of the chunk's first sample, in the order the
    batches came. Tensors are concatenated on the CPU."""
    positive_int("chunk_size", size)
    xs: list[Tensor] = []
    ys: list[Tensor] = []
    held, start = 0, 0
    for x, y in iter_batches(data):
        xs.append(x.detach().cpu())
        ys.append(y.cpu())
        held += x.shape[0]
        while held >= size:
            x_all, y_all = torch.cat(xs), torch.cat(ys)
            yield start, x_all[:size], y_all[:size]
            start += size
            xs, ys = [x_all[size:]], [y_all[size:]]
            held -= size
    if held:
        yield start, torch.cat(xs), torch.cat(ys)


def sample_count(data: object) -> int | None:
    """How many samples ``data`` holds, when it says so without being read (a ``DataLoader`` over a
    sized data set, unless it drops its last batch); ``None`` otherwise."""
    dataset = getattr(data, "dataset", None)
    if dataset is None or getattr(data, "drop_last", False):
        return None
    try:
        return len(dataset)
    except TypeError:
        return None
