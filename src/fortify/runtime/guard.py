"""``ft.Guard``: models, preprocessing and detectors in front of a classifier, one verdict per input.

The guard predicts with its models (one, or an ensemble combined by ``combine``) behind its
preprocessing, scores every input with its detectors, and applies its policy: an input is

- ``REJECTED`` if it is not finite or lies outside the bounds (never scored: a malformed input is a
  signal, not a crash), or if some detector scores it above its *reject* threshold;
- ``REVIEW`` if some detector scores it above its *review* threshold, or the prediction's confidence is
  below ``confidence_threshold``;
- ``ACCEPTED`` otherwise.

``calibrate(x_clean, fpr=0.05)`` sets the review thresholds *jointly*: every detector at the same
per-detector rate ``q``, chosen so that the guard as a whole sends a fraction ``fpr`` of the clean
calibration inputs to review (the union of its rules, the confidence rule included); the reject
thresholds likewise at ``reject_fpr``. The policy lives here, not in the detectors.

The artifact that is deployed is the artifact that is evaluated: ``ft.evaluate(guard, ...)`` attacks
``guard.classifier``, the same pipeline with the whole policy as its detector (``GuardPolicy``), so
adaptive attacks aim for "misclassified and ACCEPTED" through BPDA and EOT where the parts need them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fortify._validate import from_numpy, is_number
from fortify.data.provenance import tensor_fingerprint
from fortify.defenses import DefendedClassifier, Ensemble, Preprocessor, defend
from fortify.detect import Disagreement
from fortify.detect.base import DEFAULT_FPR, Detector, check_fpr, threshold_at
from fortify.model import Classifier
from fortify.runtime.detectors import detector_name, make_detector
from fortify.runtime.policy import GuardPolicy
from fortify.runtime.verdict import UNSCORED, Status, Verdict
from fortify.types import FortifyError

DEFAULT_REJECT_FPR = 0.005
COMBINE = ("mean_probs", "mean_logits", "vote")
_SEARCH_STEPS = 40


class Guard:
    """A deployable guard: ``Guard(models, preprocess=..., detectors=..., confidence_threshold=...)``.

    ``models``: one ``Classifier`` or several (same classes and bounds), combined by ``combine``
    (``"mean_probs"``, ``"mean_logits"``, ``"vote"``); ``preprocess``: ``fortify.defenses``
    components applied before the models; ``detectors``: ``fortify.detect`` detectors or their names
    (``"squeeze"``, ``"mahalanobis"``, ``"confidence"``, ``"entropy"``, ``"input-stats"``,
    ``"disagreement"``), bound to the guard's pipeline; ``confidence_threshold`` in ``[0, 1)``: inputs
    predicted with a lower softmax probability go to REVIEW; ``input_shape``: the shape of one input
    (taken from the models' metadata or the calibration data when not given).

    >>> guard = ft.Guard([clf], preprocess=[ft.defenses.MedianFilter(2)], detectors=["squeeze"])
    >>> guard.calibrate(x_val, fpr=0.05)
    >>> [v.status for v in guard(x)]
    """

    def __init__(
        self,
        models: Classifier | Sequence[Classifier],
        *,
        combine: str = "mean_probs",
        preprocess: Sequence[Preprocessor] = (),
        detectors: Sequence[Detector | str] = (),
        confidence_threshold: float = 0.0,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        members = [models] if isinstance(models, Classifier) else list(models)
        if not members or not all(isinstance(m, Classifier) for m in members):
            raise FortifyError("a Guard needs one or more fortify Classifiers as models")
        if combine not in COMBINE:
            raise FortifyError(f"unknown combine {combine!r}; choose one of {list(COMBINE)}")
        if isinstance(preprocess, Preprocessor) or not all(isinstance(p, Preprocessor) for p in preprocess):
            raise FortifyError("preprocess must be a list of fortify.defenses components")
        ct = confidence_threshold
        if not is_number(ct) or not 0.0 <= ct < 1.0:
            raise FortifyError(f"confidence_threshold must be in [0, 1), got {ct!r}")
        self.models = members
        self.combine = combine
        self.preprocess = list(preprocess)
        self.confidence_threshold = float(ct)
        model: Classifier = Ensemble(members, mode=combine) if len(members) > 1 else members[0]
        self.pipeline: Classifier = defend(model, self.preprocess) if self.preprocess else model
        self.detectors = [self._bound(d) for d in detectors]
        names = [detector_name(d) for d in self.detectors]
        self.names = [n if names.count(n) == 1 else f"{n}-{i}" for i, n in enumerate(names)]
        self.reject_thresholds: list[float | None] = [None] * len(self.detectors)
        self.spreads: list[float] = [1.0] * len(self.detectors)
        self.calibration: dict[str, Any] | None = None
        self.result: Any = None
        self._classifier: DefendedClassifier | None = None
        shape = input_shape if input_shape is not None else _metadata_shape(members[0])
        self.input_shape: tuple[int, ...] | None = None if shape is None else tuple(int(s) for s in shape)

    def _bound(self, det: Detector | str) -> Detector:
        if isinstance(det, str):
            det = make_detector(det)
        if not isinstance(det, Detector):
            raise FortifyError(
                f"detectors must be fortify.detect Detectors or names, got {type(det).__name__}"
            )
        if det.name == "disagreement" and len(self.models) < 2:
            raise FortifyError("the disagreement detector needs a guard with two or more models")
        if isinstance(det, Disagreement):
            det._set(self.models)  # noqa: SLF001 - the guard's own members
        else:
            det.bind(self.pipeline)
        return det.eval()

    @property
    def num_classes(self) -> int:
        return self.pipeline.num_classes

    @property
    def bounds(self) -> tuple[float, float]:
        return self.pipeline.bounds

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    # calibration ---------------------------------------------------------------------------------

    def calibrate(
        self,
        x_clean: Tensor | np.ndarray,
        fpr: float = DEFAULT_FPR,
        *,
        y: Tensor | np.ndarray | None = None,
        reject_fpr: float | None = DEFAULT_REJECT_FPR,
        batch_size: int = 512,
    ) -> Guard:
        """Fit and threshold every detector on clean held-out inputs ``(n, *input_shape)``; returns self.

        Detectors that fit a model of clean data (Mahalanobis, input statistics) fit it on the first
        half of ``x_clean`` (with labels ``y``, or the guard's predictions); the thresholds are set on
        the second half (the whole set when no detector fits), so that the guard sends a fraction
        ``fpr`` of those inputs to REVIEW or REJECTED, and a fraction ``reject_fpr`` (None: no reject
        thresholds) to REJECTED. Needs ``1 / fpr`` threshold samples. NumPy ``x_clean`` / ``y`` are
        taken as ``fortify._validate.from_numpy`` takes them (float32, int64).
        """
        fpr = check_fpr(fpr)
        if reject_fpr is not None and check_fpr(reject_fpr, "reject_fpr") >= fpr:
            raise FortifyError(f"reject_fpr ({reject_fpr:g}) must be below fpr ({fpr:g})")
        x_clean = self._as_batch(x_clean, "x_clean")
        _, y = from_numpy(None, y)
        self.pipeline.check_input(x_clean)
        fits = any(d.fits for d in self.detectors)
        n = x_clean.shape[0]
        need = math.ceil(1.0 / fpr) * (2 if fits else 1)
        if n < need:
            raise FortifyError(
                f"calibrating the guard at fpr={fpr:g} needs at least {need} clean inputs, got {n}"
            )
        x_thr = x_clean
        if fits:
            half = n // 2
            y_fit = None if y is None else torch.as_tensor(y)[:half]
            for det in self.detectors:
                if det.fits:
                    det.fit(x_clean[:half], y_fit)
            x_thr = x_clean[half:]
        scores = self._score_matrix(x_thr, batch_size)
        if not bool(torch.isfinite(scores).all()):
            raise FortifyError("a detector gave NaN or infinite scores on the clean calibration inputs")
        low_conf = self._confidences(x_thr, batch_size) < self.confidence_threshold
        review, level = _joint_thresholds(scores, low_conf, fpr, "fpr")
        self.reject_thresholds = [None] * len(self.detectors)
        if reject_fpr is not None and self.detectors and x_thr.shape[0] >= math.ceil(1.0 / reject_fpr):
            no_conf = torch.zeros_like(low_conf)
            self.reject_thresholds = list(_joint_thresholds(scores, no_conf, reject_fpr, "reject_fpr")[0])
        for k, det in enumerate(self.detectors):
            det._threshold, det._fpr = review[k], level  # noqa: SLF001 - the joint calibration
            self.spreads[k] = max(float(scores[:, k].std()) if scores.shape[0] > 1 else 1.0, 1e-6)
        flagged = (scores > torch.tensor(review, dtype=scores.dtype)).any(dim=1) | low_conf
        self.calibration = {
            "n": int(n),
            "n_threshold": int(x_thr.shape[0]),
            "fpr": fpr,
            "reject_fpr": reject_fpr,
            "per_detector_fpr": level,
            "clean_review_rate": float(flagged.double().mean()),
            "fingerprint": tensor_fingerprint(x_clean),
        }
        if self.input_shape is None:
            self.input_shape = tuple(x_clean.shape[1:])
        self._classifier = None
        return self

    def _score_matrix(self, x: Tensor, batch_size: int) -> Tensor:
        if not self.detectors:
            return torch.zeros(x.shape[0], 0, dtype=torch.float64)
        device = self.pipeline.device
        with torch.no_grad():
            cols = [
                torch.cat([det.score(c.to(device)).double().cpu() for c in x.split(batch_size)])
                for det in self.detectors
            ]
        return torch.stack(cols, dim=1)

    @torch.no_grad()
    def _confidences(self, x: Tensor, batch_size: int) -> Tensor:
        device = self.pipeline.device
        return torch.cat(
            [
                self.pipeline(c.to(device)).softmax(dim=1).amax(dim=1).double().cpu()
                for c in x.split(batch_size)
            ]
        )

    # judging -------------------------------------------------------------------------------------

    def __call__(self, x: Tensor | np.ndarray, *, batch_size: int = 512) -> list[Verdict]:
        """One ``Verdict`` per input of ``x`` ``(N, *input_shape)`` (or one input ``input_shape``).

        ``x`` is a tensor or a NumPy array (a float array is taken as float32, as everywhere in fortify:
        ``fortify._validate.from_numpy``). Floating inputs of any precision are cast to the models'
        dtype; a wrong shape or a non-floating dtype (integer pixels: divide by 255) raises
        ``FortifyError``; non-finite or out-of-bounds inputs become REJECTED verdicts.
        """
        start = time.perf_counter()
        self._check_calibrated()
        x = self._as_batch(x, "x")
        valid, reasons = self._validity(x)
        labels = torch.full((x.shape[0],), UNSCORED, dtype=torch.long)
        confidence = torch.zeros(x.shape[0], dtype=torch.float64)
        scores = torch.zeros(x.shape[0], len(self.detectors), dtype=torch.float64)
        all_probs = torch.zeros(x.shape[0], self.num_classes)
        rows = valid.nonzero().squeeze(1)
        if rows.numel():
            xv = x[rows]
            with torch.no_grad():
                probs = torch.cat(
                    [
                        self.pipeline(c.to(self.pipeline.device)).softmax(dim=1).cpu()
                        for c in xv.split(batch_size)
                    ]
                )
            top = probs.max(dim=1)
            labels[rows], confidence[rows] = top.indices, top.values.double()
            all_probs[rows] = probs.float()
            scores[rows] = self._score_matrix(xv, batch_size)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        verdicts = [
            self._verdict(
                i, bool(valid[i]), reasons[i], int(labels[i]), float(confidence[i]), scores[i], elapsed_ms
            )
            for i in range(x.shape[0])
        ]
        return [
            replace(v, probabilities=all_probs[i].tolist()) if bool(valid[i]) else v
            for i, v in enumerate(verdicts)
        ]

    def _verdict(
        self, i: int, valid: bool, reason: str | None, label: int, conf: float, row: Tensor, ms: float
    ) -> Verdict:
        review = {n: float(d.threshold) for n, d in zip(self.names, self.detectors, strict=True)}
        reject = {n: t for n, t in zip(self.names, self.reject_thresholds, strict=True) if t is not None}
        if not valid:
            return Verdict(
                UNSCORED, 0.0, Status.REJECTED, [reason or "invalid input"], {}, review, reject, ms
            )
        scores = {n: float(row[k]) for k, n in enumerate(self.names)}
        rejected = [
            f"{n} score {scores[n]:.4g} > reject threshold {t:.4g}"
            for n, t in reject.items()
            if scores[n] > t
        ]
        flagged = [
            f"{n} score {scores[n]:.4g} > review threshold {t:.4g}"
            for n, t in review.items()
            if scores[n] > t
        ]
        if conf < self.confidence_threshold:
            flagged.append(f"confidence {conf:.3f} < {self.confidence_threshold:.3f}")
        status = Status.REJECTED if rejected else Status.REVIEW if flagged else Status.ACCEPTED
        return Verdict(label, conf, status, rejected or flagged, scores, review, reject, ms)

    def flagged(self, x: Tensor | np.ndarray) -> Tensor:
        """Boolean ``(N,)``: which inputs of ``x`` (a tensor or NumPy array) the guard would not ACCEPT."""
        return torch.tensor([not v.accepted for v in self(x)], dtype=torch.bool)

    def _as_batch(self, x: Tensor | np.ndarray, what: str) -> Tensor:
        x, _ = from_numpy(x, None)  # NumPy floats as float32; integer pixels refused naming the fix
        if not isinstance(x, Tensor):
            raise FortifyError(f"{what} must be a tensor or NumPy array, got {type(x).__name__}")
        if not x.is_floating_point():
            raise FortifyError(f"{what} must be floating point, got {x.dtype}")
        shape = self.input_shape
        if shape is not None and tuple(x.shape) == shape:
            x = x.unsqueeze(0)
        if x.dim() < 2 or x.shape[0] == 0 or (shape is not None and tuple(x.shape[1:]) != shape):
            expected = f"(N, {', '.join(map(str, shape))})" if shape is not None else "(N, ...)"
            raise FortifyError(f"{what} must have shape {expected}, got {tuple(x.shape)}")
        dtype = next(iter(self.pipeline.parameters()), torch.empty(0)).dtype
        return x.to(dtype)

    def _validity(self, x: Tensor) -> tuple[Tensor, list[str | None]]:
        low, high = self.bounds
        tol = 1e-5 * (high - low)
        flat = x.flatten(1)
        finite = torch.isfinite(flat).all(dim=1)
        inside = ((flat >= low - tol) & (flat <= high + tol)).all(dim=1)
        reasons: list[str | None] = [
            None
            if ok
            else "non-finite values (NaN or Inf)"
            if not fin
            else f"values outside bounds [{low:g}, {high:g}]"
            for ok, fin in zip((finite & inside).tolist(), finite.tolist(), strict=True)
        ]
        return finite & inside, reasons

    def _check_calibrated(self) -> None:
        if not self.calibrated:
            raise FortifyError("the guard is not calibrated: call guard.calibrate(x_clean, fpr=0.05) first")

    # evaluation ----------------------------------------------------------------------------------

    @property
    def classifier(self) -> DefendedClassifier:
        """The guard as one ``Classifier`` (its label; its policy as the detector) for ``ft.evaluate``."""
        self._check_calibrated()
        if self._classifier is None:
            policy = GuardPolicy(self.detectors, self.spreads, self.pipeline, self.confidence_threshold)
            model = self.pipeline.model if isinstance(self.pipeline, DefendedClassifier) else self.pipeline
            self._classifier = DefendedClassifier(model, self.preprocess, detector=policy)
        return self._classifier

    def as_classifier(self) -> Classifier:
        """``guard.classifier``: what ``ft.evaluate(guard, ...)`` attacks and judges."""
        return self.classifier

    def annotate_result(self, result: Any, x: Tensor, y: Tensor) -> Any:
        """Add ``sections["guard"]`` (``fortify.runtime.evaluation.guard_section``) to ``result``."""
        from fortify.runtime.evaluation import guard_section

        result.sections["guard"] = guard_section(self, result, x, y)
        return result

    def to(self, device: str | torch.device) -> Guard:
        for part in [*self.models, *self.detectors, *self.preprocess]:
            part.to(device)
        self._classifier = None
        return self

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: models, preprocessing, detectors with thresholds, policy, calibration."""
        return {
            "models": [m.describe() for m in self.models],
            "combine": self.combine,
            "preprocess": [p.describe() for p in self.preprocess],
            "detectors": [
                {**d.describe(), "key": n, "reject_threshold": r}
                for n, d, r in zip(self.names, self.detectors, self.reject_thresholds, strict=True)
            ]
            if self.calibrated
            else [{**d.describe(), "key": n} for n, d in zip(self.names, self.detectors, strict=True)],
            "confidence_threshold": self.confidence_threshold,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "num_classes": self.num_classes,
            "bounds": list(self.bounds),
            "calibration": self.calibration,
        }

    def save(self, directory: str, *, result: Any = None) -> None:
        """Write the guard as a bundle folder (see ``fortify.runtime.bundle``)."""
        from fortify.runtime.bundle import save_bundle

        save_bundle(self, directory, result=result)

    @classmethod
    def load(cls, directory: str, *, trust_code: bool = False) -> Guard:
        """Read a bundle written by ``save``, verifying every file's hash (and signature, with a key).

        ``trust_code=True`` lets a model built from the user's own code be rebuilt by importing it."""
        from fortify.runtime.bundle import load_bundle

        return load_bundle(directory, trust_code=trust_code)


def _joint_thresholds(scores: Tensor, base: Tensor, fpr: float, what: str) -> tuple[list[float], float]:
    """Per-detector thresholds at one common level ``q`` so that ``any(scores > t) | base`` flags at most
    a fraction ``fpr`` of the rows (the largest such ``q``, by bisection); returns ``(thresholds, q)``."""
    n, k = scores.shape
    if float(base.double().mean()) > fpr:
        raise FortifyError(
            f"the confidence threshold alone flags {float(base.double().mean()):.1%} of the clean "
            f"calibration inputs, above {what}={fpr:g}: lower confidence_threshold"
        )
    if k == 0:
        return [], 0.0

    def at(q: float) -> tuple[list[float], float]:
        ts = [threshold_at(scores[:, j], q) for j in range(k)]
        rate = float(((scores > torch.tensor(ts, dtype=scores.dtype)).any(dim=1) | base).double().mean())
        return ts, rate

    lo, hi = 0.0, fpr
    best = at(lo)[0]
    if at(hi)[1] <= fpr:
        return at(hi)[0], hi
    for _ in range(_SEARCH_STEPS):
        mid = (lo + hi) / 2
        ts, rate = at(mid)
        if rate <= fpr:
            lo, best = mid, ts
        else:
            hi = mid
    return best, lo


def _metadata_shape(clf: Classifier) -> Sequence[int] | None:
    meta = getattr(clf, "metadata", None)
    shape = meta.get("input_shape") if isinstance(meta, dict) else None
    return shape if isinstance(shape, list) and all(isinstance(s, int) for s in shape) else None
