"""Model extraction by knockoff / copycat: query the victim, train a student on its answers.

(Orekondy, Schiele & Fritz, "Knockoff Nets: Stealing Functionality of Black-Box Models", CVPR 2019;
Correia-Silva et al., "Copycat CNN", IJCNN 2018.) The attacker sends the first ``max(budgets)`` inputs of
a query set (in-distribution data, public out-of-distribution data or noise: the caller chooses) to
the victim, keeps its outputs, and for each budget ``b`` trains a fresh student on the first ``b``
answers: with the victim's probabilities as soft targets (KL divergence) when it gives scores, with its
labels (cross-entropy) when it gives labels only. The curve reports the student's test accuracy and
its *agreement* (fidelity) with the victim on test inputs, per budget. Approximations: random query
order (no adaptive, reinforcement-learned query selection as in Knockoff's "adaptive" strategy).

Queries go out in chunks of ``chunk``; after each, an optional ``detected()`` says whether the victim's
defender has noticed (over HTTP: the service's PRADA alert, ``fortify.service.theft.AlertWatch``). The
first chunk after which it answers yes fixes ``detected_at``, and one more student, trained on exactly
the answers received by then, says what the thief holds at that moment. A victim that stops answering
(a block, an outage) or a ``KeyboardInterrupt`` ends the querying: the budgets the answers cover are
still measured, and ``stopped`` says why the rest were not.
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
DEFAULT_CHUNK = 100


@dataclass
class ExtractionCurve:
    """One entry per budget measured: ``budgets``, the student's test ``accuracy`` and ``agreement``
    with the victim (empty when the victim would not label the test inputs), and the victim's own test
    accuracy for reference.

    ``queried``: answers received (``max(budgets)`` unless ``stopped`` says why not). ``detected_at``:
    queries answered when ``detected()`` first said yes (None: never, or not watched);
    ``at_detection``: ``{"queries", "accuracy", "agreement"}`` of a student trained on those answers.
    """

    budgets: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    victim_accuracy: float | None = None
    output: str = "scores"
    queried: int = 0
    detected_at: int | None = None
    at_detection: dict[str, float | int | None] | None = None
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "budgets": self.budgets,
            "accuracy": self.accuracy,
            "agreement": self.agreement,
            "victim_accuracy": self.victim_accuracy,
            "output": self.output,
            "queried": self.queried,
            "detected_at": self.detected_at,
            "at_detection": self.at_detection,
            "stopped": self.stopped,
        }


def _answers(victim: BlackBox, x: Tensor) -> Tensor:
    """Soft targets ``(n, K)`` (probabilities) for a scores victim, labels ``(n,)`` for a labels one.

    Scores in [0, 1] whose rows sum to within 0.5 of 1 are probabilities, possibly rounded by the victim
    (``round:D`` hardening): renormalised, not passed through a softmax (which would flatten them);
    anything else is taken as logits.
    """
    if victim.output == "labels":
        return victim.predict(x).cpu()
    scores = victim.scores(x).cpu().double()
    sums = scores.sum(1, keepdim=True)
    looks_like_probs = bool(((scores >= 0) & (scores <= 1)).all()) and bool(((sums - 1).abs() <= 0.5).all())
    return (scores / sums if looks_like_probs else scores.softmax(dim=1)).float()


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


def _query(
    victim: BlackBox,
    x: Tensor,
    chunk: int,
    detected: Callable[[], bool] | None,
    curve: ExtractionCurve,
    say: Callable[[str], None],
) -> Tensor | None:
    """The victim's answers to ``x``, chunk by chunk, watching for detection; fewer when it stops."""
    parts: list[Tensor] = []
    try:
        for part in x.split(chunk):
            try:
                parts.append(_answers(victim, part))
            except FortifyError as exc:
                if not parts:
                    raise
                curve.stopped = f"the victim stopped answering: {exc}"
                say(curve.stopped)
                break
            curve.queried += part.shape[0]
            if detected is not None and curve.detected_at is None and detected():
                curve.detected_at = curve.queried
                say(f"detected after {curve.queried} queries")
    except KeyboardInterrupt:
        curve.stopped = "interrupted"
        say(f"interrupted after {curve.queried} queries: measuring what they bought")
    return torch.cat(parts) if parts else None


def _test_labels(victim: BlackBox, x_test: Tensor, curve: ExtractionCurve) -> Tensor | None:
    try:
        with torch.no_grad():
            return victim.predict(x_test).cpu()
    except FortifyError as exc:
        curve.stopped = curve.stopped or f"the victim would not label the test inputs: {exc}"
        return None


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
    chunk: int = DEFAULT_CHUNK,
    detected: Callable[[], bool] | None = None,
    victim_labels: Tensor | None = None,
    on_update: Callable[[ExtractionCurve], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Classifier, ExtractionCurve]:
    """Steal ``victim`` with up to ``max(budgets)`` of ``queries``; returns the last student and the curve.

    A ``Classifier`` victim is queried as a scores black box. ``make_student()`` builds a fresh student.
    ``detected`` (polled after every ``chunk`` queries) and what follows are described in the module
    docstring. ``victim_labels`` ``(n_test,)``: the victim's labels of ``x_test`` when the caller has
    them (else the victim is asked, after the stealing queries, so they do not change what a detector
    saw). ``on_update(curve)`` runs after every measured point (to save partial results). An interrupted
    run keeps the budgets it finished (on ``KeyboardInterrupt`` the partial curve is returned).
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
    check.integer("chunk", chunk, low=1)
    if victim_labels is not None and victim_labels.shape != y_test.shape:
        raise FortifyError(f"victim_labels must have the shape of y_test {tuple(y_test.shape)}")
    say = progress or (lambda _m: None)
    curve = ExtractionCurve(output=victim.output)
    answers = _query(victim, queries[: steps[-1]], chunk, detected, curve, say)
    say(f"queried the victim {curve.queried} times")
    labels = victim_labels.cpu() if victim_labels is not None else _test_labels(victim, x_test, curve)
    y = y_test.cpu()
    if labels is not None:
        curve.victim_accuracy = float((labels == y).double().mean())
    student = make_student()
    detection = {curve.detected_at} if curve.detected_at is not None else set()
    points = sorted({b for b in steps if b <= curve.queried} | detection)
    try:
        for point in points:
            if answers is None:
                break
            student = fit_student(make_student(), queries[:point], answers[:point], epochs=epochs, seed=seed)
            with torch.no_grad():
                pred = student.predict(x_test).cpu()
            accuracy = float((pred == y).double().mean())
            agreement = None if labels is None else float((pred == labels).double().mean())
            if point == curve.detected_at:
                curve.at_detection = {"queries": point, "accuracy": accuracy, "agreement": agreement}
            if point in steps:
                curve.budgets.append(point)
                curve.accuracy.append(accuracy)
                if agreement is not None:
                    curve.agreement.append(agreement)
            agrees = "unknown" if agreement is None else f"{agreement:.3f}"
            say(f"{point} queries: accuracy {accuracy:.3f}, agreement {agrees}")
            if on_update is not None:
                on_update(curve)
    except KeyboardInterrupt:
        curve.stopped = curve.stopped or "interrupted"
        say("interrupted: returning the budgets measured so far")
    return student, curve
