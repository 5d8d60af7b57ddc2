"""The guard: one verdict per input, a policy calibrated jointly, malformed inputs as REJECTED verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fortify as ft
from fortify.result_gallery import decode_pixels
from fortify.runtime import UNSCORED, Guard, Status

from .conftest import calibration_set


def test_one_verdict_per_input_with_every_detector_scored(guard, tiny_cnn):
    _, x, y = tiny_cnn
    verdicts = guard(x[:20])
    assert len(verdicts) == 20
    for v in verdicts:
        assert set(v.scores) == set(guard.names) == set(v.thresholds)
        assert 0.0 <= v.confidence <= 1.0 and 0 <= v.label < 4
        assert (v.status is Status.ACCEPTED) == (not v.reasons)
        assert v.latency_ms > 0
        assert v.to_dict()["status"] in {"ACCEPTED", "REVIEW", "REJECTED"}
        assert abs(sum(v.probabilities) - 1) < 1e-5 and max(v.probabilities) == pytest.approx(v.confidence)
    labels = torch.tensor([v.label for v in verdicts])
    assert torch.equal(labels, guard.pipeline.predict(x[:20]))


def test_a_single_input_and_numpy_arrays_are_accepted(guard, tiny_cnn):
    _, x, _ = tiny_cnn
    one = guard(x[0])
    assert len(one) == 1
    assert guard(x[:3].numpy().astype(np.float64))[0].label == guard(x[:3])[0].label


def test_the_guard_takes_numpy_as_the_rest_of_fortify_does(guard, tiny_cnn):
    """NumPy floats as float32, integer labels as int64, through every public entry point: the same
    verdicts, thresholds and guard section as from tensors; integer pixels and float labels refused."""
    clf, x, y = tiny_cnn
    xn, yn = x[:16].double().numpy(), y[:16].numpy().astype(np.int32)
    assert [v.to_dict() | {"latency_ms": 0} for v in guard(xn)] == [
        v.to_dict() | {"latency_ms": 0} for v in guard(x[:16])
    ]
    assert torch.equal(guard.flagged(xn), guard.flagged(x[:16]))
    x_cal, y_cal = calibration_set(200, seed=5)
    from_arrays = Guard([clf], detectors=["confidence", "input-stats"]).calibrate(
        x_cal.double().numpy(), y=y_cal.numpy()
    )
    from_tensors = Guard([clf], detectors=["confidence", "input-stats"]).calibrate(x_cal, y=y_cal)
    assert [d.threshold for d in from_arrays.detectors] == [d.threshold for d in from_tensors.detectors]
    assert from_arrays.calibration == from_tensors.calibration
    threat = ft.Linf(0.1)
    arrays = ft.runtime.evaluate_guard(guard, xn, yn, threat, "quick", naive_attacks=("fgsm",))
    tensors = ft.runtime.evaluate_guard(guard, x[:16], y[:16], threat, "quick", naive_attacks=("fgsm",))
    assert arrays.robust_accuracy == tensors.robust_accuracy
    for key in ("clean_review_rate", "clean_accuracy", "adaptive_success_rate"):
        assert arrays.sections["guard"][key] == tensors.sections["guard"][key], key
    naive = [
        {k: v for k, v in r.sections["guard"]["naive"]["fgsm"].items() if k != "time_s"}
        for r in (arrays, tensors)
    ]
    assert naive[0] == naive[1]
    with pytest.raises(ft.FortifyError, match="pixels / 255"):
        guard(np.zeros((2, 1, 8, 8), dtype=np.uint8))
    with pytest.raises(ft.FortifyError, match="integer class indices"):
        Guard([clf], detectors=["input-stats"]).calibrate(x_cal.numpy(), y=y_cal.numpy().astype(np.float32))


def test_joint_calibration_holds_the_guard_false_positive_rate_on_fresh_clean_data(guard):
    cal = guard.calibration
    assert cal["clean_review_rate"] <= 0.05
    assert cal["per_detector_fpr"] < 0.05, "three detectors share the budget"
    x_fresh, _ = calibration_set(2000, seed=99)
    rate = float(guard.flagged(x_fresh).double().mean())
    slack = 3 * (2 * 0.05 * 0.95 / 400) ** 0.5  # 400 threshold samples, 2000 fresh ones
    assert abs(rate - 0.05) <= slack + 0.01


def test_reject_thresholds_are_stricter_than_review_thresholds(guard):
    for det, reject in zip(guard.detectors, guard.reject_thresholds, strict=True):
        assert reject is not None and reject >= det.threshold


def test_non_finite_and_out_of_range_inputs_are_rejected_not_scored(guard, tiny_cnn):
    _, x, _ = tiny_cnn
    bad = x[:4].clone()
    bad[0, 0, 0, 0] = float("nan")
    bad[1, 0, 3, 3] = float("inf")
    bad[2] += 1.5
    verdicts = guard(bad)
    for v, why in zip(verdicts[:3], ["non-finite", "non-finite", "outside bounds"], strict=True):
        assert v.status is Status.REJECTED and v.label == UNSCORED and why in v.reasons[0]
        assert v.scores == {}
    assert verdicts[3].label != UNSCORED


def test_wrong_shapes_dtypes_and_an_uncalibrated_guard_raise_clearly(guard, tiny_cnn):
    clf, x, _ = tiny_cnn
    with pytest.raises(ft.FortifyError, match=r"shape \(N, 1, 8, 8\)"):
        guard(torch.rand(2, 1, 9, 9))
    with pytest.raises(ft.FortifyError, match="floating point"):
        guard(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ft.FortifyError, match="not calibrated"):
        Guard([clf], detectors=["confidence"])(x[:2])
    with pytest.raises(ft.FortifyError, match="unknown detector"):
        Guard([clf], detectors=["nope"])
    with pytest.raises(ft.FortifyError, match="two or more models"):
        Guard([clf], detectors=["disagreement"])


def test_confidence_threshold_sends_unsure_predictions_to_review(tiny_cnn):
    clf, x, _ = tiny_cnn
    x_cal, _ = calibration_set()
    probs = clf.predict_proba(x_cal).amax(dim=1)
    cut = float(probs.quantile(0.03))
    guard = Guard([clf], confidence_threshold=cut).calibrate(x_cal, fpr=0.05)
    for v in guard(x):
        assert (v.confidence < cut) == (v.status is Status.REVIEW)
    with pytest.raises(ft.FortifyError, match="confidence threshold alone"):
        Guard([clf], confidence_threshold=float(probs.quantile(0.5))).calibrate(x_cal, fpr=0.05)


def test_an_ensemble_guard_scores_disagreement(tiny_cnn):
    clf, x, _ = tiny_cnn
    x_cal, y_cal = calibration_set()
    torch.manual_seed(3)
    other = ft.Classifier(ft.zoo.create("cnn-tiny", (1, 8, 8), 4), num_classes=4)
    ft.train(
        other, ft.data.load("synthetic", "train"), epochs=3, lr=3e-3, batch_size=64, seed=3, progress=False
    )
    guard = Guard([clf, other], detectors=["disagreement", "confidence"]).calibrate(x_cal, y=y_cal)
    verdicts = guard(x[:10])
    assert all("disagreement" in v.scores for v in verdicts)
    twin = Guard([clf, clf], detectors=["disagreement"]).calibrate(x_cal)
    assert all(v.scores["disagreement"] == pytest.approx(0.0, abs=1e-6) for v in twin(x[:5]))


def test_broken_means_misclassified_and_accepted_and_adaptive_beats_naive(guard, tiny_cnn):
    """ft.evaluate attacks the deployed guard with its policy in the objective: at least as many
    successes through the guard as points made against the bare model."""
    _, x, y = tiny_cnn
    threat = ft.Linf(0.3)
    result = ft.runtime.evaluate_guard(guard, x[:48], y[:48], threat, "quick", naive_attacks=("pgd",))
    section = result.sections["guard"]
    assert result.detector is not None and result.detector["in_objective"]
    assert "evade-detector" in [r.name for r in result.per_attack]
    naive = section["naive"]["pgd"]
    assert naive["fooled"] > 0.5, "PGD breaks the bare tiny CNN"
    assert section["adaptive_success_rate"] >= naive["success"] - 1e-9
    assert 0.0 <= section["clean_review_rate"] <= 1.0
    assert section["latency_ms"]["single_p50"] > 0
    # every sample the result calls broken is misclassified and ACCEPTED at some point: spot-check the
    # gallery's points, which are the evaluation's own adversarial points
    for entry in result.gallery or []:
        point = decode_pixels(entry.adversarial, entry.shape, entry.bounds)[None]
        verdict = guard(point)[0]
        if entry.adv_pred != entry.label:
            assert verdict.accepted and verdict.label == entry.adv_pred


def test_the_report_shows_the_guard_section(guard, tiny_cnn):
    _, x, y = tiny_cnn
    result = ft.runtime.evaluate_guard(guard, x[:16], y[:16], ft.Linf(0.3), "quick", naive_attacks=("fgsm",))
    page = ft.report.render_html(result)
    assert 'id="guard"' in page and "success through the guard" in page and "fgsm" in page
    again = ft.Result.from_json(result.to_json())
    assert again.sections["guard"]["naive"]["fgsm"]["n"] == result.sections["guard"]["naive"]["fgsm"]["n"]
