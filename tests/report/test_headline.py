"""The top of the report: one Result in its own terms, several at their most pessimistic above a table
of every measurement, whatever their order; a certificate read as a certificate; the gate's verdict."""

from __future__ import annotations

import itertools
import re

import fortify as ft
from fortify.report.headline import headline
from fortify.report.sections import pct
from fortify.result.gate_record import CheckRecord, GatedFile, GateRecord
from tests.report.pages import certification, several, sweep
from tests.report.test_chromium import visible_text


def _card(page: str) -> str:
    found = re.search(
        r'<section id="summary">.*?<div class="metrics">(.*?)</div><div class="verdict', page, re.S
    )
    assert found is not None
    return found.group(1)


def test_several_results_give_the_same_summary_in_any_order():
    results = several()
    labels = ["sweep.json", "eval-0.01.json", "eval-0.03.json"]
    cards = {
        _card(ft.report.render_html([results[i] for i in order], labels=[labels[i] for i in order]))
        for order in itertools.permutations(range(3))
    }
    assert len(cards) == 1
    card = cards.pop()
    lowest = min([*results[0].sweep.robust_accuracy, results[1].robust_accuracy, results[2].robust_accuracy])
    assert f"{pct(lowest)}</div><div>lowest robust accuracy (worst case; linf 0.3, sweep.json)" in card
    assert f"{pct(min(r.clean_accuracy for r in results))}</div><div>lowest clean accuracy" in card


def test_the_table_lists_every_measurement_of_every_result():
    results = several()
    text = visible_text(headline(results, ["a", "b", "c"]))
    for eps, accuracy in zip(results[0].sweep.epsilons, results[0].sweep.robust_accuracy, strict=True):
        assert f"a sweep (min-norm+suite) linf {eps:g}" in text and pct(accuracy) in text
    assert (
        f"b evaluation linf 0.01 20 {pct(results[1].clean_accuracy)} {pct(results[1].robust_accuracy)}"
        in text
    )


def test_a_sweep_alone_shows_its_whole_curve_at_the_top():
    result = sweep()[0]
    text = visible_text(headline([result], ["sweep"]))
    assert all(f"linf {eps:g}" in text for eps in result.sweep.epsilons)


def test_a_certificate_is_read_as_a_certificate():
    result = certification()[0]
    section = result.sections["certification"]
    text = visible_text(ft.report.render_html(result))
    assert "robust accuracy" not in text and "—" not in text.split("Diagnostics")[0]
    assert "clean accuracy" not in text  # certified accuracy at radius 0 is the smoothed accuracy
    assert f"{pct(section['certified_accuracy'][0])} smoothed accuracy (certified at radius 0" in text
    for radius, accuracy in zip(section["radii"][1:], section["certified_accuracy"][1:], strict=True):
        assert f"{pct(accuracy)} certified accuracy at L2 {radius:g}" in text
        assert f"{radius:g} {pct(accuracy)}" in text  # the radius table
    assert "Only one" not in text and "Accuracy against epsilon" not in text
    assert (
        f"noise level sigma {section['sigma']:g}" in text and f"estimation draws n {section['n']:,}" in text
    )
    assert (
        f"selection draws n0 {section['n0']:,}" in text
        and f"alpha (per certificate) {section['alpha']:g}" in text
    )
    assert f"abstain rate {pct(section['abstain_rate'])}" in text
    rate = result.timing["noise_samples_per_s"]
    assert f"noise_samples_per_s {rate:,.0f} per second" in text and f"{rate:.3f}s" not in text


def _record(passed: bool) -> GateRecord:
    checks = [
        CheckRecord(name="min clean accuracy", passed=True, measured="90.0%", required=">= 80.0%"),
        CheckRecord(
            name="min robust accuracy at eps 0.1", passed=passed, measured="40.0%", required=">= 50.0%"
        ),
    ]
    files = [GatedFile(path="eval.json", sha256="a" * 64)]
    return GateRecord(policy="release.yaml", passed=passed, results=files, checks=checks)


def test_the_gate_verdict_is_on_the_page():
    result = several()[1]
    failed = ft.report.render_html(result, gate=_record(False))
    verdict = re.search(r'<div id="gate">.*?<div class="verdict (\w+)">(.*?)</div>', failed, re.S)
    assert verdict is not None and verdict.groups() == (
        "bad",
        "GATE FAILED: 1 of 2 checks of release.yaml failed",
    )
    assert "min robust accuracy at eps 0.1" in failed and "eval.json" in failed
    assert "GATE PASSED: all 2 checks of release.yaml passed" in ft.report.render_html(
        result, gate=_record(True)
    )
    assert '<div id="gate">' not in ft.report.render_html(result)
