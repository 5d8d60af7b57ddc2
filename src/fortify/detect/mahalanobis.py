"""Mahalanobis distance to class-conditional Gaussians (Lee, Lee, Lee & Shin, "A Simple Unified
Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018,
arXiv:1807.03888).

The features of one layer of the protected classifier are modelled, per class ``c``, as a Gaussian
``N(mu_c, Sigma)`` with one covariance shared by all classes (tied). An input's score is its smallest
squared Mahalanobis distance ``min_c (f - mu_c)^T Sigma^-1 (f - mu_c)``: large when its features sit
far from every class. This is the paper's score without its input pre-processing step and without the
layer ensemble (one layer, no logistic regression over layers); the covariance is shrunk towards a
multiple of the identity (Ledoit-Wolf style, a fixed ``shrinkage`` weight) so that it is invertible even
with fewer samples than feature dimensions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fortify._validate import is_number
from fortify.detect.base import Detector
from fortify.detect.features import find_layer, layer_features
from fortify.model import Classifier
from fortify.types import FortifyError

DEFAULT_SHRINKAGE = 0.01


class Mahalanobis(Detector):
    """``min_c (f(x) - mu_c)^T Sigma^-1 (f(x) - mu_c)`` for the features ``f`` of ``layer``; ``(N,)``.

    ``layer``: the name of a sub-module of the classifier (as in ``named_modules()``; a suffix such as
    ``"3"`` or ``"fc1"`` is matched against the full names) whose output is the feature; None (default)
    takes the *input* of the classifier's last ``nn.Linear`` (the penultimate features). ``fit(x, y)``
    estimates the class means and the tied covariance from clean inputs and their labels (the
    classifier's predictions when ``y`` is None). Differentiable: adaptive evaluation attacks it directly.

    >>> det = ft.detect.Mahalanobis(clf).calibrate(x_clean, y=y_clean, fpr=0.05)
    """

    name = "mahalanobis"
    fits = True

    def __init__(
        self, clf: Classifier | None = None, *, layer: str | None = None, shrinkage: float = DEFAULT_SHRINKAGE
    ) -> None:
        super().__init__()
        if layer is not None and (not isinstance(layer, str) or not layer):
            raise FortifyError(f"layer must be a sub-module name, got {layer!r}")
        if not is_number(shrinkage) or not 0 <= shrinkage < 1:
            raise FortifyError(f"shrinkage must be in [0, 1), got {shrinkage!r}")
        self.layer = layer
        self.shrinkage = float(shrinkage)
        self.clf: Classifier | None = None
        self._feature_module: nn.Module | None = None
        self.register_buffer("means", torch.empty(0))
        self.register_buffer("precision", torch.empty(0))
        if clf is not None:
            self.bind(clf)
        self.eval()

    def bind(self, clf: Classifier) -> Mahalanobis:
        if not isinstance(clf, Classifier):
            raise TypeError(f"Mahalanobis protects a fortify Classifier, got {type(clf).__name__}")
        self.clf = clf
        self._feature_module = find_layer(clf, self.layer)
        return self

    @property
    def fitted(self) -> bool:
        return self.means.numel() > 0

    def features(self, x: Tensor) -> Tensor:
        """The chosen layer's features ``(N, D)`` for inputs ``(N, ...)`` (differentiable)."""
        if self.clf is None or self._feature_module is None:
            raise FortifyError("Mahalanobis has no classifier: Mahalanobis(clf) or .bind(clf)")
        return layer_features(self.clf, self._feature_module, x, penultimate=self.layer is None)

    @torch.no_grad()
    def fit(self, x: Tensor, y: Tensor | None = None) -> None:
        """Class means ``(K, D)`` and the shrunk inverse of the tied covariance ``(D, D)`` from ``x``."""
        if self.clf is None:
            raise FortifyError("Mahalanobis has no classifier: Mahalanobis(clf) or .bind(clf)")
        feats = torch.cat([self.features(chunk) for chunk in x.split(512)]).double()
        labels = self.clf.predict(x).cpu() if y is None else y.cpu()
        if labels.shape != (feats.shape[0],):
            raise FortifyError(f"labels must have shape ({feats.shape[0]},), got {tuple(labels.shape)}")
        labels = labels.to(feats.device)
        k = self.clf.num_classes
        present = labels.unique()
        if present.numel() < 2:
            raise FortifyError("Mahalanobis needs clean samples of at least two classes to fit")
        means = torch.zeros(k, feats.shape[1], dtype=torch.float64, device=feats.device)
        centred = torch.empty_like(feats)
        for c in present.tolist():
            rows = labels == c
            means[c] = feats[rows].mean(dim=0)
            centred[rows] = feats[rows] - means[c]
        missing = torch.ones(k, dtype=torch.bool, device=feats.device)
        missing[present] = False
        means[missing] = float("inf")  # a class never seen is at infinite distance
        cov = centred.T @ centred / feats.shape[0]
        scale = cov.diagonal().mean().clamp_min(1e-12)
        cov = (1 - self.shrinkage) * cov + self.shrinkage * scale * torch.eye(cov.shape[0], dtype=cov.dtype)
        self.means = means.float()
        self.precision = torch.linalg.pinv(cov, hermitian=True).float()

    def forward(self, x: Tensor) -> Tensor:
        if not self.fitted:
            raise FortifyError("Mahalanobis is not fitted: call .calibrate(x_clean) (or .fit(x, y)) first")
        feats = self.features(x)
        finite = torch.isfinite(self.means).all(dim=1)
        diff = feats[:, None, :] - self.means[finite][None, :, :].to(feats.dtype)
        dist = torch.einsum("nkd,de,nke->nk", diff, self.precision.to(feats.dtype), diff)
        return dist.amin(dim=1)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "layer": self.layer or "penultimate", "shrinkage": self.shrinkage}
