"""Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, arXiv:2003.01690), with the cross-entropy and DLR losses.

APGD is PGD with momentum whose step size needs no tuning: it starts at ``2 * eps`` and is halved at
checkpoints ``w_j = ceil(p_j * steps)`` (``p_0 = 0``, ``p_1 = 0.22``,
``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``) when the loss rose in fewer than ``rho`` of the
steps since the last checkpoint (condition 1) or when the step was not halved at the last checkpoint
and the best loss has not improved since (condition 2); a halving restarts from the best point so far.
APGD-T attacks, one after the other, the ``n_target_classes`` classes with the highest clean logits
(besides the true one) with the targeted DLR loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fortify._validate import choice, fraction, positive_int
from fortify.attacks.base import Attack, attack_loss, confirm_success, input_gradient, is_success
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.threat.base import TINY, per_sample
from fortify.types import FortifyError

LOSSES = ("ce", "dlr")


def _finite(logits: Tensor) -> Tensor:
    return torch.nan_to_num(logits, nan=0.0, posinf=1e30, neginf=-1e30)


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Difference of Logits Ratio ``-(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3)`` per sample ``(N,)``.

    ``z_pi1 >= z_pi2 >= ...`` are the sorted logits. Invariant to shifting and scaling the logits; needs
    at least 3 classes.
    """
    z = _finite(logits)
    top = z.sort(dim=1, descending=True).values
    z_y = z.gather(1, y[:, None]).squeeze(1)
    z_other = z.scatter(1, y[:, None], -math.inf).amax(dim=1)
    return -(z_y - z_other) / (top[:, 0] - top[:, 2] + TINY)


def targeted_dlr_loss(logits: Tensor, target: Tensor, source: Tensor | None = None) -> Tensor:
    """Targeted DLR ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)`` per sample ``(N,)``.

    ``source`` is the class ``y`` to move away from (the true class in APGD-T); ``None`` means the
    strongest class other than the target at the current point. With 3 classes ``z_pi4`` is ``z_pi3``.
    """
    z = _finite(logits)
    top = z.sort(dim=1, descending=True).values
    z_t = z.gather(1, target[:, None]).squeeze(1)
    if source is None:
        z_y = z.scatter(1, target[:, None], -math.inf).amax(dim=1)
    else:
        z_y = z.gather(1, source[:, None]).squeeze(1)
    fourth = top[:, min(3, z.shape[1] - 1)]
    return -(z_y - z_t) / (top[:, 0] - (top[:, 2] + fourth) / 2 + TINY)


def checkpoints(steps: int) -> list[int]:
    """The iterations ``w_1 < w_2 < ...`` (1-based, at most ``steps``) where APGD may halve its step."""
    p_prev, p = 0.0, 0.22
    marks: list[int] = []
    while p <= 1:
        w = math.ceil(round(p * steps, 9))
        if marks and w <= marks[-1]:
            w = marks[-1] + 1
        if w > steps:
            break
        marks.append(max(w, 1))
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)
    return marks


@dataclass
class _State:
    """Per-sample state of one APGD run; rows drop out as samples succeed (early stop)."""

    idx: Tensor
    x: Tensor
    y: Tensor
    target: Tensor | None
    x_adv: Tensor
    x_prev: Tensor
    grad: Tensor
    loss: Tensor
    step: Tensor
    x_best: Tensor
    grad_best: Tensor
    loss_best: Tensor
    loss_best_ckpt: Tensor
    reduced: Tensor
    increases: Tensor

    def keep(self, mask: Tensor) -> _State:
        kept: dict[str, Any] = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[mask]
            for f in fields(self)
        }
        return _State(**kept)


