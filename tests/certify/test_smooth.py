"""PREDICT and CERTIFY on constructed classifiers whose true top-class probability pA is known."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import binom

import fortify as ft
from fortify.certify import ABSTAIN, Smooth
from tests.certify.constructed import (
    CENTER,
    Alternating,
    ByCleanValue,
    FirstRowsVote,
    centers,
    threshold_classifier,
    threshold_for,
)

SIGMA = 0.5
TRIALS = 300  # each row of one batch is an independent trial: its noise is keyed by its index


def _allowed_failures(alpha: float) -> float:
    """Failures a correct (1 - alpha) procedure exceeds with probability < 0.1% over TRIALS trials."""
    return binom.ppf(0.999, TRIALS, alpha)


@pytest.mark.parametrize("p_a", [0.7, 0.9, 0.99])
def test_certified_radius_is_a_lower_bound_in_at_least_1_minus_alpha_of_trials(p_a: float) -> None:
    alpha = 0.05
    true_radius = threshold_for(p_a, SIGMA) - CENTER
    smooth = Smooth(threshold_classifier(p_a, SIGMA), SIGMA, batch_size=2000, seed=1)
    cert = smooth.certify(centers(TRIALS), n0=20, n=200, alpha=alpha)
    wrong_class = (cert.prediction == 1).sum().item()
    too_large = ((cert.prediction == 0) & (cert.radius > true_radius)).sum().item()
    assert wrong_class + too_large <= _allowed_failures(alpha)
    # not vacuous: the certificates come close to the truth
    assert float(cert.radius.median()) >= 0.5 * true_radius


def test_certify_abstains_when_the_two_classes_are_equally_likely() -> None:
    alpha = 0.05
    smooth = Smooth(threshold_classifier(0.5, SIGMA), SIGMA, batch_size=2000, seed=2)
    cert = smooth.certify(centers(TRIALS), n0=20, n=200, alpha=alpha)
    decided = (cert.prediction != ABSTAIN).sum().item()
    assert decided <= _allowed_failures(alpha)
    assert torch.all(cert.radius[cert.prediction == ABSTAIN] == 0)


def test_predict_abstains_on_a_tie_except_with_probability_alpha() -> None:
    alpha = 0.05
    smooth = Smooth(threshold_classifier(0.5, SIGMA), SIGMA, batch_size=2000, seed=3)
    labels = smooth.predict(centers(TRIALS), n=200, alpha=alpha)
    assert (labels != ABSTAIN).sum().item() <= _allowed_failures(alpha)


def test_predict_and_certify_abstain_on_an_exact_tie() -> None:
    smooth = Smooth(ft.Classifier(Alternating(), num_classes=2), SIGMA, batch_size=100)
    assert smooth.sample_counts(centers(3), 100).tolist() == [[50, 50]] * 3
    assert smooth.predict(centers(3), n=100, alpha=0.5).tolist() == [ABSTAIN] * 3
    assert smooth.certify(centers(3), n0=100, n=100, alpha=0.5).prediction.tolist() == [ABSTAIN] * 3


def test_predict_returns_the_top_class_when_it_clearly_leads() -> None:
    smooth = Smooth(threshold_classifier(0.98, SIGMA), SIGMA, batch_size=2000, seed=4)
    labels = smooth.predict(centers(100), n=100, alpha=0.01)
    assert (labels == 0).sum().item() >= 95
    assert not (labels == 1).any()


def test_selection_and_estimation_use_separate_draws() -> None:
    module = FirstRowsVote(first=5)
    smooth = Smooth(ft.Classifier(module, num_classes=2), SIGMA, batch_size=64)
    cert = smooth.certify(centers(1), n0=5, n=100, alpha=0.01)
    # the 5 selection draws all vote 1, the 100 estimation draws all vote 0: class 1 is chosen and then
    # cannot be certified. Reusing the selection draws (or ignoring them) would certify a class instead.
    assert cert.prediction.tolist() == [ABSTAIN]
    seen = torch.cat(module.seen)
    assert seen.shape[0] == 5 + 100
    assert not torch.isin(seen[:5, 0], seen[5:, 0]).any()


def test_noisy_copies_are_counted_for_the_row_they_came_from_across_packed_batches() -> None:
    smooth = Smooth(ft.Classifier(ByCleanValue(), num_classes=2), 1e-4, batch_size=7)
    x = torch.tensor([[0.2], [0.8], [0.1], [0.9], [0.3]])
    counts = smooth.sample_counts(x, 23)
    assert counts.tolist() == [[23, 0], [0, 23], [23, 0], [0, 23], [23, 0]]


def test_noise_has_the_requested_scale() -> None:
    module = FirstRowsVote(first=0)
    Smooth(ft.Classifier(module, num_classes=2), 0.3, batch_size=1000).sample_counts(centers(1), 4000)
    noise = torch.cat(module.seen)[:, 0] - CENTER
    assert abs(float(noise.mean())) < 0.03
    assert float(noise.std()) == pytest.approx(0.3, rel=0.05)


def test_same_seed_gives_the_same_answer_and_shards_match_the_full_run() -> None:
    clf = threshold_classifier(0.9, SIGMA)
    full = Smooth(clf, SIGMA, seed=7).certify(centers(6), n0=10, n=50, alpha=0.01)
    again = Smooth(clf, SIGMA, seed=7).certify(centers(6), n0=10, n=50, alpha=0.01)
    shard = Smooth(clf, SIGMA, seed=7, batch_size=3).certify(
        centers(2), n0=10, n=50, alpha=0.01, indices=[4, 5]
    )
    other = Smooth(clf, SIGMA, seed=8).certify(centers(6), n0=10, n=50, alpha=0.01)
    assert all(torch.equal(a, b) for a, b in zip(full, again, strict=True))
    assert torch.equal(full.p_lower[4:], shard.p_lower)
    assert not torch.equal(full.p_lower, other.p_lower)


def test_results_come_back_on_the_input_device_with_the_documented_types() -> None:
    cert = Smooth(threshold_classifier(0.9, SIGMA), SIGMA).certify(centers(2), n0=10, n=50, alpha=0.01)
    assert cert.prediction.dtype == torch.long and cert.radius.dtype == torch.float64
    assert cert.prediction.device == centers(1).device


@pytest.mark.parametrize("sigma", [0, -0.1, math.nan, math.inf, True, "0.25"])
def test_bad_sigma_is_refused(sigma: object) -> None:
    with pytest.raises(ft.FortifyError, match="sigma"):
        Smooth(threshold_classifier(0.9, SIGMA), sigma)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n0": 0}, "n0"),
        ({"n": 0}, "n"),
        ({"n": 10.5}, "n"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
    ],
)
def test_bad_sample_counts_and_alpha_are_refused(kwargs: dict[str, object], name: str) -> None:
    smooth = Smooth(threshold_classifier(0.9, SIGMA), SIGMA)
    args = {"n0": 10, "n": 50, "alpha": 0.01, **kwargs}
    with pytest.raises(ft.FortifyError, match=name):
        smooth.certify(centers(1), **args)  # type: ignore[arg-type]
    if name != "n0":
        with pytest.raises(ft.FortifyError, match=name):
            smooth.predict(centers(1), n=args["n"], alpha=args["alpha"])  # type: ignore[arg-type]


def test_bad_construction_and_inputs_are_refused() -> None:
    clf = threshold_classifier(0.9, SIGMA)
    with pytest.raises(TypeError, match="Classifier"):
        Smooth(torch.nn.Linear(1, 2), SIGMA)  # type: ignore[arg-type]
    with pytest.raises(ft.FortifyError, match="batch_size"):
        Smooth(clf, SIGMA, batch_size=0)
    with pytest.raises(ft.FortifyError, match="seed"):
        Smooth(clf, SIGMA, seed=-1)
    smooth = Smooth(clf, SIGMA)
    with pytest.raises(ft.FortifyError, match="bounds"):
        smooth.predict(torch.full((1, 1), 1.5), n=10, alpha=0.01)
    with pytest.raises(ft.FortifyError, match="indices"):
        smooth.predict(centers(2), n=10, alpha=0.01, indices=[0])
