"""Per-feature constraints a user declares for a tabular model, and the projection that enforces them.

Fraud and credit models take rows of features that an adversary cannot move freely: an age only grows,
a country code cannot change, a count is a whole number, a category is one-hot. ``TabularConstraints``
states this once, in the model's input space; constrained attacks project every iterate onto the
intersection of these constraints, the threat's ball and the bounds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor

from fortify._validate import is_integer, positive_int
from fortify.threat import L2, Linf, Threat
from fortify.types import Bounds, FortifyError

_DIRECTIONS = {"+": 1, "increase": 1, "-": -1, "decrease": -1, "both": 0, "+-": 0}
_TOL = 1e-5


class TabularConstraints:
    """Constraints on the ``n_features`` columns of ``(N, n_features)`` inputs.

    ``immutable`` columns never change; ``integer`` columns stay whole numbers and ``grid`` columns
    (``{column: step}``) stay multiples of ``step``; ``ranges`` (``{column: (low, high)}``) narrow the
    model's bounds per column; ``directions`` (``{column: "+" | "-" | "both"}``) allow only increases or
    only decreases; ``one_hot`` groups (lists of columns holding 0/1) keep exactly one 1. A one-hot
    column may not appear in any other constraint. Clean inputs must satisfy every constraint
    (``check``). ``project`` never moves a feature away from its clean value by more than the threat
    allows, so a projected point satisfies the constraints, the ball and the bounds at once.
    """

    def __init__(
        self,
        n_features: int,
        *,
        immutable: Iterable[int] = (),
        integer: Iterable[int] = (),
        grid: Mapping[int, float] | None = None,
        ranges: Mapping[int, tuple[float, float]] | None = None,
        directions: Mapping[int, str] | None = None,
        one_hot: Sequence[Sequence[int]] = (),
    ) -> None:
        self.n_features = positive_int("n_features", n_features)
        self.immutable = sorted({self._column(c, "immutable") for c in immutable})
        self.grid = {self._column(c, "integer"): 1.0 for c in integer}
        for col, step in (grid or {}).items():
            if not float(step) > 0:
                raise FortifyError(f"grid step of column {col} must be > 0, got {step!r}")
            self.grid[self._column(col, "grid")] = float(step)
        self.ranges = {}
        for col, pair in (ranges or {}).items():
            low, high = (float(v) for v in pair)
            if not low <= high:
                raise FortifyError(f"range of column {col} must have low <= high, got {pair!r}")
            self.ranges[self._column(col, "ranges")] = (low, high)
        self.directions = {}
        for col, how in (directions or {}).items():
            if how not in _DIRECTIONS:
                raise FortifyError(f"direction of column {col} must be '+', '-' or 'both', got {how!r}")
            self.directions[self._column(col, "directions")] = _DIRECTIONS[how]
        self.one_hot = [sorted({self._column(c, "one_hot") for c in group}) for group in one_hot]
        self._check_groups()

    def _column(self, col: int, what: str) -> int:
        if not is_integer(col) or not 0 <= col < self.n_features:
            raise FortifyError(f"{what}: column {col!r} is not in [0, {self.n_features - 1}]")
        return col

    def _check_groups(self) -> None:
        seen: set[int] = set()
        others = set(self.immutable) | set(self.grid) | set(self.ranges) | set(self.directions)
        for group in self.one_hot:
            if len(group) < 2:
                raise FortifyError(f"a one-hot group needs at least 2 columns, got {group}")
            clash = (seen | others) & set(group)
            if clash:
                raise FortifyError(f"one-hot columns {sorted(clash)} also appear in another constraint")
            seen |= set(group)

    def __repr__(self) -> str:
        parts = [
            f"immutable={self.immutable}",
            f"grid={self.grid}",
            f"ranges={self.ranges}",
            f"directions={self.directions}",
            f"one_hot={self.one_hot}",
        ]
        return f"TabularConstraints({self.n_features}, " + ", ".join(parts) + ")"

    def mutable(self, like: Tensor) -> Tensor:
        """Boolean mask ``(n_features,)`` of the columns an attack may change."""
        mask = torch.ones(self.n_features, dtype=torch.bool, device=like.device)
        mask[self.immutable] = False
        return mask

    def _limits(self, x: Tensor, bounds: Bounds) -> tuple[Tensor, Tensor]:
        """Per-column ``(low, high)`` rows ``(1, F)``: the bounds narrowed by ``ranges``."""
        low = torch.full((1, self.n_features), bounds[0], dtype=x.dtype, device=x.device)
        high = torch.full_like(low, bounds[1])
        for col, (lo, hi) in self.ranges.items():
            low[0, col], high[0, col] = max(lo, bounds[0]), min(hi, bounds[1])
        return low, high

    def violations(self, x: Tensor, bounds: Bounds) -> Tensor:
        """Per-sample boolean ``(N,)``: does row ``x`` break a range, grid or one-hot constraint?"""
        low, high = self._limits(x, bounds)
        bad = ((x < low - _TOL) | (x > high + _TOL)).any(dim=1)
        for col, step in self.grid.items():
            bad |= (x[:, col] / step - (x[:, col] / step).round()).abs() > _TOL / step
        for group in self.one_hot:
            part = x[:, group]
            bad |= ~(((part - 1).abs() <= _TOL) | (part.abs() <= _TOL)).all(dim=1)
            bad |= ((part - 1).abs() <= _TOL).sum(dim=1) != 1
        return bad

    def check(self, x: Tensor, bounds: Bounds) -> None:
        """Raise ``FortifyError`` unless ``x`` is ``(N, n_features)`` and every clean row is feasible."""
        if x.dim() != 2 or x.shape[1] != self.n_features:
            raise FortifyError(f"constraints are for (N, {self.n_features}) inputs, got {tuple(x.shape)}")
        bad = self.violations(x, bounds)
        if bool(bad.any()):
            raise FortifyError(f"clean rows {bad.nonzero().flatten()[:5].tolist()} break the constraints")

    def satisfied(self, x_adv: Tensor, x: Tensor, bounds: Bounds) -> Tensor:
        """Per-sample boolean ``(N,)``: ``x_adv`` keeps every constraint relative to clean ``x``."""
        delta = x_adv - x
        ok = ~self.violations(x_adv, bounds)
        if self.immutable:
            ok &= (delta[:, self.immutable].abs() <= _TOL).all(dim=1)
        for col, sign in self.directions.items():
            ok &= sign * delta[:, col] >= -_TOL
        return ok

    def project(
        self, x_adv: Tensor, x: Tensor, threat: Threat, bounds: Bounds, *, discrete: bool = True
    ) -> Tensor:
        """The constrained point nearest ``x_adv`` by feature-wise clipping towards clean ``x`` ``(N, F)``.

        One-hot groups take their largest entry (a switch costs 1 in Linf and 2 in squared L2, granted
        group by group in declaration order while the budget lasts); the other columns are clipped to
        their direction, range and the ball, then grid columns are rounded towards ``x``. With
        ``discrete=False`` grids and one-hot groups are relaxed (groups stay in ``[0, 1]``): the
        continuous iterate that constrained PGD moves.
        """
        if not isinstance(threat, (Linf, L2)):
            raise FortifyError(f"tabular constraints support ft.Linf and ft.L2 threats, got {threat!r}")
        out = x.clone()
        spent = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        grouped = [c for g in self.one_hot for c in g]
        if discrete:
            spent = self._switch_groups(out, x_adv, x, threat)
        free = self.mutable(x)
        free[grouped] = not discrete
        delta = torch.where(free, x_adv - x, torch.zeros_like(x))
        for col, sign in self.directions.items():
            delta[:, col] = (
                delta[:, col].clamp_min(0)
                if sign > 0
                else (delta[:, col].clamp_max(0) if sign < 0 else delta[:, col])
            )
        low, high = self._limits(x, bounds)
        if not discrete and grouped:
            low[0, grouped], high[0, grouped] = max(bounds[0], 0.0), min(bounds[1], 1.0)
        delta = (x + delta).clamp(low, high) - x
        if isinstance(threat, Linf):
            delta = delta.clamp(-threat.eps, threat.eps)
        else:
            room = (threat.eps**2 - spent).clamp_min(0).sqrt() * (1 - 1e-6)
            norms = delta.norm(dim=1)
            delta = (
                delta
                * torch.where(norms > room, room / norms.clamp_min(1e-12), torch.ones_like(norms))[:, None]
            )
        if discrete:
            for col, step in self.grid.items():
                delta[:, col] = torch.trunc(delta[:, col] / step + 1e-6 * delta[:, col].sign()) * step
        return torch.where(free, x + delta, out)

    def _switch_groups(self, out: Tensor, x_adv: Tensor, x: Tensor, threat: Threat) -> Tensor:
        """Set each one-hot group of ``out`` to its argmax where the budget allows; return spent budget."""
        spent = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for group in self.one_hot:
            new, old = x_adv[:, group].argmax(dim=1), x[:, group].argmax(dim=1)
            if isinstance(threat, Linf):
                allowed = (new != old) & (threat.eps >= 1)
            else:
                allowed = (new != old) & (spent + 2 <= threat.eps**2 * (1 - 1e-6))
                spent = spent + 2 * allowed.to(x.dtype)
            choice = torch.where(allowed, new, old)
            out[:, group] = torch.nn.functional.one_hot(choice, len(group)).to(x.dtype)
        return spent
