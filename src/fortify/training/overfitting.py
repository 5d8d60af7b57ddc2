"""Catastrophic overfitting: detection on a held-out batch, and the state to recover from it.

Single-step adversarial training can collapse within a few batches: the model learns a locally
curved loss surface on which the FGSM step is useless, so accuracy against FGSM *rises* while accuracy
against multi-step PGD falls to near zero (Wong, Rice & Kolter, ICLR 2020, section 5.2; Andriushchenko &
Flammarion, NeurIPS 2020). The monitor measures both on a fixed batch every few steps. A check is a
collapse when, compared with the last good check, PGD accuracy fell by at least ``drop`` and the gap
``FGSM - PGD`` widened by at least ``drop`` (PGD falls while FGSM holds or rises). Otherwise the check
is good and the monitor keeps a copy of the weights and optimizer state, so the training loop can step
back to them and shrink the attack step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fortify._validate import number
from fortify.attacks import FGSM, PGD
from fortify.attacks.runner import accuracy
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.training.early_stopping import snapshot


@dataclass
class OverfittingCheck:
    step: int
    fgsm_accuracy: float
    pgd_accuracy: float
    collapsed: bool


class CatastrophicOverfittingMonitor:
    """Watches FGSM and PGD-``pgd_steps`` accuracy on ``(x, y)`` under ``threat``; keeps the last good
    state."""

    def __init__(
        self, x: Tensor, y: Tensor, threat: Threat, *, drop: float = 0.2, pgd_steps: int = 10, seed: int = 0
    ) -> None:
        self.x, self.y, self.threat = x, y, threat
        self.drop = number("co_drop", drop, low=1e-3, high=1)
        self.fgsm = FGSM(seed=seed)
        self.pgd = PGD(steps=pgd_steps, seed=seed)
        self.reference: OverfittingCheck | None = None
        self._good: tuple[dict[str, Tensor], dict[str, Any]] | None = None

    def measure(self, clf: Classifier) -> tuple[float, float]:
        """(FGSM accuracy, PGD accuracy) on the monitored batch, in eval mode."""
        was_training = clf.module.training
        clf.module.eval()
        try:
            x, y = self.x.to(clf.device), self.y.to(clf.device)
            accs = []
            for attack in (self.fgsm, self.pgd):
                accs.append(accuracy(clf, attack(clf, x, y, self.threat), y, check=False))
        finally:
            clf.module.train(was_training)
        return accs[0], accs[1]

    def check(self, clf: Classifier, optimizer: torch.optim.Optimizer, step: int) -> OverfittingCheck:
        """Measure; a good check becomes the new reference and its state the one to return to."""
        fgsm_acc, pgd_acc = self.measure(clf)
        ref = self.reference
        collapsed = (
            ref is not None
            and ref.pgd_accuracy - pgd_acc >= self.drop
            and (fgsm_acc - pgd_acc) - (ref.fgsm_accuracy - ref.pgd_accuracy) >= self.drop
        )
        result = OverfittingCheck(step, fgsm_acc, pgd_acc, collapsed)
        if not collapsed:
            self.reference = result
            self._good = (snapshot(clf.module), copy.deepcopy(optimizer.state_dict()))
        return result

    def restore(self, clf: Classifier, optimizer: torch.optim.Optimizer) -> None:
        """Step back to the weights and optimizer state of the last good check."""
        if self._good is not None:
            clf.module.load_state_dict(self._good[0])
            optimizer.load_state_dict(copy.deepcopy(self._good[1]))
