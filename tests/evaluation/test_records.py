"""Per-sample records, slices, calibration and cost accounting in the Result (schema 1.1)."""

from __future__ import annotations

import json

import pytest
import torch

import fortify as ft
from fortify.evaluation.summaries import calibration, expected_calibration_error, slices


@pytest.fixture(scope="module")
def result(tiny_cnn):
    clf, x, y = tiny_cnn
    groups = ["even" if i % 2 == 0 else "odd" for i in range(24)]
    return ft.evaluate(clf, x[:24], y[:24], ft.Linf(0.2), groups=groups, class_names=["a", "b", "c", "d"])


def test_samples_carry_confidences_clean_and_adversarial(result):
    for s in result.samples:
        assert 0 < s.clean_confidence <= 1
        assert (s.adv_confidence is not None) == s.clean_correct
    broken = [s for s in result.samples if s.clean_correct and not s.robust]
    assert broken and all(s.broken_by and s.adv_pred != s.label for s in broken)


def test_slices_per_class_and_group_add_up(result):
    classes = [s for s in result.slices if s.kind == "class"]
    groups = [s for s in result.slices if s.kind == "group"]
    assert {s.key for s in classes} <= {"a", "b", "c", "d"} and sum(s.n for s in classes) == 24
    assert [g.key for g in groups] == ["even", "odd"] and sum(g.n for g in groups) == 24
    weighted = sum(s.n * s.robust_accuracy for s in classes) / 24
    assert weighted == pytest.approx(result.robust_accuracy)


def test_calibration_histograms_cover_every_sample(result):
    cal = result.calibration
    assert sum(cal.clean_histogram) == sum(cal.adversarial_histogram) == 24
    assert len(cal.bin_edges) == cal.bins + 1 and 0 <= cal.ece_clean <= 1 and 0 <= cal.ece_adversarial <= 1


def test_expected_calibration_error_matches_a_hand_computation():
    conf = torch.tensor([0.95, 0.95, 0.55, 0.55])
    correct = torch.tensor([True, False, True, True])
    # bin 0.9-1.0: accuracy 0.5 vs confidence 0.95; bin 0.5-0.6: accuracy 1.0 vs 0.55
    assert expected_calibration_error(conf, correct) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    assert expected_calibration_error(torch.tensor([]), torch.tensor([], dtype=torch.bool)) == 0.0
    cal = calibration(conf, correct, conf, correct, bins=2)
    assert cal.clean_histogram == [0, 4]


def test_slices_name_classes_by_label_without_names():
    y = torch.tensor([0, 1, 1])
    out = slices(y, torch.tensor([True, True, False]), torch.tensor([False, True, False]), None)
    assert [(s.key, s.n, s.clean_accuracy) for s in out] == [("0", 1, 1.0), ("1", 2, 0.5)]


def test_attack_records_count_model_passes_per_sample(result):
    pgd = result.attack("pgd")
    assert 1 <= pgd.backward_passes <= pgd.forward_passes <= 25
    assert result.attack("fgsm").backward_passes == pytest.approx(1.0)


def test_results_written_by_schema_1_0_still_load(result):
    old = json.loads(result.to_json())
    old["schema_version"] = "1.0"
    for key in ("slices", "calibration", "sweep", "gallery"):
        old.pop(key)
    for sample in old["samples"]:
        for key in ("clean_confidence", "adv_confidence", "iterations", "min_distance"):
            sample.pop(key)
    loaded = ft.Result.from_json(json.dumps(old))
    assert loaded.calibration is None and loaded.samples[0].clean_confidence is None
    assert ft.Result.from_json(result.to_json()) == result
