"""DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool deep
neural networks", CVPR 2016, arXiv:1511.04599), for L2 and L-infinity.

At each step the classifier is linearised around the current point; among the candidate classes ``k``
the one whose linearised boundary ``f_k - f_y = 0`` is nearest is chosen, and the minimal step onto
that boundary is taken: ``r = |f'_k| / ||w'_k||_2^2 * w'_k`` (L2) or
``r = |f'_k| / ||w'_k||_1 * sign(w'_k)`` (L-infinity, the paper's Section 3.3 for ``p = inf``), with
``w'_k = grad(f_k - f_y)``. Steps accumulate; the point evaluated is
``clip(x + (1 + overshoot) * sum r)``. The candidates are the ``candidates`` classes with the highest clean
logits (the paper's top-10), and the gradients of all of them come from one batched backward pass.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify._validate import positive_float, positive_int
from fortify.attacks.minimal import MinNormAttack
from fortify.model import Classifier
from fortify.threat import Threat
from fortify.threat.base import TINY, per_sample
from fortify.types import FortifyError


def _class_gradients(values: Tensor, x_var: Tensor) -> Tensor:
    """Gradients of each column of ``values`` ``(N, K)`` w.r.t. ``x_var``: ``(K, N, ...)``, one backward."""
    k = values.shape[1]
    basis = torch.eye(k, dtype=values.dtype, device=values.device)[:, None, :].expand(k, values.shape[0], k)
    (grads,) = torch.autograd.grad(values, x_var, grad_outputs=basis, is_grads_batched=True)
    return torch.nan_to_num(grads, nan=0.0, posinf=0.0, neginf=0.0)


class DeepFool(MinNormAttack):
    """DeepFool, untargeted, minimum-norm, L2 or L-infinity.

    Distance: L2 and Linf (a minimum-norm attack: see ``min_norm``; with a threat of radius eps the
    result is projected into the ball).
    Arguments (keyword-only):
      ``steps`` (50) maximum linearisation steps; ``overshoot`` (0.02) the final step is scaled by
      ``1 + overshoot`` to cross the boundary; ``candidates`` (10) classes considered (highest clean
      logits, the true class included); ``seed`` (unused: deterministic). No targeted variant.
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.DeepFool()(clf, x, y, ft.L2(1.0))
    """

    name = "deepfool"
    supports_targeted = False

    def __init__(
        self, *, steps: int = 50, overshoot: float = 0.02, candidates: int = 10, seed: int = 0
    ) -> None:
        super().__init__(seed=seed)
        self.steps = positive_int("steps", steps)
        self.overshoot = positive_float("overshoot", overshoot, allow_zero=True)
        self.candidates = positive_int("candidates", candidates)
        if candidates < 2:
            raise FortifyError(f"candidates must be >= 2 (the true class and one other), got {candidates!r}")

    def _search(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        low, high = clf.bounds
        with torch.no_grad():
            logits = torch.nan_to_num(clf(x), nan=0.0, posinf=1e30, neginf=-1e30)
        k = min(self.candidates, clf.num_classes)
        others = logits.scatter(1, y[:, None], -torch.inf).topk(k - 1, dim=1).indices
        classes = torch.cat([y[:, None], others], dim=1)
        result = x.clone()
        live = torch.arange(x.shape[0], device=x.device)
        x0, r_total, x_adv = x, torch.zeros_like(x), x.clone()
        for _ in range(self.steps):
            x_var = x_adv.requires_grad_(True)
            logits = torch.nan_to_num(clf(x_var), nan=0.0, posinf=1e30, neginf=-1e30)
            chosen = logits.gather(1, classes)
            done = logits.argmax(dim=1) != classes[:, 0]
            if bool(done.any()):
                result[live[done]] = x_adv[done].detach()
                keep = ~done
                live, x0, classes, r_total = live[keep], x0[keep], classes[keep], r_total[keep]
                if live.numel() == 0:
                    return result
                chosen = chosen[keep]
                grads = _class_gradients(chosen, x_var)[:, keep]
            else:
                grads = _class_gradients(chosen, x_var)
            with torch.no_grad():
                r_total = r_total + self._step(chosen.detach(), grads, threat)
                x_adv = (x0 + (1 + self.overshoot) * r_total).clamp(low, high)
        result[live] = x_adv.detach()
        return result

    @staticmethod
    def _step(chosen: Tensor, grads: Tensor, threat: Threat) -> Tensor:
        """The minimal step onto the nearest linearised boundary, per sample ``(N, ...)``: the distance
        ``|f'_k| / ||w'_k||_*`` (dual norm) along the steepest-ascent direction of ``w'_k``."""
        f = (chosen[:, 1:] - chosen[:, :1]).abs()  # (N, K-1)
        w = (grads[1:] - grads[:1]).transpose(0, 1)  # (N, K-1, ...)
        w_flat = w.flatten(2)
        lengths = threat.dual_norm(w_flat.flatten(0, 1)).reshape(f.shape)  # dual norm of each w'_k
        nearest = (f / lengths.clamp_min(TINY)).argmin(dim=1)
        rows = torch.arange(f.shape[0], device=f.device)
        w_k, f_k, len_k = w[rows, nearest], f[rows, nearest], lengths[rows, nearest].clamp_min(TINY)
        r = per_sample((f_k + 1e-4) / len_k, w_k) * threat.ascent_direction(w_k)
        return torch.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)
