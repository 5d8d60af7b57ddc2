"""Build a calibrated guard from model files and a dataset: what ``fortify guard build`` and
``fortify serve --model M --calibrate DATASET`` do.

Calibration data are the *last* ``n`` images of the dataset's test split by default: held out from
training (the models were trained on the train split) and from evaluation (``fortify evaluate`` scores
the first images of the test split; ``calibration_overlap`` says when an evaluation would overlap).
STRIP's overlays are clean images too: ``strip_overlays`` of the first ``STRIP_POOL_N`` images of the
train split (the defender's own clean data), chosen by the detector's seed; they travel in the bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fortify import data as datasets
from fortify import zoo
from fortify.defenses import JPEG, BitDepth, GaussianNoise, MedianFilter, Preprocessor
from fortify.detect import STRIP, Detector
from fortify.detect.base import DEFAULT_FPR
from fortify.model import Classifier
from fortify.runtime.detectors import DEFAULT_DETECTORS, DETECTORS
from fortify.runtime.guard import DEFAULT_REJECT_FPR, Guard
from fortify.types import FortifyError

DEFAULT_CALIBRATION_N = 2000
STRIP_POOL_N = 500
PREPROCESS_SPECS = {
    "median": (MedianFilter, int),
    "bits": (BitDepth, int),
    "jpeg": (JPEG, int),
    "noise": (GaussianNoise, float),
}


def parse_preprocess(spec: str) -> list[Preprocessor]:
    """``"median:2,bits:5"`` -> ``[MedianFilter(2), BitDepth(5)]`` (kinds: median, bits, jpeg, noise)."""
    steps: list[Preprocessor] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, value = part.partition(":")
        if kind not in PREPROCESS_SPECS or not value:
            raise FortifyError(
                f"bad preprocessing step {part!r}; use KIND:VALUE with KIND one of {sorted(PREPROCESS_SPECS)}"
            )
        cls, cast = PREPROCESS_SPECS[kind]
        try:
            steps.append(cls(cast(value)))
        except ValueError as exc:
            raise FortifyError(f"bad value in preprocessing step {part!r}: {exc}") from exc
    return steps


def parse_detectors(spec: str) -> list[str]:
    """``"squeeze,mahalanobis"`` -> names, each checked against ``DETECTORS``."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise FortifyError(f"unknown detector(s) {unknown}; choose from {', '.join(DETECTORS)}")
    return names


def calibration_data(
    dataset: str, n: int, split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The last ``n`` images of ``split`` of ``dataset`` (fewer if it has fewer), labels and a record."""
    x, y = datasets.load(dataset, split)
    start = max(0, x.shape[0] - n)
    return x[start:], y[start:], {"dataset": dataset, "split": split, "start": start, "n": x.shape[0] - start}


def calibration_overlap(guard: Guard, dataset: str, split: str, n_eval: int) -> str | None:
    """Why evaluating the first ``n_eval`` images of ``split`` would score calibration images, or None."""
    source = (guard.calibration or {}).get("source")
    if not isinstance(source, dict) or source.get("dataset") != dataset or source.get("split") != split:
        return None
    start = source.get("start")
    if isinstance(start, int) and n_eval > start:
        return (
            f"the guard was calibrated on {split} images {start}.. of {dataset}; evaluating the first "
            f"{n_eval} would score calibration images (use --n {start} or fewer)"
        )
    return None


def _loaded(model: str | Path | Classifier, device: str | torch.device | None) -> Classifier:
    if isinstance(model, Classifier):
        return model if device is None else model.to(device)
    return zoo.load(model, device=device)


def build_guard(
    models: str | Path | Classifier | Sequence[str | Path | Classifier],
    *,
    calibrate: str,
    n: int = DEFAULT_CALIBRATION_N,
    fpr: float = DEFAULT_FPR,
    reject_fpr: float | None = DEFAULT_REJECT_FPR,
    detectors: Sequence[str] = DEFAULT_DETECTORS,
    preprocess: Sequence[Preprocessor] | str = (),
    combine: str = "mean_probs",
    confidence_threshold: float = 0.0,
    split: str = "test",
    strip_overlays: int = 16,
    strip_overlay: str = "add",
    device: str | torch.device | None = None,
) -> Guard:
    """Put models behind ``preprocess`` and ``detectors`` and calibrate the guard on held-out images of
    the dataset ``calibrate`` (see the module docstring). A model is a fortify model file, or a
    ``Classifier`` already loaded (e.g. the user's own code, by the CLI's ``--model pkg.module:factory``).
    A ``"strip"`` detector superimposes ``strip_overlays`` clean train images (``strip_overlay``: ``add``,
    the paper's, or ``blend``)."""
    given = [models] if isinstance(models, (str, Path, Classifier)) else list(models)
    if not given:
        raise FortifyError("build_guard needs at least one model")
    clfs = [_loaded(m, device) for m in given]
    info = datasets.info(calibrate)
    for item, clf in zip(given, clfs, strict=True):
        meta = clf.metadata or {}
        shape, classes = meta.get("input_shape", info.shape), meta.get("num_classes", clf.num_classes)
        if tuple(shape) != tuple(info.shape) or classes != info.num_classes:
            name = item if not isinstance(item, Classifier) else meta.get("arch", "a model")
            raise FortifyError(
                f"{name} takes inputs {tuple(shape)} with {classes} classes, but "
                f"{calibrate} has inputs {tuple(info.shape)} with {info.num_classes} classes"
            )
    steps = parse_preprocess(preprocess) if isinstance(preprocess, str) else list(preprocess)
    chosen: list[Detector | str] = list(detectors)
    pool_record: dict[str, Any] = {}
    if "strip" in chosen:
        pool, _ = datasets.load(calibrate, "train", n=STRIP_POOL_N)
        strip = STRIP(None, pool, n_overlays=strip_overlays, overlay=strip_overlay)
        chosen = [strip if d == "strip" else d for d in chosen]
        pool_record = {"strip_pool": {"dataset": calibrate, "split": "train", "n": int(pool.shape[0])}}
    guard = Guard(
        clfs,
        combine=combine,
        preprocess=steps,
        detectors=chosen,
        confidence_threshold=confidence_threshold,
        input_shape=info.shape,
    )
    x, y, source = calibration_data(calibrate, n, split)
    guard.calibrate(x, fpr=fpr, y=y, reject_fpr=reject_fpr)
    guard.calibration = {**(guard.calibration or {}), "source": source, **pool_record}
    return guard
