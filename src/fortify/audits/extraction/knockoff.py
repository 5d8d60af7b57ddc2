"""Model extraction by knockoff / copycat: query the victim, train a student on its answers.

(Orekondy, Schiele & Fritz, "Knockoff Nets: Stealing Functionality of Black-Box Models", CVPR 2019;
Correia-Silva et al., "Copycat CNN", IJCNN 2018.) The attacker sends the first ``max(budgets)`` inputs of
a query set (in-distribution data, public out-of-distribution data or noise: the caller chooses) to
the victim, keeps its outputs, and for each budget ``b`` trains a fresh student on the first ``b``
answers: with the victim's probabilities as soft targets (KL divergence) when it gives scores, with its
labels (cross-entropy) when it gives labels only. The curve reports the student's test accuracy and
its *agreement* (fidelity) with the victim on test inputs, per budget. Approximations: random query
order (no adaptive, reinforcement-learned query selection as in Knockoff's "adaptive" strategy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify import _validate as check
from fortify.model import BlackBox, Classifier
from fortify.types import FortifyError

Student = Callable[[], Classifier]


@dataclass
class ExtractionCurve:
    """One entry per budget: ``budgets``, the student's test ``accuracy`` and ``agreement`` with the
    victim, and the victim's own test accuracy for reference."""

    budgets: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    victim_accuracy: float | None = None
    output: str = "scores"

    def to_dict(self) -> dict[str, Any]:
        return {
            "budgets": self.budgets,
            "accuracy": self.accuracy,
            "agreement": self.agreement,
            "victim_accuracy": self.victim_accuracy,
            "output": self.output,
        }


def _answers(victim: BlackBox, x: Tensor) -> Tensor:
    """Soft targets ``(n, K)`` (probabilities) for a scores victim, labels ``(n,)`` for a labels one."""
    if victim.output == "labels":
        return victim.predict(x).cpu()
    scores = victim.scores(x).cpu().double()
    looks_like_probs = bool((scores >= 0).all()) and bool(
        torch.allclose(scores.sum(1), torch.ones(len(scores)).double(), atol=1e-3)
    )
    return (scores if looks_like_probs else scores.softmax(dim=1)).float()


def fit_student(
    student: Classifier, x: Tensor, targets: Tensor, *, epochs: int, seed: int, lr: float = 1e-3
) -> Classifier:
    """Train ``student`` on ``x`` against soft targets ``(n, K)`` (KL) or labels ``(n,)`` (cross-entropy)."""
    torch.manual_seed(seed)
    module = student.train()
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    device = student.device
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        for batch in order.split(128):
            xb, tb = x[batch].to(device), targets[batch].to(device)
            log_p = student(xb).log_softmax(dim=1)
            loss = F.kl_div(log_p, tb, reduction="batchmean") if tb.dim() == 2 else F.nll_loss(log_p, tb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return student.eval()


def knockoff(
    victim: BlackBox | Classifier,
    queries: Tensor,
    budgets: Sequence[int],
    make_student: Student,
    x_test: Tensor,
    y_test: Tensor,
    *,
    epochs: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[Classifier, ExtractionCurve]:
    """Steal ``victim`` with up to ``max(budgets)`` of ``queries``; returns the last student and the curve.

    A ``Classifier`` victim is queried as a scores black box. ``make_student()`` builds a fresh student.
    An interrupted run keeps the budgets it finished (``curve`` is filled as it goes; on
    ``KeyboardInterrupt`` the partial curve is returned).
    """
    if isinstance(victim, Classifier):
        clf = victim
        victim = BlackBox(lambda x: clf.predict_proba(x, check=False), clf.num_classes, clf.bounds)
    if not isinstance(victim, BlackBox):
        raise FortifyError(f"the victim must be a BlackBox or Classifier, got {type(victim).__name__}")
    steps = sorted({check.integer("budget", b, low=1) for b in budgets})
    if not steps:
        raise FortifyError("give at least one query budget")
    if steps[-1] > queries.shape[0]:
        raise FortifyError(f"the largest budget ({steps[-1]}) exceeds the {queries.shape[0]} query inputs")
    say = progress or (lambda _m: None)
    answers = _answers(victim, queries[: steps[-1]])
    say(f"queried the victim {steps[-1]} times")
    with torch.no_grad():
        victim_labels = victim.predict(x_test).cpu()
    curve = ExtractionCurve(
        victim_accuracy=float((victim_labels == y_test.cpu()).double().mean()), output=victim.output
    )
    student = make_student()
    try:
        for budget in steps:
            student = fit_student(
                make_student(), queries[:budget], answers[:budget], epochs=epochs, seed=seed
            )
            with torch.no_grad():
                pred = student.predict(x_test).cpu()
            curve.budgets.append(budget)
            curve.accuracy.append(float((pred == y_test.cpu()).double().mean()))
            curve.agreement.append(float((pred == victim_labels).double().mean()))
            say(f"budget {budget}: accuracy {curve.accuracy[-1]:.3f}, agreement {curve.agreement[-1]:.3f}")
    except KeyboardInterrupt:
        say("interrupted: returning the budgets measured so far")
    return student, curve
