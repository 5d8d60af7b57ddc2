"""Cost estimates: the bound on model passes per sample holds for the attacks that spend budgets, and
the estimate says it in one line."""

from __future__ import annotations

import pytest

import fortify as ft
from fortify.attacks.cost import CHECKS, Cost, cost_of, estimate


@pytest.mark.parametrize(
    ("attack", "classes", "expected"),
    [
        (ft.attacks.OnePixel(population=20, steps=5), 4, Cost(20 * 6 + CHECKS)),
        (ft.attacks.Square(n_queries=300), 4, Cost(300 + CHECKS)),
        (ft.attacks.PGD(steps=7, restarts=3), 4, Cost(21 + CHECKS, 21)),
        (ft.attacks.APGDT(steps=10, n_target_classes=9), 4, Cost(30 + CHECKS, 30)),  # only 3 other classes
        (ft.attacks.FGSM(), 4, Cost(1 + CHECKS, 1)),
    ],
)
def test_the_bound_follows_the_options(attack, classes, expected):
    assert cost_of(attack, classes) == expected


@pytest.mark.parametrize(
    "attack",
    [
        ft.attacks.Square(n_queries=200),
        ft.attacks.OnePixel(population=8, steps=4),
        ft.attacks.HopSkipJump(n_queries=300),
    ],
)
def test_no_sample_costs_more_queries_than_the_bound(tiny_cnn, attack):
    clf, x, y = tiny_cnn
    box = ft.BlackBox(lambda batch: clf.logits(batch), num_classes=4, output="scores")
    threat = ft.L0(1) if isinstance(attack, ft.attacks.OnePixel) else ft.Linf(0.05)
    out = attack.attack(box, x[:16], y[:16], threat)
    assert int(out.queries.max()) <= cost_of(attack, 4).forward


def test_the_estimate_is_one_line_with_passes_and_time(tiny_cnn):
    clf, x, _ = tiny_cnn
    found = estimate([("square", ft.attacks.Square(n_queries=1000), 10)], clf, x[:10], batch_size=250)
    assert found.cost.forward == 10 * (1000 + CHECKS) and found.seconds > 0
    line = found.line()
    assert line.startswith("estimated cost: ~10k model passes for 10 samples") and "\n" not in line
