"""Shared fixtures: tiny deterministic CPU models on synthetic data, trained once per session.

Nothing here touches the network or needs real datasets; tests that need Fashion-MNIST are marked
``needs_data`` and skip with a reason when the files are absent.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, settings

import fortify as ft

# tiny models: one thread avoids thread-pool overhead and contention between parallel jobs
torch.set_num_threads(1)
settings.register_profile(
    "fortify", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("fortify")


def fresh_cnn_tiny(seed: int = 0) -> ft.Classifier:
    """An untrained cnn-tiny for the synthetic 4-class 8x8 set, initialised from ``seed``."""
    torch.manual_seed(seed)
    return ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)


def _trained(
    arch: str, name: str, epochs: int, seed: int = 0
) -> tuple[ft.Classifier, torch.Tensor, torch.Tensor]:
    meta = ft.data.info(name)
    x, y = ft.data.load(name, "train")
    x_test, y_test = ft.data.load(name, "test")
    torch.manual_seed(seed)
    clf = ft.Classifier(ft.zoo.create(arch, meta.shape, meta.num_classes), num_classes=meta.num_classes)
    ft.train(clf, (x, y), epochs=epochs, lr=3e-3, batch_size=64, seed=seed, progress=False)
    return clf, x_test, y_test


@pytest.fixture(scope="session")
def tiny_cnn() -> tuple[ft.Classifier, torch.Tensor, torch.Tensor]:
    """A cnn-tiny trained to ~100% clean accuracy on the synthetic 4-class 8x8 set, with its test set.

    Undefended: PGD at Linf 0.3 (or L2 2.0) breaks essentially every sample.
    """
    return _trained("cnn-tiny", "synthetic", epochs=5)


@pytest.fixture(scope="session")
def tiny_mlp() -> tuple[ft.Classifier, torch.Tensor, torch.Tensor]:
    """An MLP trained on scikit-learn's breast-cancer table (30 features in [0, 1], 2 classes)."""
    return _trained("mlp", "breast-cancer", epochs=30)


@pytest.fixture(scope="session")
def tiny_guarded(tiny_cnn) -> tuple[ft.Classifier, torch.Tensor, torch.Tensor]:
    """The tiny CNN behind feature squeezing (2-bit depth) calibrated at 5% FPR, and held-out samples."""
    clf, x, y = tiny_cnn
    detector = ft.detect.FeatureSqueezing(clf, [ft.defenses.BitDepth(2)]).calibrate(x[:128], fpr=0.05)
    return ft.defenses.defend(clf, detector=detector), x[128:], y[128:]


def fashion_mnist_available() -> bool:
    try:
        ft.data.load("fashion-mnist", "test", n=1)
    except ft.FortifyError:
        return False
    return True


needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_available(),
    reason="Fashion-MNIST files not found (apt-get install dataset-fashion-mnist, or set FORTIFY_DATA)",
)
