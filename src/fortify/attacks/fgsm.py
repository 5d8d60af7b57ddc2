"""Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy, ICLR 2015, arXiv:1412.6572).

One step of size ``eps`` along the steepest-ascent direction of the loss under the threat's norm: the
gradient's sign for L-infinity (FGSM), the normalised gradient for L2 (the "fast gradient method").
"""

from __future__ import annotations

import torch
from torch import Tensor

from fortify.attacks.base import Attack, attack_loss, input_gradient
from fortify.model import Classifier
from fortify.threat import Threat


class FGSM(Attack):
    """Single-step attack: ``x_adv = clip(x + eps * direction(grad_x loss))``.

    Distance: any threat (Linf gives FGSM, L2 the fast gradient method).
    Arguments: ``targeted`` (``y`` are target labels; the step then descends the target's loss),
    ``seed`` (unused: FGSM is deterministic).
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.FGSM()(clf, x, y, ft.Linf(0.1))
    """

    name = "fgsm"

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        x_var = x.clone().requires_grad_(True)
        grad = input_gradient(attack_loss(clf(x_var), y, self.targeted), x_var)
        return x + threat.eps * threat.ascent_direction(grad)
