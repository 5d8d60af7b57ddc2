"""Reference checks of the white-box attacks against torchattacks on a small trained Fashion-MNIST model.

Slow (trains a cnn-tiny on 10,000 images for one epoch first); skipped when Fashion-MNIST or torchattacks
is absent. Tolerances are stated in each test.
"""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.conftest import needs_fashion_mnist

torchattacks = pytest.importorskip("torchattacks")

pytestmark = [pytest.mark.slow, needs_fashion_mnist]


@pytest.fixture(scope="module")
def fashion() -> tuple[ft.Classifier, torch.Tensor, torch.Tensor]:
    """cnn-tiny, 1 epoch on 10k Fashion-MNIST training images; 200 correctly classified test images."""
    x, y = ft.data.load("fashion-mnist", "train", n=10_000)
    torch.manual_seed(0)
    clf = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 28, 28), 10), num_classes=10)
    ft.train(clf, (x, y), epochs=1, lr=3e-3, batch_size=64, seed=0, progress=False)
    x_test, y_test = ft.data.load("fashion-mnist", "test", n=400)
    right = clf.predict(x_test) == y_test
    return clf, x_test[right][:200], y_test[right][:200]


def _accuracy(clf: ft.Classifier, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    return float((clf.predict(x_adv) == y).float().mean())


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_robust_accuracy_matches_torchattacks_within_3_points(fashion, loss):
    clf, x, y = fashion
    eps = 0.03
    ours = _accuracy(clf, ft.attacks.APGD(loss=loss, steps=50)(clf, x, y, ft.Linf(eps)), y)
    ref = torchattacks.APGD(clf, norm="Linf", eps=eps, steps=50, n_restarts=1, loss=loss, seed=0)
    theirs = _accuracy(clf, ref(x, y), y)
    assert 0.05 < theirs < 0.95, "eps should leave a measurable robust accuracy"
    assert abs(ours - theirs) <= 0.03, (ours, theirs)


def test_cw_median_l2_no_larger_than_torchattacks_plus_10_percent(fashion):
    clf, x, y = fashion
    x, y = x[:100], y[:100]
    ours = ft.attacks.CW(steps=100, binary_search_steps=1, initial_const=1.0).min_norm(clf, x, y, "l2")
    ref_adv = torchattacks.CW(clf, c=1.0, kappa=0, steps=100, lr=0.01)(x, y)
    ref_ok = clf.predict(ref_adv) != y
    ref_dist = (ref_adv - x).flatten(1).norm(dim=1)
    both = ours.success & ref_ok
    assert float(ours.success.float().mean()) >= float(ref_ok.float().mean()) - 0.02
    assert int(both.sum()) >= 20
    assert float(ours.distances[both].median()) <= 1.10 * float(ref_dist[both].median())


def test_deepfool_median_l2_within_5_percent_of_torchattacks(fashion):
    clf, x, y = fashion
    x, y = x[:120], y[:120]  # torchattacks succeeds on only a third to a half of them
    ours = ft.attacks.DeepFool(steps=50, overshoot=0.02).min_norm(clf, x, y, "l2")
    ref_adv = torchattacks.DeepFool(clf, steps=50, overshoot=0.02)(x, y)
    ref_ok = clf.predict(ref_adv) != y
    ref_dist = (ref_adv - x).flatten(1).norm(dim=1)
    # torchattacks' points often stop short of the boundary once clipped into [0, 1]; ours are checked
    assert float(ours.success.float().mean()) >= float(ref_ok.float().mean())
    both = ours.success & ref_ok
    assert int(both.sum()) >= 20
    ratio = float(ours.distances[both].median()) / float(ref_dist[both].median())
    assert 0.95 <= ratio <= 1.05, ratio
