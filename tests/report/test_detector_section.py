"""The report's detector section: its numbers when the result has a detector, escaped; else absent."""

from __future__ import annotations

import re

import fortify as ft
from tests.report.factories import HOSTILE, make_result

RECORD = {
    "name": "FeatureSqueezing",
    "differentiable": False,
    "randomized": False,
    "threshold": 0.4321,
    "fpr": 0.05,
    "squeezers": [
        {"name": "BitDepth", "bounds": [0.0, 1.0], "bits": 5},
        {"name": "MedianFilter", "bounds": [0.0, 1.0], "size": 2},
    ],
    "in_objective": True,
    "clean_flag_rate": 0.06,
    "adversarial_flag_rate": 0.125,
    "calibration": {"dataset": "fashion-mnist", "split": "train", "start": 0, "n": 1000},
}


def detector_rows(page: str) -> dict[str, str]:
    section = re.search(r'<section id="detector">(.*?)</section>', page, re.S)
    assert section is not None
    return dict(re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", section.group(1)))


def test_a_result_with_a_detector_shows_its_threshold_rates_and_how_it_was_judged():
    page = ft.report.render_html(make_result(detector=RECORD))
    rows = detector_rows(page)
    assert rows["detector"] == "FeatureSqueezing (BitDepth bits=5, MedianFilter size=2)"
    assert rows["threshold"] == "0.4321"
    assert rows["target false-positive rate"] == "5.0%"
    assert rows["clean flag rate (evaluated samples)"] == "6.0%"
    assert rows["adversarial flag rate (final attack points)"] == "12.5%"
    assert rows["calibrated on"] == "1000 clean train images of fashion-mnist, from index 0"
    assert "misclassified and not flagged by the detector, with the detector in the attack objective" in page
    assert '<a href="#detector">detector</a>' in page


def test_the_section_is_absent_without_a_detector_and_survives_missing_fields():
    assert '<section id="detector">' not in ft.report.render_html(make_result())
    page = ft.report.render_html(make_result(detector={"name": "Custom", "in_objective": False}))
    rows = detector_rows(page)
    assert rows["detector"] == "Custom" and rows["threshold"] == "—" and "calibrated on" not in rows
    assert "NOT in the attack objective" in page


def test_detector_text_from_a_result_is_escaped():
    hostile = {**RECORD, "name": HOSTILE, "squeezers": [{"name": HOSTILE, "bits": HOSTILE}]}
    hostile["calibration"] = {"dataset": HOSTILE, "split": "train", "start": 0, "n": 10}
    page = ft.report.render_html(make_result(detector=hostile))
    assert "<script" not in page
    rows = detector_rows(page)
    assert rows["detector"].count("&lt;script&gt;") == 3 and "&lt;script&gt;" in rows["calibrated on"]
