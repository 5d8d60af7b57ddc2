"""The user's own data: ``folder:PATH`` (one sub-folder per class of PNG/JPEG images), ``npz:FILE``
(arrays ``x`` and ``y``) and ``csv:FILE`` (a table with a label column, ``fortify.data.tables``; the
column is named as ``csv:FILE?label=COLUMN``), as float32 ``x`` in [0, 1] and int64 ``y`` like the
built-in sets.

Splits: a folder with ``train/`` and ``test/`` sub-folders (each holding the class folders) gives those;
an ``.npz`` with ``x_train, y_train, x_test, y_test`` likewise. Otherwise every fifth sample (in sorted
file order, or row order) is ``test`` and the rest ``train``, so the two splits never share a sample.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fortify.types import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
PREFIXES = ("folder:", "npz:", "csv:")
TEST_EVERY = 5
"""Without explicit splits, sample ``i`` is in ``test`` when ``i % TEST_EVERY == 0``."""


def is_file_dataset(name: str) -> bool:
    return name.startswith(PREFIXES)


def load_split(name: str, split: str) -> tuple[Tensor, Tensor, tuple[str, ...] | None]:
    """``x, y, class names`` of ``split`` of ``folder:PATH``, ``npz:FILE`` or ``csv:FILE[?label=COLUMN]``."""
    kind, _, where = name.partition(":")
    if not where:
        raise DataError(f"--data {name}: give a path after {kind}:")
    if kind == "csv":
        from fortify.data.tables import read_csv, split_name

        file, label = split_name(where)
        x, y, classes, _ = read_csv(str(Path(file).resolve()), label)
        return (*_every_fifth(x, y, split), classes)
    path = Path(where)
    if kind == "folder":
        return _folder(str(path.resolve()), split)
    x, y = _npz(str(path.resolve()), split)
    return x, y, None


@functools.lru_cache(maxsize=4)
def _folder(root: str, split: str) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"--data folder:{root}: no such folder")
    explicit = (base / "train").is_dir() and (base / "test").is_dir()
    x, y, classes = _images(base / split if explicit else base)
    return (x, y, classes) if explicit else (*_every_fifth(x, y, split), classes)


def _images(folder: Path) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    from PIL import Image, UnidentifiedImageError

    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    if len(classes) < 2:
        raise DataError(f"{folder}: needs one sub-folder per class (at least 2), found {len(classes)}")
    arrays, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{folder / name}: no PNG or JPEG images")
        for file in files:
            try:
                with Image.open(file) as image:
                    arrays.append(
                        (file, image.convert("RGB") if image.mode not in ("L", "1") else image.convert("L"))
                    )
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{file}: not a readable image ({exc})") from exc
            labels.append(label)
    mode = "RGB" if any(img.mode == "RGB" for _, img in arrays) else "L"
    size = arrays[0][1].size
    stacked = []
    for file, img in arrays:
        if img.size != size:
            raise DataError(f"{file}: {img.size[0]}x{img.size[1]} pixels, the others are {size[0]}x{size[1]}")
        pixels = np.asarray(img.convert(mode), dtype=np.uint8)
        stacked.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
    x = torch.from_numpy(np.stack(stacked)).float().div_(255.0)
    return x.contiguous(), torch.tensor(labels, dtype=torch.long), classes


@functools.lru_cache(maxsize=4)
def _npz(path: str, split: str) -> tuple[Tensor, Tensor]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"--data npz:{path}: not a readable .npz without pickles ({exc})") from exc
    if f"x_{split}" in arrays and f"y_{split}" in arrays:
        x, y = _checked(path, arrays[f"x_{split}"], arrays[f"y_{split}"])
        return x, y
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"--data npz:{path}: needs arrays x and y (or x_train, y_train, x_test, y_test)")
    return _every_fifth(*_checked(path, arrays["x"], arrays["y"]), split)


def _checked(path: str, x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
        raise DataError(f"npz:{path}: x must be (N, ...) and y (N,), got {x.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise DataError(f"npz:{path}: y must hold class indices >= 0, got dtype {y.dtype}")
    if x.dtype == np.uint8:
        values = torch.from_numpy(x.astype(np.float32) / 255.0)
    elif np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise DataError(f"npz:{path}: float x must be finite and in [0, 1] (or give uint8 pixels)")
        values = torch.from_numpy(x.astype(np.float32))
    else:
        raise DataError(f"npz:{path}: x must be uint8 or float, got {x.dtype}")
    return values.contiguous(), torch.from_numpy(y.astype(np.int64))


def _every_fifth(x: Tensor, y: Tensor, split: str) -> tuple[Tensor, Tensor]:
    test = torch.arange(x.shape[0]) % TEST_EVERY == 0
    keep = test if split == "test" else ~test
    return x[keep].contiguous(), y[keep]
