"""certified_accuracy: the curve, the Result it lands in, and the shard seam for scale-out."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.certify import ABSTAIN, Smooth, certification_result, certified_accuracy, certify_samples
from tests.certify.constructed import centers, threshold_classifier

SIGMA = 0.5
RADII = [0.0, 0.2, 0.4, 0.6]


@pytest.fixture(scope="module")
def smooth() -> Smooth:
    # P(class 0) = 0.9 at every input: true radius 0.5 * Phi^-1(0.9) ~ 0.64 for label 0
    return Smooth(threshold_classifier(0.9, SIGMA), SIGMA, seed=0)


def test_result_holds_the_documented_certification_section(smooth: Smooth) -> None:
    y = torch.tensor([0, 0, 0, 1, 1, 0])
    result = certified_accuracy(smooth, centers(6), y, radii=RADII, n0=20, n=300, alpha=0.01, dataset="toy")
    section = result.sections["certification"]
    assert result.kind == "certification" and result.n_samples == 6 and result.seed == 0
    assert {
        "sigma",
        "n0",
        "n",
        "alpha",
        "max_radius",
        "radii",
        "certified_accuracy",
        "abstain_rate",
        "samples",
    } <= set(section)
    assert (
        section["sigma"] == SIGMA and section["n0"] == 20 and section["n"] == 300 and section["alpha"] == 0.01
    )
    samples = section["samples"]
    assert [s["index"] for s in samples] == list(range(6))
    assert all(set(s) >= {"index", "label", "prediction", "radius", "correct"} for s in samples)
    for s in samples:
        assert s["correct"] == (s["prediction"] == s["label"])
        assert (s["radius"] == 0.0) if s["prediction"] == ABSTAIN else s["radius"] > 0
    expected = [sum(s["correct"] and s["radius"] >= r for s in samples) / 6 for r in RADII]
    assert section["certified_accuracy"] == expected
    assert section["certified_accuracy"] == sorted(section["certified_accuracy"], reverse=True)
    assert section["abstain_rate"] == sum(s["prediction"] == ABSTAIN for s in samples) / 6
    assert result.clean_accuracy == expected[0]
    assert 0 < section["certified_accuracy"][0] <= 4 / 6  # the two samples labelled 1 are never correct


def test_result_survives_a_json_round_trip(smooth: Smooth) -> None:
    result = certified_accuracy(
        smooth, centers(3), torch.zeros(3, dtype=torch.long), radii=RADII, n0=10, n=100
    )
    again = ft.Result.from_json(result.to_json())
    assert again.sections["certification"] == result.sections["certification"]


def test_shards_certified_separately_reduce_to_the_full_run(smooth: Smooth) -> None:
    x, y = centers(5), torch.tensor([0, 1, 0, 0, 1])
    full = certified_accuracy(smooth, x, y, radii=RADII, n0=10, n=200, alpha=0.01)
    shards = [[3, 4], [0, 1, 2]]
    samples = []
    for idx in shards:
        samples += certify_samples(smooth, x[idx], y[idx], n0=10, n=200, alpha=0.01, indices=idx)
    reduced = certification_result(samples, smooth, n0=10, n=200, alpha=0.01, radii=RADII)
    assert reduced.sections["certification"]["samples"] == full.sections["certification"]["samples"]
    assert (
        reduced.sections["certification"]["certified_accuracy"]
        == full.sections["certification"]["certified_accuracy"]
    )


@pytest.mark.parametrize("radii", [[], [-0.1], [float("inf")], [float("nan")]])
def test_bad_radii_are_refused(smooth: Smooth, radii: list[float]) -> None:
    with pytest.raises(ft.FortifyError, match="radii"):
        certified_accuracy(smooth, centers(1), torch.zeros(1, dtype=torch.long), radii=radii, n0=10, n=10)


def test_bad_labels_and_counts_are_refused(smooth: Smooth) -> None:
    with pytest.raises(ft.FortifyError, match="labels"):
        certified_accuracy(smooth, centers(2), torch.zeros(3, dtype=torch.long), n0=10, n=10)
    with pytest.raises(ft.FortifyError, match="n0"):
        certified_accuracy(smooth, centers(2), torch.zeros(2, dtype=torch.long), n0=0, n=10)
