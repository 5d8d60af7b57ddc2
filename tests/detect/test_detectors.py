"""Detectors: scores and flags with the promised shapes, calibration at a target false-positive rate."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.defenses import BitDepth, MedianFilter, defend
from fortify.detect import Detector, FeatureSqueezing


class MeanIntensity(Detector):
    """Scores each input by its mean value: a known score distribution for calibration checks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).mean(dim=1)


def test_scores_and_flags_have_one_entry_per_input(tiny_cnn):
    clf, x, _ = tiny_cnn
    det = FeatureSqueezing(clf).calibrate(x[:100])
    scores, flagged = det.score(x[:7]), det.flagged(x[:7])
    assert scores.shape == (7,) and scores.is_floating_point()
    assert flagged.shape == (7,) and flagged.dtype == torch.bool
    assert torch.equal(flagged, det.scores(x[:7]) > det.threshold)
    assert ((scores >= 0) & (scores <= 2)).all(), "an L1 distance between two distributions"


@pytest.mark.parametrize("fpr", [0.05, 0.2])
def test_calibration_gives_the_requested_false_positive_rate_on_fresh_clean_data(tiny_cnn, fpr):
    clf, _, _ = tiny_cnn
    x_cal, _ = ft.data.make_synthetic(1000, seed=10)
    x_fresh, _ = ft.data.make_synthetic(1000, seed=11)
    det = FeatureSqueezing(clf, [BitDepth(2)]).calibrate(x_cal, fpr=fpr)
    assert int(det.flagged(x_cal).sum()) == int(fpr * 1000)
    # binomial sampling error of both sets: 3 standard deviations of the difference of two rates
    slack = 3 * (2 * fpr * (1 - fpr) / 1000) ** 0.5
    assert abs(float(det.flagged(x_fresh).float().mean()) - fpr) <= slack


def test_calibration_flags_exactly_fpr_of_the_calibration_set():
    x = torch.rand(400, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    det = MeanIntensity().calibrate(x, fpr=0.1)
    assert det.calibrated and det.describe()["fpr"] == 0.1
    assert int(det.flagged(x).sum()) == 40


def test_squeezers_set_the_flags_and_take_the_classifier_bounds(tiny_cnn):
    clf, _, _ = tiny_cnn
    assert not FeatureSqueezing(clf).differentiable, "bit-depth reduction has no useful gradient"
    smooth = FeatureSqueezing(clf, [MedianFilter(2)])
    assert smooth.differentiable and not smooth.randomized
    wide = ft.Classifier(clf.module, num_classes=4, bounds=(0.0, 255.0))
    assert FeatureSqueezing(wide).squeezers[0].bounds == (0.0, 255.0)


def test_bad_inputs_are_refused_clearly(tiny_cnn):
    clf, x, _ = tiny_cnn
    det = FeatureSqueezing(clf)
    with pytest.raises(ft.FortifyError, match="not calibrated"):
        det.flagged(x[:4])
    for fpr in (0.0, 1.0, -0.1, 1.5, True, "5%"):
        with pytest.raises(ft.FortifyError, match="fpr must be a fraction"):
            det.calibrate(x, fpr=fpr)
    with pytest.raises(ft.FortifyError, match="needs at least 100 clean samples, got 50"):
        det.calibrate(x[:50], fpr=0.01)
    for bad in (x[0, 0, 0], x[:0]):
        with pytest.raises(ft.FortifyError, match="non-empty batch"):
            det.score(bad)
    with pytest.raises(ft.FortifyError, match="threshold must be a finite number"):
        det.threshold = float("nan")
    with pytest.raises(TypeError, match="protects a fortify Classifier"):
        FeatureSqueezing(clf.module)
    with pytest.raises(TypeError, match="Preprocessors"):
        FeatureSqueezing(clf, [torch.nn.Identity()])
    with pytest.raises(ft.FortifyError, match="at least one squeezer"):
        FeatureSqueezing(clf, [])


def test_a_defended_model_with_a_detector_keeps_its_logits_and_flags_like_its_detector(tiny_cnn):
    clf, x, _ = tiny_cnn
    det = FeatureSqueezing(clf, [BitDepth(2)]).calibrate(x[:100])
    defended = defend(clf, detector=det)
    assert isinstance(defended, ft.defenses.DefendedClassifier) and defended.detector is det
    assert torch.equal(defended.logits(x), clf.logits(x))
    assert torch.equal(defended.flagged(x), det.flagged(x))
    assert defended.describe()["detector"]["name"] == "FeatureSqueezing"
    with pytest.raises(TypeError, match="fortify.detect Detector"):
        defend(clf, detector=BitDepth(2))
    with pytest.raises(ft.FortifyError, match="no detector"):
        defend(clf, preprocess=[BitDepth(5)]).flagged(x)