class APGD(Attack):
    """APGD with the CE or DLR loss, untargeted, targeted, or over the top-k target classes (APGD-T).

    Distance: Linf and L2.
    Arguments (keyword-only):
      ``loss`` ("ce") ``"ce"`` or ``"dlr"`` (DLR needs >= 3 classes);
      ``steps`` (100) iterations per run (one gradient each, plus one at the start);
      ``restarts`` (1) random starts per run, each only on samples not yet broken;
      ``n_target_classes`` (None) untargeted evaluation through targets: run once per each of the k
      classes with the highest clean logits (besides ``y``) with the targeted loss (targeted DLR or CE
      to the target); a sample counts as broken when misclassified at all;
      ``skip_targets`` (0) with ``n_target_classes``, start at the class ranked ``skip_targets + 1``
      (a second pass over the targets a first pass did not try);
      ``rho`` (0.75) condition-1 threshold; ``momentum`` (0.75) the paper's ``alpha``;
      ``early_stop`` (True) stop a sample's run at its first success; ``False`` runs every step;
      ``targeted`` (``y`` are target labels; DLR then measures the target against the strongest other
      class), ``seed``.
    Starts uniformly inside the ball (the reference code starts on its boundary).
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.APGD(loss="dlr", steps=100)(clf, x, y, ft.Linf(0.1))
    """

    name = "apgd"
    supports_precision = True

    def __init__(
        self,
        *,
        loss: str = "ce",
        steps: int = 100,
        restarts: int = 1,
        n_target_classes: int | None = None,
        skip_targets: int = 0,
        rho: float = 0.75,
        momentum: float = 0.75,
        early_stop: bool = True,
        targeted: bool = False,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        super().__init__(targeted=targeted, seed=seed, precision=precision)
        self.loss = choice("loss", loss, LOSSES)
        self.steps = positive_int("steps", steps)
        self.restarts = positive_int("restarts", restarts)
        if n_target_classes is not None:
            positive_int("n_target_classes", n_target_classes)
            if targeted:
                raise FortifyError("n_target_classes picks its own targets; it excludes targeted=True")
        self.n_target_classes = n_target_classes
        if not isinstance(skip_targets, int) or isinstance(skip_targets, bool) or skip_targets < 0:
            raise FortifyError(f"skip_targets must be an integer >= 0, got {skip_targets!r}")
        if skip_targets and n_target_classes is None:
            raise FortifyError("skip_targets goes with n_target_classes")
        self.skip_targets = skip_targets
        self.rho = fraction("rho", rho)
        self.momentum = fraction("momentum", momentum)
        self.early_stop = bool(early_stop)

    def _objective(self, logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """Per-sample loss to maximise."""
        if target is None and not self.targeted:
            if self.loss == "dlr":
                return dlr_loss(logits, y)
            return F.cross_entropy(_finite(logits), y, reduction="none")
        goal = y if target is None else target
        if self.loss == "dlr":
            return targeted_dlr_loss(logits, goal, None if target is None else y)
        return -F.cross_entropy(_finite(logits), goal, reduction="none")

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        if self.loss == "dlr" and clf.num_classes < 3:
            raise FortifyError(f"the DLR loss needs at least 3 classes, the classifier has {clf.num_classes}")
        best = x.clone()
        best_score = torch.full((x.shape[0],), -torch.inf, device=x.device, dtype=x.dtype)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for target in self._targets(clf, x, y):
            for _ in range(self.restarts):
                todo = (~done).nonzero().squeeze(1)
                if todo.numel() == 0:
                    return best
                goal = None if target is None else target[todo]
                x_run, hit = self._one_run(clf, x[todo], y[todo], goal, threat, generator)
                with torch.no_grad():
                    score = attack_loss(clf(x_run), y[todo], self.targeted)
                better = hit | (score > best_score[todo])
                best[todo[better]] = x_run[better]
                best_score[todo[better]] = score[better]
                done[todo[hit]] = True
        return best

    def _targets(self, clf: Classifier, x: Tensor, y: Tensor) -> list[Tensor | None]:
        if self.n_target_classes is None:
            return [None]
        with torch.no_grad():
            logits = _finite(clf(x)).scatter(1, y[:, None], -math.inf)
        order = logits.argsort(dim=1, descending=True)
        last = min(self.skip_targets + self.n_target_classes, clf.num_classes - 1)
        return [order[:, k] for k in range(self.skip_targets, last)]

    def _loss_grad(
        self, clf: Classifier, x_adv: Tensor, s_y: Tensor, target: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        x_var = x_adv.clone().requires_grad_(True)
        logits = clf(x_var)
        loss = self._objective(logits, s_y, target)
        grad = input_gradient(loss, x_var)
        return torch.nan_to_num(loss.detach(), nan=-torch.inf), grad, logits.detach()

    def _one_run(
        self,
        clf: Classifier,
        x: Tensor,
        y: Tensor,
        target: Tensor | None,
        threat: Threat,
        generator: torch.Generator,
    ) -> tuple[Tensor, Tensor]:
        """One run from a random start: (first adversarial iterate, else the best-loss point; success)."""
        x_adv = threat.random_start(x, clf.bounds, generator)
        loss, grad, logits = self._loss_grad(clf, x_adv, y, target)
        out, found = (
            x_adv.clone(),
            confirm_success(clf, x_adv, is_success(logits, y, self.targeted), y, self.targeted),
        )
        n = x.shape[0]
        s = _State(
            idx=torch.arange(n, device=x.device),
            x=x,
            y=y,
            target=target,
            x_adv=x_adv,
            x_prev=x_adv,
            grad=grad,
            loss=loss,
            step=torch.full((n,), 2 * threat.eps, device=x.device, dtype=x.dtype),
            x_best=x_adv,
            grad_best=grad,
            loss_best=loss,
            loss_best_ckpt=loss,
            reduced=torch.zeros(n, dtype=torch.bool, device=x.device),
            increases=torch.zeros(n, device=x.device, dtype=x.dtype),
        )
        if self.early_stop:
            s = s.keep(~found)
        marks = checkpoints(self.steps)
        spans = dict(zip(marks, [b - a for a, b in zip([0, *marks[:-1]], marks, strict=True)], strict=True))
        for i in range(self.steps):
            if s.idx.numel() == 0:
                return out, found
            with torch.no_grad():
                momentum = self.momentum if i else 1.0  # the first step has no previous step
                s.x_prev, s.x_adv = s.x_adv, self._update(s, threat, clf, momentum)
            loss, grad, logits = self._loss_grad(clf, s.x_adv, s.y, s.target)
            with torch.no_grad():
                s = self._record(clf, s, loss, grad, logits, out, found)
                if i + 1 in spans and s.idx.numel():
                    self._checkpoint(s, spans[i + 1])
        unfinished = ~found[s.idx]
        out[s.idx[unfinished]] = s.x_best[unfinished]
        return out, found

    @staticmethod
    def _update(s: _State, threat: Threat, clf: Classifier, momentum: float) -> Tensor:
        """``z = P(x + eta * dir(grad))``, then ``P(x + a (z - x) + (1 - a)(x - x_prev))``."""
        low, high = clf.bounds
        step = per_sample(s.step, s.x_adv) * threat.ascent_direction(s.grad)
        z = threat.project(s.x_adv + step, s.x).clamp(low, high)
        moved = s.x_adv + momentum * (z - s.x_adv) + (1 - momentum) * (s.x_adv - s.x_prev)
        return threat.project(moved, s.x).clamp(low, high)

    def _record(
        self,
        clf: Classifier,
        s: _State,
        loss: Tensor,
        grad: Tensor,
        logits: Tensor,
        out: Tensor,
        found: Tensor,
    ) -> _State:
        """Store successes (dropping them under early stop), count increases, keep the best point."""
        hit = is_success(logits, s.y, self.targeted) & ~found[s.idx]
        hit = confirm_success(clf, s.x_adv, hit, s.y, self.targeted)
        out[s.idx[hit]] = s.x_adv[hit]
        found[s.idx[hit]] = True
        s.increases = s.increases + (loss > s.loss).to(s.increases.dtype)
        s.loss, s.grad = loss, grad
        better = loss > s.loss_best
        s.loss_best = torch.where(better, loss, s.loss_best)
        s.x_best = torch.where(per_sample(better, s.x_adv), s.x_adv, s.x_best)
        s.grad_best = torch.where(per_sample(better, grad), grad, s.grad_best)
        return s.keep(~hit) if self.early_stop and bool(hit.any()) else s

    def _checkpoint(self, s: _State, span: int) -> None:
        """Halve the step (and return to the best point) where condition 1 or condition 2 holds."""
        few_increases = s.increases < self.rho * span
        stalled = ~s.reduced & (s.loss_best_ckpt >= s.loss_best)
        reduce = few_increases | stalled
        s.step = torch.where(reduce, s.step / 2, s.step)
        s.x_adv = torch.where(per_sample(reduce, s.x_adv), s.x_best, s.x_adv)
        s.grad = torch.where(per_sample(reduce, s.grad), s.grad_best, s.grad)
        s.reduced = reduce
        s.loss_best_ckpt = s.loss_best
        s.increases = torch.zeros_like(s.increases)


class APGDT(APGD):
    """APGD-T: untargeted evaluation by targeted DLR runs against the top ``n_target_classes`` (9) classes.

    Same arguments as ``APGD`` (``loss`` defaults to ``"dlr"``); ``y`` are the true labels.

    >>> x_adv = ft.attacks.APGDT(steps=100)(clf, x, y, ft.Linf(0.1))
    """

    name = "apgd-t"
    supports_targeted = False

    def __init__(
        self,
        *,
        loss: str = "dlr",
        steps: int = 100,
        restarts: int = 1,
        n_target_classes: int = 9,
        skip_targets: int = 0,
        rho: float = 0.75,
        momentum: float = 0.75,
        early_stop: bool = True,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        super().__init__(
            precision=precision,
            loss=loss,
            steps=steps,
            restarts=restarts,
            n_target_classes=n_target_classes,
            skip_targets=skip_targets,
            rho=rho,
            momentum=momentum,
            early_stop=early_stop,
            seed=seed,
        )
