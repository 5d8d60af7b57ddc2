"""Certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019).

Examples:
    >>> smooth = ft.certify.Smooth(clf, sigma=0.25)
    >>> prediction, radius, _ = smooth.certify(x, n0=100, n=10_000, alpha=0.001)
    >>> result = ft.certify.certified_accuracy(smooth, x, y, radii=[0, 0.25, 0.5], n=10_000)
    >>> result.sections["certification"]["certified_accuracy"]
"""

from fortify.certify.accuracy import (
    DEFAULT_RADII,
    accuracy_at,
    certification_result,
    certified_accuracy,
    certify_samples,
)
from fortify.certify.attackable import NoiseAveraged
from fortify.certify.smooth import ABSTAIN, Certificate, Smooth
from fortify.certify.statistics import (
    binomial_pvalue,
    certified_radius,
    lower_confidence_bound,
    max_certifiable_radius,
)

__all__ = [
    "ABSTAIN",
    "Certificate",
    "Smooth",
    "NoiseAveraged",
    "certified_accuracy",
    "certify_samples",
    "certification_result",
    "accuracy_at",
    "DEFAULT_RADII",
    "binomial_pvalue",
    "lower_confidence_bound",
    "certified_radius",
    "max_certifiable_radius",
]
