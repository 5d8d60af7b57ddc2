"""Output hardening against extraction: answer with less than the full probability vector.

- ``"top1"``: the label only (a labels black box).
- ``"round:D"``: probabilities rounded to ``D`` decimals.
- ``"reverse-sigmoid"`` (Lee, Edwards, Molloy & Srivastava, "Defending Against NN Model Stealing Attacks
  Using Deceptive Perturbations", IEEE S&P Workshops 2019): ``y' ∝ y - beta * (s(gamma * s^-1(y)) - 1/2)``
  with ``s`` the sigmoid, renormalised; meant to mislead the student's training while mostly keeping the
  top-1 label (the map is not monotone for small probabilities, so some labels can change).

``hardened(clf, mode)`` is a ``BlackBox`` over ``clf``; ``accuracy_cost`` is the honest users' price:
the share of inputs whose served top-1 label changed (0 for ``top1``; ties only for ``round``; measured,
not assumed, for ``reverse-sigmoid``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.model import BlackBox, Classifier
from fortify.types import FortifyError

MODES = ("top1", "round", "reverse-sigmoid")


def reverse_sigmoid(probs: Tensor, *, beta: float = 1.0, gamma: float = 0.2) -> Tensor:
    """The reverse-sigmoid perturbation of probabilities ``(N, K)``, renormalised to sum to 1."""
    p = probs.clamp(1e-7, 1 - 1e-7)
    r = beta * (torch.sigmoid(gamma * torch.logit(p)) - 0.5)
    out = (p - r).clamp_min(0.0)
    return out / out.sum(dim=1, keepdim=True).clamp_min(1e-12)


def hardened(
    clf: Classifier, mode: str = "reverse-sigmoid", *, beta: float = 1.0, gamma: float = 0.2
) -> BlackBox:
    """``clf`` served with hardened outputs: ``"top1"``, ``"round:D"`` or ``"reverse-sigmoid"``."""
    kind, _, arg = mode.partition(":")
    if kind == "top1":
        return BlackBox(lambda x: clf.predict(x, check=False), clf.num_classes, clf.bounds, output="labels")
    if kind == "round":
        digits = int(arg) if arg.isdigit() else -1
        if not 0 <= digits <= 6:
            raise FortifyError(f"round needs 0 to 6 decimals, e.g. round:2, got {mode!r}")
        return BlackBox(
            lambda x: clf.predict_proba(x, check=False).round(decimals=digits), clf.num_classes, clf.bounds
        )
    if kind == "reverse-sigmoid":
        return BlackBox(
            lambda x: reverse_sigmoid(clf.predict_proba(x, check=False), beta=beta, gamma=gamma),
            clf.num_classes,
            clf.bounds,
        )
    raise FortifyError(f"unknown output hardening {mode!r}; choose top1, round:D or reverse-sigmoid")


@torch.no_grad()
def accuracy_cost(clf: Classifier, served: BlackBox, x: Tensor) -> float:
    """Share of ``x`` whose top-1 label the hardened outputs change (what honest users lose)."""
    return float((served.predict(x).cpu() != clf.predict(x).cpu()).double().mean())
