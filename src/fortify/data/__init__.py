"""Datasets as ``(x, y)`` float32 tensors in [0, 1]: ``(N, C, H, W)`` for images, ``(N, F)`` for tables.

>>> x, y = ft.data.load("fashion-mnist", "test")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from fortify.data import fashion_mnist, files, sklearn_sets
from fortify.data.synthetic import make_synthetic
from fortify.types import DataError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    shape: tuple[int, ...]
    classes: tuple[str, ...] | None = None


DATASETS: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo("fashion-mnist", 10, (1, 28, 28), fashion_mnist.CLASSES),
    "digits": DatasetInfo("digits", 10, (1, 8, 8), tuple(str(i) for i in range(10))),
    "breast-cancer": DatasetInfo("breast-cancer", 2, (30,), ("malignant", "benign")),
    "synthetic": DatasetInfo("synthetic", 4, (1, 8, 8)),
}
SPLITS = ("train", "test")


def info(name: str) -> DatasetInfo:
    """Shape and classes of a built-in set, or of ``folder:PATH`` / ``npz:FILE`` / ``csv:FILE`` (read to
    find out)."""
    if files.is_file_dataset(name):
        x, y, classes = files.load_split(name, "train")
        x_test, y_test, _ = files.load_split(name, "test")
        if tuple(x.shape[1:]) != tuple(x_test.shape[1:]):
            raise DataError(
                f"--data {name}: train inputs {tuple(x.shape[1:])} but test {tuple(x_test.shape[1:])}"
            )
        labels = torch.cat([y, y_test])
        count = len(classes) if classes is not None else int(labels.max()) + 1 if len(labels) else 0
        if count < 2:
            raise DataError(f"--data {name}: needs at least 2 classes, found {count}")
        return DatasetInfo(name, count, tuple(x.shape[1:]), classes)
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}, folder:PATH, npz:FILE, csv:FILE"
        )
    return DATASETS[name]


def load(
    name: str, split: str = "test", *, n: int | None = None, download_to: str | Path | None = None
) -> tuple[Tensor, Tensor]:
    """Load ``split`` (``"train"`` or ``"test"``) of dataset ``name``: float32 ``x`` in [0, 1], int64 ``y``.

    ``name`` is a built-in set or the user's own ``folder:PATH`` / ``npz:FILE`` / ``csv:FILE`` (label
    column named as ``csv:FILE?label=COLUMN``; ``fortify.data.files``).
    ``n`` keeps the first ``n`` samples. Fashion-MNIST is never downloaded unless ``download_to`` names
    a folder to put it in; missing or corrupt files raise ``DataError`` saying which file and what to do.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    if n is not None and n < 1:
        raise DataError(f"n must be >= 1, got {n}")
    meta = info(name)
    if files.is_file_dataset(name):
        x, y, _ = files.load_split(name, split)
        if x.shape[0] == 0:
            raise DataError(f"--data {name}: the {split} split is empty")
    elif name == "fashion-mnist":
        target = Path(download_to) if download_to is not None else None
        images, labels = fashion_mnist.load_arrays(split, download_to=target)
        if n is not None:
            images, labels = images[:n], labels[:n]
        x = torch.from_numpy(images.copy()).float().div_(255.0).unsqueeze(1)
        y = torch.from_numpy(labels.copy()).long()
    elif name == "digits":
        x, y = sklearn_sets.load_digits(split)
    elif name == "breast-cancer":
        x, y = sklearn_sets.load_breast_cancer(split)
    else:
        x, y = make_synthetic(
            512 if split == "train" else 256,
            num_classes=meta.num_classes,
            shape=meta.shape,
            seed=0 if split == "train" else 1,
        )
    if n is not None:
        x, y = x[:n], y[:n]
    return x.contiguous(), y


__all__ = ["load", "info", "DATASETS", "DatasetInfo", "make_synthetic"]
