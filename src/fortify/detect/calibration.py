"""Putting a calibrated detector in front of a model: which detector, and clean data it never scores.

``with_detector(clf, spec, dataset, split, n_scored)`` builds the detector a ``DetectorSpec`` asks for
(feature squeezing with the given squeezers), calibrates it at ``spec.fpr`` on clean images the
evaluation does not score (the first ``spec.calibration_n`` images of the dataset's *train* split,
those after the evaluated ones when the evaluation itself runs on the train split) and returns the
defended model and a ``CalibrationSource`` saying where it was calibrated; the detector records it
too, so every result of the model says so (``Result.detector["calibration"]``).
The CLI's ``--detector`` options and the runtime guard build on this.
"""

from __future__ import annotations

from dataclasses import dataclass

from fortify import data as datasets
from fortify.defenses import BitDepth, MedianFilter, defend
from fortify.defenses.preprocess import Preprocessor
from fortify.detect.squeeze import FeatureSqueezing
from fortify.model import Classifier
from fortify.types import FortifyError

DETECTORS = ("squeeze",)
DEFAULT_CALIBRATION_N = 1000
DEFAULT_SQUEEZE_BITS = 5
DEFAULT_SQUEEZE_MEDIAN = 2
CALIBRATION_SPLIT = "train"


@dataclass(frozen=True)
class DetectorSpec:
    """A validated detector request: which detector, its squeezers and how to calibrate it.

    ``squeeze_bits`` / ``squeeze_median`` of 0 leave that squeezer out; ``fpr`` is the target
    false-positive rate on clean inputs, ``calibration_n`` the clean images to calibrate on.
    """

    name: str
    fpr: float
    calibration_n: int
    squeeze_bits: int
    squeeze_median: int

    def squeezers(self) -> list[Preprocessor]:
        bits = [BitDepth(self.squeeze_bits)] if self.squeeze_bits else []
        return bits + ([MedianFilter(self.squeeze_median)] if self.squeeze_median else [])


@dataclass(frozen=True)
class CalibrationSource:
    """Where the detector was calibrated: ``n`` images of ``split`` of ``dataset``, from ``start``."""

    dataset: str
    split: str
    start: int
    n: int

    def record(self) -> dict[str, object]:
        return {"dataset": self.dataset, "split": self.split, "start": self.start, "n": self.n}

    def describe(self) -> str:
        return f"{self.split} images {self.start}-{self.start + self.n - 1} of {self.dataset}"


def with_detector(
    clf: Classifier, spec: DetectorSpec, dataset: str, split: str, n_scored: int
) -> tuple[Classifier, CalibrationSource]:
    """``clf`` behind the detector ``spec`` asks for, calibrated on clean training images not scored.

    The evaluation scores the first ``n_scored`` images of ``split``; calibration takes the first
    ``spec.calibration_n`` train images, skipping the first ``n_scored`` when ``split`` is train too.
    Raises ``FortifyError`` when no such images are left.
    """
    start = n_scored if split == CALIBRATION_SPLIT else 0
    x, _ = datasets.load(dataset, CALIBRATION_SPLIT, n=start + spec.calibration_n)
    x = x[start:]
    if x.shape[0] == 0:
        raise FortifyError(
            f"no {CALIBRATION_SPLIT} images of {dataset} are left to calibrate the detector on after the "
            f"{n_scored} evaluated ones; evaluate on --split test or with a smaller --n"
        )
    source = CalibrationSource(dataset, CALIBRATION_SPLIT, start, x.shape[0])
    detector = FeatureSqueezing(clf, spec.squeezers()).to(clf.device)
    detector.calibrate(x.to(clf.device), fpr=spec.fpr, batch_size=clf.batch_size, source=source.record())
    return defend(clf, detector=detector), source
