"""`ft.testing.assert_robust`: passes (returning the Result) when robust enough, fails with the numbers."""

from __future__ import annotations

import pytest

import fortify as ft


def test_passes_and_returns_the_result_when_robust_enough(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.testing.assert_robust(
        clf, x[:32], y[:32], ft.Linf(0.002), min_accuracy=0.9, min_clean_accuracy=0.9
    )
    assert isinstance(result, ft.Result) and result.robust_accuracy >= 0.9 and result.n_samples == 32


def test_fails_with_the_numbers_and_the_attack_that_broke_the_model(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(AssertionError, match=r"robust accuracy \d+\.\d% < required 50\.0%") as info:
        ft.testing.assert_robust(clf, x[:32], y[:32], ft.Linf(0.3), min_accuracy=0.5, require_reliable=False)
    message = str(info.value)
    assert "Linf(0.3)" in message and "suite 'quick'" in message and "broke" in message


def test_a_clean_accuracy_floor_is_checked_too(tiny_cnn):
    clf, x, y = tiny_cnn
    wrong = (y[:16] + 1) % clf.num_classes
    with pytest.raises(AssertionError, match=r"clean accuracy 0\.0% < required 80\.0%"):
        ft.testing.assert_robust(
            clf,
            x[:16],
            wrong,
            ft.Linf(0.002),
            min_accuracy=0.0,
            min_clean_accuracy=0.8,
            require_reliable=False,
        )


@pytest.mark.parametrize("value", [-0.1, 40])
def test_thresholds_must_be_fractions(tiny_cnn, value):
    clf, x, y = tiny_cnn
    with pytest.raises(ft.FortifyError, match="fraction in \\[0, 1\\]"):
        ft.testing.assert_robust(clf, x[:4], y[:4], ft.Linf(0.1), min_accuracy=value)
