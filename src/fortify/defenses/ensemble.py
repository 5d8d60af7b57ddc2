"""Ensembles of classifiers, themselves a ``Classifier``.

Modes (all return ``(N, num_classes)`` "logits" whose argmax is the ensemble's prediction):

- ``"mean_logits"``: the mean of the members' logits. Differentiable.
- ``"mean_probs"``: the log of the mean of the members' softmax probabilities (so ``softmax`` of the
  output is the averaged distribution). Differentiable.
- ``"vote"``: majority vote of the members' predictions; the output is the log of the vote share plus
  a tie-break by mean probability (``1e-3`` weight, so it never overturns a vote). Not differentiable
  (the argmax has zero gradient): ``differentiable = False``, and ``surrogate(x)`` gives the
  ``mean_probs`` output, the differentiable approximation for BPDA on the backward pass
  (``straight_through(x)`` combines both; ``forward_bpda`` and ``backward_approximation`` are the names
  ``fortify.evaluation.adaptive`` looks for).

``randomized`` is True when any member is randomized.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn

from fortify.model import Classifier
from fortify.types import FortifyError

MODES = ("mean_logits", "mean_probs", "vote")
_TIE_BREAK = 1e-3
_TINY = 1e-12


class _Members(nn.Module):
    """Holds the members so that ``Classifier`` sees one module (parameters, device, train/eval)."""

    def __init__(self, members: Sequence[Classifier]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        """Stacked member logits ``(M, N, num_classes)``."""
        return torch.stack([member(x) for member in self.members])


class Ensemble(Classifier):
    """``Ensemble([clf_a, clf_b, ...], mode="mean_logits")``: members share num_classes and bounds.

    >>> ens = ft.defenses.Ensemble([clf_a, clf_b], mode="mean_probs")
    >>> x_adv = ft.attacks.PGD()(ens, x, y, ft.Linf(0.1))
    """

    def __init__(self, members: Sequence[Classifier], mode: str = "mean_logits") -> None:
        members = list(members)
        if not members:
            raise FortifyError("an Ensemble needs at least one member")
        for member in members:
            if not isinstance(member, Classifier):
                raise TypeError(f"Ensemble members must be fortify Classifiers, got {type(member).__name__}")
        if mode not in MODES:
            raise FortifyError(f"unknown ensemble mode {mode!r}; choose one of {list(MODES)}")
        first = members[0]
        for member in members[1:]:
            if member.num_classes != first.num_classes or member.bounds != first.bounds:
                raise FortifyError(
                    f"Ensemble members disagree: {member.num_classes} classes in {member.bounds} vs "
                    f"{first.num_classes} classes in {first.bounds}"
                )
        super().__init__(
            _Members(members), num_classes=first.num_classes, bounds=first.bounds, batch_size=first.batch_size
        )
        self.mode = mode
        self.differentiable = mode != "vote" and all(m.differentiable for m in members)
        self.randomized = any(m.randomized for m in members)

    def forward(self, x: Tensor) -> Tensor:
        stacked = self.module(x)
        if self.mode == "mean_logits":
            return stacked.mean(0)
        if self.mode == "mean_probs":
            return _mean_probs(stacked).clamp_min(_TINY).log()
        votes = nn.functional.one_hot(stacked.argmax(-1), self.num_classes).to(x.dtype).mean(0)
        return (votes + _TIE_BREAK * _mean_probs(stacked)).clamp_min(_TINY).log()

    def surrogate(self, x: Tensor) -> Tensor:
        """A differentiable approximation of ``forward`` (mean_probs for a vote; ``forward`` otherwise)."""
        if self.mode != "vote":
            return self(x)
        return _mean_probs(self.module(x)).clamp_min(_TINY).log()

    def straight_through(self, x: Tensor) -> Tensor:
        """``forward``'s value with ``surrogate``'s gradient (BPDA)."""
        approx = self.surrogate(x)
        return approx + (self(x) - approx).detach()

    def forward_bpda(self, x: Tensor) -> Tensor:
        """The name adaptive evaluation looks for on a non-differentiable classifier: ``straight_through``."""
        return self.straight_through(x)

    def backward_approximation(self, x: Tensor) -> Tensor:
        """The name adaptive evaluation looks for on a non-differentiable component: ``surrogate``."""
        return self.surrogate(x)

    def describe(self) -> dict[str, object]:
        info = super().describe()
        members = cast(_Members, self.module).members
        info.update(mode=self.mode, members=[cast(Classifier, m).describe() for m in members])
        return info


def _mean_probs(stacked: Tensor) -> Tensor:
    return stacked.softmax(-1).mean(0)
