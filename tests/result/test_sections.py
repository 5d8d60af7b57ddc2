"""Typed sections (schema 1.3): one shape each, checked when a Result is built or read; older shapes
are read and brought to it."""

from __future__ import annotations

import json

import pytest

import fortify as ft
from fortify.result import SCHEMA_VERSION
from fortify.result.readers import certification_curve, certified_accuracy_at


def test_a_certification_curve_written_before_1_3_is_read_as_radii_and_accuracies():
    old = {
        "schema_version": "1.2",
        "kind": "certification",
        "sections": {
            "certification": {
                "sigma": 0.25,
                "curve": [
                    {"radius": 0.5, "certified_accuracy": 0.4},
                    {"radius": 0.0, "certified_accuracy": 0.8},
                ],
            }
        },
    }
    result = ft.Result.from_json(json.dumps(old))
    section = result.sections["certification"]
    assert section == {"sigma": 0.25, "radii": [0.0, 0.5], "certified_accuracy": [0.8, 0.4]}
    curve = certification_curve(result)
    assert curve is not None and curve.xs == [0.0, 0.5] and curve.ys == [0.8, 0.4]
    assert certified_accuracy_at(result, 0.25) == 0.4
    assert SCHEMA_VERSION == "1.7" and result.schema_version == "1.2"


@pytest.mark.parametrize(
    "sections",
    [
        {"certification": {"radii": "not a list"}},
        {"certification": {"sigma": 0.25, "surprise": 1}},
        {"certification": {"samples": [{"radius": 0.1, "correct": True, "extra": 0}]}},
        {"training": {"epochs": [{"epoch": "first"}]}},
    ],
)
def test_a_section_of_another_shape_is_refused(sections):
    document = {"schema_version": SCHEMA_VERSION, "sections": sections}
    with pytest.raises(ft.FortifyError, match="not a valid fortify result: .*sections"):
        ft.Result.from_json(json.dumps(document))


def test_sections_of_later_capabilities_are_kept_as_they_come():
    result = ft.Result(sections={"audit": {"anything": [1, 2]}})
    assert ft.Result.from_json(result.to_json()).sections == {"audit": {"anything": [1, 2]}}


def test_a_detector_calibrated_with_a_source_records_it_in_every_result(tiny_cnn):
    clf, x, y = tiny_cnn
    source = {"dataset": "synthetic", "split": "train", "start": 0, "n": 64}
    detector = ft.detect.FeatureSqueezing(clf).calibrate(x[:64], fpr=0.1, source=source)
    result = ft.evaluate(ft.defenses.defend(clf, detector=detector), x[64:72], y[64:72], ft.Linf(0.1))
    assert result.detector is not None and result.detector["calibration"] == source
    again = ft.Result.from_json(result.to_json())
    assert again.detector is not None and again.detector["calibration"] == source
