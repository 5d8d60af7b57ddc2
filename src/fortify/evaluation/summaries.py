"""Summaries of per-sample outcomes: slices per class and per group, calibration and confidence histograms."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fortify.result import Calibration, Slice

CALIBRATION_BINS = 10


def slices(
    y: Tensor,
    correct: Tensor,
    robust: Tensor,
    groups: Sequence[str] | None,
    class_names: Sequence[str] | None = None,
) -> list[Slice]:
    """Clean and robust accuracy per true class, then per user group (in order of first appearance)."""
    out: list[Slice] = []
    for label in sorted(set(y.tolist())):
        mask = y == label
        key = class_names[label] if class_names is not None and label < len(class_names) else str(label)
        out.append(_slice("class", key, mask, correct, robust))
    if groups is not None:
        for group in dict.fromkeys(groups):
            mask = torch.tensor([g == group for g in groups])
            out.append(_slice("group", group, mask, correct, robust))
    return out


def _slice(kind: str, key: str, mask: Tensor, correct: Tensor, robust: Tensor) -> Slice:
    n = int(mask.sum())
    return Slice(
        kind=kind,  # type: ignore[arg-type]
        key=key,
        n=n,
        clean_accuracy=float(correct[mask].float().mean()) if n else 0.0,
        robust_accuracy=float(robust[mask].float().mean()) if n else 0.0,
    )


def expected_calibration_error(confidence: Tensor, correct: Tensor, bins: int = CALIBRATION_BINS) -> float:
    """ECE (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): the bin-weighted mean of
    ``|accuracy - mean confidence|`` over ``bins`` equal-width confidence bins. ``confidence`` ``(N,)`` in
    [0, 1], ``correct`` ``(N,)`` bool; returns a value in [0, 1]."""
    if confidence.numel() == 0:
        return 0.0
    index = (confidence * bins).long().clamp(0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if bool(mask.any()):
            gap = correct[mask].float().mean() - confidence[mask].mean()
            total += float(mask.float().mean()) * abs(float(gap))
    return total


def calibration(
    clean_conf: Tensor, correct: Tensor, adv_conf: Tensor, robust: Tensor, bins: int = CALIBRATION_BINS
) -> Calibration:
    """ECE and max-probability histograms, clean and at the attack points.

    ``adv_conf`` holds the confidence at the strongest point found for attacked samples and the clean
    confidence for samples misclassified already (they are not attacked); ``robust`` is the per-sample
    worst-case correctness.
    """
    edges = torch.linspace(0, 1, bins + 1)
    return Calibration(
        bins=bins,
        bin_edges=[round(float(e), 6) for e in edges],
        ece_clean=expected_calibration_error(clean_conf, correct, bins),
        ece_adversarial=expected_calibration_error(adv_conf, robust, bins),
        clean_histogram=_histogram(clean_conf, bins),
        adversarial_histogram=_histogram(adv_conf, bins),
    )


def _histogram(confidence: Tensor, bins: int) -> list[int]:
    index = (confidence * bins).long().clamp(0, bins - 1)
    return [int(c) for c in torch.bincount(index, minlength=bins)]
