"""Runtime detectors of adversarial inputs and their calibration at a target false-positive rate.

A detector scores inputs (higher = more suspicious) and flags those above a threshold calibrated on
clean data; ``calibration.with_detector`` puts one, calibrated on clean data not scored, in front of a
model. Behind ``ft.defenses.defend(clf, ..., detector=det)`` it becomes part of a defended model,
and ``ft.evaluate`` then counts an attack as successful only when its point is misclassified *and* not
flagged, and puts the detector in the attack objective.

>>> det = ft.detect.FeatureSqueezing(clf).calibrate(x_clean, fpr=0.05)
>>> defended = ft.defenses.defend(clf, detector=det)
>>> ft.evaluate(defended, x, y, ft.Linf(0.1)).detector["adversarial_flag_rate"]
"""

from fortify.detect.base import DEFAULT_FPR, Detector
from fortify.detect.calibration import CalibrationSource, DetectorSpec, with_detector
from fortify.detect.confidence import Confidence
from fortify.detect.disagreement import Disagreement
from fortify.detect.input_stats import InputStatistics
from fortify.detect.mahalanobis import Mahalanobis
from fortify.detect.squeeze import FeatureSqueezing
from fortify.detect.strip import STRIP

__all__ = [
    "Detector",
    "FeatureSqueezing",
    "Mahalanobis",
    "Confidence",
    "InputStatistics",
    "Disagreement",
    "STRIP",
    "DEFAULT_FPR",
    "DetectorSpec",
    "CalibrationSource",
    "with_detector",
]
