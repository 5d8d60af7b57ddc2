"""Small real datasets that ship inside scikit-learn: nothing to download.

- ``digits``: 1,797 8x8 handwritten digits (UCI), as ``(N, 1, 8, 8)`` in [0, 1], 10 classes.
- ``breast-cancer``: 569 rows of 30 features (Wisconsin diagnostic), min-max scaled to [0, 1] with the
  training split's ranges (test rows clipped into [0, 1]), 2 classes.

Splits are a fixed, stratified 80/20 partition.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def _split(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return (x_tr, y_tr) if split == "train" else (x_te, y_te)


def load_digits(split: str) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x, y = _split(bunch.data.astype(np.float32) / 16.0, bunch.target, split)
    return torch.from_numpy(x).reshape(-1, 1, 8, 8), torch.from_numpy(y).long()


def load_breast_cancer(split: str) -> tuple[Tensor, Tensor]:
    from sklearn.datasets import load_breast_cancer as sk_bc

    bunch = sk_bc()
    x_all = bunch.data.astype(np.float32)
    x_train, _ = _split(x_all, bunch.target, "train")
    low, high = x_train.min(axis=0), x_train.max(axis=0)
    x, y = _split(x_all, bunch.target, split)
    scaled = np.clip((x - low) / np.maximum(high - low, 1e-12), 0.0, 1.0).astype(np.float32)
    return torch.from_numpy(scaled), torch.from_numpy(y).long()
