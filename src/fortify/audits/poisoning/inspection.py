"""Inspecting a training set for poison: spectral signatures and activation clustering.

Both read the features of one layer of a model trained on the (possibly poisoned) set and work class
by class, on the samples *labelled* that class, returning the global indices they flag.

- ``spectral_signatures`` (Tran, Li & Madry, "Spectral Signatures in Backdoor Attacks", NeurIPS 2018,
  arXiv:1811.00636): centre the class's features, take the top right singular vector, score each sample
  by its squared projection on it, and flag the ``factor * rate * n_class`` highest scores (the
  paper's 1.5 times an upper bound on the poison rate; one rate for every class, or per class).
- ``activation_clustering`` (Chen et al., "Detecting Backdoor Attacks on Deep Neural Networks by
  Activation Clustering", 2018, arXiv:1811.03728): reduce the class's features to ``components``
  dimensions with ICA, split them in two with k-means, and flag the smaller cluster when it holds at
  most ``max_share`` of the class (the paper's relative-size criterion; its silhouette and
  exclusionary-reclassification variants are not implemented).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import FastICA
from torch import Tensor

from fortify import _validate as check
from fortify.detect.features import features_of
from fortify.model import Classifier
from fortify.types import FortifyError


def _classes(x: Tensor, y: Tensor) -> list[int]:
    if not isinstance(y, Tensor) or y.shape != (x.shape[0],):
        raise FortifyError("inspection takes inputs x (N, ...) and labels y (N,)")
    return [int(c) for c in y.unique().tolist()]


def spectral_signatures(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    *,
    layer: str | None = None,
    expected_rate: float = 0.05,
    class_rates: Mapping[int, float] | None = None,
    factor: float = 1.5,
) -> Tensor:
    """Sorted int64 indices ``(M,)`` of the samples flagged by their spectral signature.

    In each class, the ``factor × rate × class size`` samples with the largest squared projection on the
    top singular vector of the class's centred features are flagged, where ``rate`` is the class's
    entry in ``class_rates`` (the share of that class thought poisoned: Tran et al.'s per-class bound)
    or else ``expected_rate``. A class named in ``class_rates`` must exist in ``y``.
    """
    rate = check.fraction("expected_rate", expected_rate)
    factor = check.positive_float("factor", factor)
    present = set(_classes(x, y))
    rates: dict[int, float] = {}
    for c, r in (class_rates or {}).items():
        if not check.is_integer(c) or int(c) not in present:
            raise FortifyError(f"class_rates: class {c!r} has no samples (classes: {sorted(present)})")
        rates[int(c)] = check.fraction(f"class_rates[{c}]", r)
    feats = features_of(clf, x, layer).double()
    flagged = []
    for c in _classes(x, y):
        rows = (y.cpu() == c).nonzero().squeeze(1)
        if rows.numel() < 2:
            continue
        centred = feats[rows] - feats[rows].mean(dim=0)
        top = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        scores = (centred @ top) ** 2
        share = rates.get(int(c), rate)
        remove = min(rows.numel(), int(round(factor * share * rows.numel())))
        if remove:
            flagged.append(rows[scores.argsort(descending=True)[:remove]])
    return torch.cat(flagged).sort().values if flagged else torch.zeros(0, dtype=torch.long)


def activation_clustering(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    *,
    layer: str | None = None,
    components: int = 10,
    max_share: float = 0.35,
    seed: int = 0,
) -> Tensor:
    """Sorted int64 indices ``(M,)`` of the samples in each class's small activation cluster."""
    components = check.positive_int("components", components)
    share = check.fraction("max_share", max_share)
    feats = features_of(clf, x, layer).numpy().astype(np.float64)
    flagged = []
    for c in _classes(x, y):
        rows = (y.cpu() == c).nonzero().squeeze(1)
        if rows.numel() < max(4, components + 1):
            continue
        dims = min(components, feats.shape[1], rows.numel() - 1)
        reduced = FastICA(
            n_components=dims, random_state=seed, max_iter=1000, tol=1e-3, whiten="unit-variance"
        ).fit_transform(feats[rows.numpy()])
        labels = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(reduced)
        small = int(np.bincount(labels, minlength=2).argmin())
        members = labels == small
        if members.mean() <= share:
            flagged.append(rows[torch.from_numpy(members)])
    return torch.cat(flagged).sort().values if flagged else torch.zeros(0, dtype=torch.long)


def precision_recall(flagged: Tensor, poisoned: Tensor) -> tuple[float, float]:
    """Precision and recall of ``flagged`` indices against the known ``poisoned`` ones (0 when empty)."""
    hit = len(set(flagged.tolist()) & set(poisoned.tolist()))
    precision = hit / flagged.numel() if flagged.numel() else 0.0
    recall = hit / poisoned.numel() if poisoned.numel() else 0.0
    return precision, recall
