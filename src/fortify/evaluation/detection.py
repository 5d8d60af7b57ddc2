"""Attacking a classifier together with its detector (Carlini & Wagner, "Adversarial Examples Are Not
Easily Detected: Bypassing Ten Detection Methods", AISec 2017, arXiv:1705.07263).

Against a defended model with a detector, an attack breaks a sample only with a point that is
misclassified *and* not flagged. Evaluation judges every attack point that way; this module makes the
attacks aim for it. Design: the *reject view* of a classifier with ``K`` classes has ``K + 1`` logits,
the classifier's own (through its BPDA / EOT attack view) and a reject logit

    ``z_K(x) = max_j z_j(x) + c * (score(x) - threshold)``

whose value exceeds every class logit exactly when the detector flags ``x``. A *targeted* attack on this
view towards a class ``t != y`` (``t < K``) succeeds exactly when ``x`` is classified as ``t`` and not
flagged, which is a real break, so the attacks themselves need no change. ``EvadeDetector`` runs a
targeted attack (targeted APGD-DLR by default) against the top ``n_targets`` other classes in turn.

Why this design rather than a penalty added to an untargeted loss: the success check each attack runs
(early stopping, keeping the best point) then means "fooled and unflagged" on its own, with no loss
weight to tune against the check; and the detector's non-differentiable parts (feature squeezing's
bit-depth reduction) are crossed with the same straight-through BPDA, and random ones with the same
EOT, as the classifier. ``c`` (default 1) only shapes the gradients, never the decision: it weighs
the detector against the class margin while the target class does not lead yet; once it leads, the
targeted DLR loss is the score's distance to the threshold up to a positive factor, which the
sign (Linf) or normalised (L2) step ignores. On feature squeezing, the broken fraction varied little
for ``c`` from 1 to 100.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor

from fortify._validate import positive_float, positive_int
from fortify.attacks import APGD, Attack
from fortify.evaluation.adaptive import AdaptivePlan, AttackView, plan_for, straight_through
from fortify.model import Classifier
from fortify.result import DetectorRecord
from fortify.threat import Threat
from fortify.types import DetectorLike, FortifyError, detector_of


def flags(clf: Classifier, x: Tensor) -> Tensor:
    """Boolean ``(N,)`` on the CPU: which of the points ``x`` ``clf``'s detector flags (none without one)."""
    detector = detector_of(clf)
    if detector is None:
        return torch.zeros(x.shape[0], dtype=torch.bool)
    return detector.flagged(x.to(clf.device), batch_size=clf.batch_size).cpu()


class RejectView(AttackView):
    """``clf`` with a reject logit: ``(N, K + 1)`` logits, column ``K`` winning exactly when flagged.

    Class logits as in ``AttackView(clf, plan)``; the detector's score goes through BPDA on its parts in
    ``plan.detector_bpda`` and is averaged with the logits over the plan's EOT draws. ``scale`` is ``c``.
    """

    def __init__(self, clf: Classifier, plan: AdaptivePlan, scale: float) -> None:
        super().__init__(clf, plan)
        self._detector()
        self.num_classes = clf.num_classes + 1
        self.scale = positive_float("scale", scale)

    def _detector(self) -> DetectorLike:
        detector = detector_of(self.defended)
        if detector is None:
            raise FortifyError(f"{type(self.defended).__name__} has no detector to attack")
        return detector

    def _one_draw(self, x: Tensor) -> Tensor:
        logits = super()._one_draw(x)
        detector = self._detector()
        with straight_through(detector, self.plan.detector_bpda):
            score = detector(x)
        reject = logits.amax(dim=1) + self.scale * (score - detector.threshold)
        return torch.cat([logits, reject[:, None]], dim=1)


def reject_view(clf: Classifier, scale: float = 1.0) -> RejectView:
    """The reject view of ``clf``: a classifier with a detector, or an attack view of one."""
    base, plan = (clf.defended, clf.plan) if isinstance(clf, AttackView) else (clf, plan_for(clf))
    return RejectView(base, plan, scale)


class EvadeDetector(Attack):
    """Untargeted evaluation of a classifier with a detector by targeted attacks on its reject view.

    Arguments (keyword-only): ``inner`` (default ``APGD(loss="dlr", targeted=True)``) a targeted
    gradient attack; ``n_targets`` (3) the classes with the highest clean logits besides ``y``, attacked
    in turn, each only on samples not yet broken; ``scale`` (1.0) the reject logit's ``c``;
    ``seed`` (for the default ``inner``).
    Succeeds on a sample with a point classified as a target class and not flagged. Shapes: ``x``
    ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)`` true labels; returns ``x_adv`` like ``x``.

    >>> x_adv = EvadeDetector(n_targets=3)(defended, x, y, ft.Linf(0.1))
    """

    name = "evade-detector"
    supports_targeted = False

    def __init__(
        self,
        *,
        inner: Attack | None = None,
        n_targets: int = 3,
        scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        inner = inner if inner is not None else APGD(loss="dlr", targeted=True, seed=seed)
        if not isinstance(inner, Attack) or not inner.targeted or inner.requires != "gradients":
            raise FortifyError(f"EvadeDetector needs a targeted gradient attack, got {inner!r}")
        self.inner = inner
        self.n_targets = positive_int("n_targets", n_targets)
        self.scale = positive_float("scale", scale)

    def config(self) -> dict[str, object]:
        return {"inner": repr(self.inner), "n_targets": self.n_targets, "scale": self.scale}

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        view = reject_view(clf, self.scale)
        with torch.no_grad():
            logits = view(x)[:, :-1].scatter(1, y[:, None], -math.inf)
        order = logits.argsort(dim=1, descending=True)
        out = x.clone()
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for k in range(min(self.n_targets, clf.num_classes - 1)):
            todo = (~done).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            target = order[todo, k]
            found = self.inner.attack(view, x[todo], target, threat)
            assert found.logits is not None  # a gradient attack's contract always returns the logits
            hit = found.logits.argmax(dim=1) == target  # the reject view's logits from the attack's own check
            out[todo] = found.x_adv
            done[todo[hit]] = True
        return out


def detector_summary(
    clf: Classifier, x: Tensor, correct: Tensor, adv_flagged: Tensor
) -> DetectorRecord | None:
    """The ``Result.detector`` record: description, flag rate on clean inputs and at the attack points.

    ``adversarial_flag_rate`` is over the clean-correct samples, each at its final attack point (the
    point that broke it, else the strongest one found); None without clean-correct samples.
    """
    detector = detector_of(clf)
    if detector is None:
        return None
    n_correct = int(correct.sum())
    record = {
        **detector.describe(),
        "in_objective": True,
        "clean_flag_rate": float(flags(clf, x).float().mean()),
        "adversarial_flag_rate": float(adv_flagged[correct].float().mean()) if n_correct else None,
    }
    return cast(DetectorRecord, record)
