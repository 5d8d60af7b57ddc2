"""Defenses that compose into a ``Classifier``: preprocessing, ensembles, defensive distillation.

Every component declares ``differentiable`` and ``randomized`` so that adaptive evaluation knows to use
BPDA (non-differentiable parts replaced by a straight-through approximation) and EOT (gradients
averaged over random draws). Adversarial training lives in ``fortify.training`` (``ft.train(method=...)``).

>>> defended = ft.defenses.defend(clf, preprocess=[ft.defenses.JPEG(75), ft.defenses.BitDepth(4)])
>>> defended.differentiable, defended.randomized
(False, False)
"""

from fortify.defenses.defend import DefendedClassifier, defend
from fortify.defenses.distillation import DistillTraining, TemperatureTraining, defensive_distillation
from fortify.defenses.ensemble import Ensemble
from fortify.defenses.jpeg import JPEG
from fortify.defenses.preprocess import BitDepth, GaussianNoise, MedianFilter, Preprocessor
from fortify.defenses.transforms import RandomResizePad, RandomRotation

__all__ = [
    "defend",
    "DefendedClassifier",
    "Ensemble",
    "Preprocessor",
    "JPEG",
    "BitDepth",
    "MedianFilter",
    "GaussianNoise",
    "RandomResizePad",
    "RandomRotation",
    "defensive_distillation",
    "TemperatureTraining",
    "DistillTraining",
]
