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
    ``seed`` (unused: FGSM is deterministic), ``precision`` (``fp32`` | ``bf16``, see ``Attack``).
    Shapes: ``x`` ``(N, ...)`` in the classifier's bounds, ``y`` ``(N,)``; returns ``x_adv`` like ``x``.

    >>> x_adv = ft.attacks.FGSM()(clf, x, y, ft.Linf(0.1))
    """

    name = "fgsm"
    supports_precision = True

    def _run(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> Tensor:
        return self._run_with_clean_logits(clf, x, y, threat, generator)[1]

    def _run_with_clean_logits(
        self, clf: Classifier, x: Tensor, y: Tensor, threat: Threat, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        # The gradient pass is a forward on the clean input: its logits serve the contract's clean check.
        x_var = x.clone().requires_grad_(True)
        logits = clf.check_output(clf(x_var), x.shape[0])
        grad = input_gradient(attack_loss(logits, y, self.targeted), x_var)
        return logits.detach(), x + threat.eps * threat.ascent_direction(grad)
