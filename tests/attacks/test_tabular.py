"""Constraint-aware tabular attack: every output keeps every declared constraint and the threat's ball,
white box and black box, and still breaks the undefended breast-cancer MLP."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fortify as ft
from fortify.attacks import ConstrainedPGD, TabularConstraints
from fortify.blackbox import from_sklearn

BOUNDS = (0.0, 1.0)


def _rules_and_rows(x: torch.Tensor) -> tuple[TabularConstraints, torch.Tensor]:
    """Realistic rules on the 30 breast-cancer columns, and the rows made to satisfy them."""
    rules = TabularConstraints(
        30,
        immutable=[0, 1, 2],
        integer=[3],
        grid={4: 0.05},
        ranges={5: (0.0, 0.4), 6: (0.1, 0.9)},
        directions={7: "+", 8: "-", 9: "both"},
        one_hot=[[27, 28, 29]],
    )
    rows = x.clone()
    rows[:, 3] = rows[:, 3].round()
    rows[:, 4] = (rows[:, 4] / 0.05).round() * 0.05
    rows[:, 5] = rows[:, 5].clamp(0.0, 0.4)
    rows[:, 6] = rows[:, 6].clamp(0.1, 0.9)
    rows[:, 27:30] = torch.nn.functional.one_hot(torch.arange(len(rows)) % 3, 3).float()
    return rules, rows


@pytest.mark.parametrize("gradient", ["exact", "estimate"])
@pytest.mark.parametrize("threat", [ft.Linf(0.15), ft.L2(1.5)], ids=["linf", "l2"])
def test_outputs_keep_every_constraint_and_break_the_mlp(tiny_mlp, gradient, threat):
    mlp, x, y = tiny_mlp
    rules, rows = _rules_and_rows(x)
    attack = ConstrainedPGD(constraints=rules, gradient=gradient, steps=30)
    x_adv = attack(mlp, rows, y, threat)
    assert bool(rules.satisfied(x_adv, rows, BOUNDS).all())
    assert bool(threat.contains(x_adv, rows).all())
    assert torch.equal(x_adv[:, :3], rows[:, :3])
    robust = float((mlp.predict(x_adv) == y).float().mean())
    assert robust <= 0.5, robust


def test_black_box_variant_on_a_scikit_learn_model(tiny_mlp):
    from sklearn.linear_model import LogisticRegression

    _, x, y = tiny_mlp
    rules, rows = _rules_and_rows(x)
    box = from_sklearn(LogisticRegression(max_iter=1000).fit(rows.numpy(), y.numpy()))
    out = ConstrainedPGD(constraints=rules, steps=30).attack(box, rows, y, ft.Linf(0.15))
    assert bool(rules.satisfied(out.x_adv, rows, BOUNDS).all())
    assert int(out.queries.sum()) == box.queries
    assert float((box.predict(out.x_adv) == y).float().mean()) < float(
        (box.predict(rows) == y).float().mean()
    )


def test_one_hot_groups_switch_only_when_the_budget_allows(tiny_mlp):
    _, x, _ = tiny_mlp
    rules = TabularConstraints(30, one_hot=[[27, 28, 29]])
    _, rows = _rules_and_rows(x[:4])
    wish = rows.clone()
    wish[:, 27:30] = torch.tensor([0.1, 0.2, 0.9])  # prefer the last category
    tight = rules.project(wish, rows, ft.L2(1.0), BOUNDS)
    loose = rules.project(wish, rows, ft.L2(1.5), BOUNDS)
    assert torch.equal(tight[:, 27:30], rows[:, 27:30])  # a switch costs sqrt(2) > 1
    assert loose[:, 27:30].tolist() == [[0.0, 0.0, 1.0]] * 4
    assert torch.equal(rules.project(wish, rows, ft.Linf(0.5), BOUNDS)[:, 27:30], rows[:, 27:30])


@st.composite
def _problem(draw):
    f = draw(st.integers(4, 10))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    cols = list(range(f - 2))  # the last two columns form a one-hot group
    immutable = draw(st.lists(st.sampled_from(cols), max_size=2, unique=True))
    rest = [c for c in cols if c not in immutable]
    integer = draw(st.lists(st.sampled_from(rest), max_size=2, unique=True)) if rest else []
    signs = {c: draw(st.sampled_from(["+", "-", "both"])) for c in rest if draw(st.booleans())}
    x = torch.rand((5, f), generator=gen, dtype=torch.float64)
    x[:, integer] = x[:, integer].round()
    x[:, f - 2 :] = torch.nn.functional.one_hot(torch.arange(5) % 2, 2).double()
    ranged = [c for c in rest if c not in integer][:2]
    ranges = {c: (float(x[:, c].min()) * 0.9, min(1.0, float(x[:, c].max()) + 0.05)) for c in ranged}
    rules = TabularConstraints(
        f, immutable=immutable, integer=integer, ranges=ranges, directions=signs, one_hot=[[f - 2, f - 1]]
    )
    x_adv = x + draw(st.floats(0.05, 2.0)) * torch.randn((5, f), generator=gen, dtype=torch.float64)
    threat = draw(st.sampled_from([ft.Linf(draw(st.floats(0.0, 1.2))), ft.L2(draw(st.floats(0.0, 3.0)))]))
    return rules, x, x_adv, threat


@given(_problem())
def test_property_projection_satisfies_constraints_and_ball(problem):
    rules, x, x_adv, threat = problem
    projected = rules.project(x_adv, x, threat, BOUNDS)
    assert bool(rules.satisfied(projected, x, BOUNDS).all())
    assert bool(threat.contains(projected, x).all())
    assert float(projected.min()) >= 0.0 and float(projected.max()) <= 1.0
    relaxed = rules.project(x_adv, x, threat, BOUNDS, discrete=False)
    assert bool(threat.contains(relaxed, x).all())


def test_bad_constraints_and_inputs(tiny_mlp):
    mlp, x, y = tiny_mlp
    with pytest.raises(ft.FortifyError, match="column 30"):
        TabularConstraints(30, immutable=[30])
    with pytest.raises(ft.FortifyError, match="also appear"):
        TabularConstraints(30, immutable=[1], one_hot=[[1, 2]])
    with pytest.raises(ft.FortifyError, match="direction"):
        TabularConstraints(30, directions={1: "up"})
    with pytest.raises(ft.FortifyError, match="low <= high"):
        TabularConstraints(30, ranges={1: (0.5, 0.1)})
    with pytest.raises(ft.FortifyError, match="break the constraints"):
        ConstrainedPGD(constraints=TabularConstraints(30, integer=[0]), steps=2)(
            mlp, x[:4] * 0.5 + 0.25, y[:4], ft.Linf(0.1)
        )
    with pytest.raises(ft.FortifyError, match="\\(N, 29\\)"):
        ConstrainedPGD(constraints=TabularConstraints(29), steps=2)(mlp, x[:4], y[:4], ft.Linf(0.1))
    with pytest.raises(ft.FortifyError, match="samples must be even"):
        ConstrainedPGD(samples=3)
    with pytest.raises(ft.FortifyError, match="exact"):
        box = ft.BlackBox(lambda z: mlp.logits(z), 2)
        ConstrainedPGD(gradient="exact", steps=2)(box, x[:4], y[:4], ft.Linf(0.1))
