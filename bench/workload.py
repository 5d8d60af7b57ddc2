"""The benchmark's shared workload: one trained Fashion-MNIST cnn-small and the first n test images.

The model is trained once (standard training, 1 epoch on the 60k training images, seed 0, ~60 s on two
cores) and cached as safetensors under ``runs/bench/model.safetensors`` (outside git). ``--quick`` runs
never write the cache: without one they train on the first 5,000 training images only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

import fortify as ft

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "bench" / "model.safetensors"
ARCH = "cnn-small"
QUICK_TRAIN_IMAGES = 5_000

log = logging.getLogger("bench")


def trained_model(*, quick: bool, cache: Path = CACHE) -> tuple[ft.Classifier, str]:
    """The benchmark model and where it came from (``"cache"``, ``"trained"`` or ``"trained-quick"``)."""
    if cache.is_file():
        return ft.zoo.load(cache), f"cache {cache.relative_to(ROOT) if cache.is_relative_to(ROOT) else cache}"
    x, y = ft.data.load("fashion-mnist", "train", n=QUICK_TRAIN_IMAGES if quick else None)
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create(ARCH, (1, 28, 28), 10), num_classes=10)
    history = ft.train(clf, (x, y), epochs=1, lr=1e-3, batch_size=128, seed=0, progress=False)
    log.info("trained %s on %d images in %.1f s", ARCH, x.shape[0], history.total_s)
    if quick:
        return clf, f"trained on {x.shape[0]} images (quick, not cached)"
    ft.zoo.save(
        clf,
        cache,
        dataset="fashion-mnist",
        method="standard",
        epochs=1,
        seed=0,
        train_time_s=round(history.total_s, 1),
    )
    return clf, f"trained on {x.shape[0]} images in {history.total_s:.0f} s, cached at {cache}"


def test_images(n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` Fashion-MNIST test images ``(n, 1, 28, 28)`` in [0, 1] and labels ``(n,)``."""
    return ft.data.load("fashion-mnist", "test", n=n)
