"""Single-step ("fast") adversarial training that does not collapse.

Two variants, chosen with ``variant``:

- ``"fgsm-rs"``: FGSM from a uniformly random start in the ball, step ``alpha * eps`` (default
  ``alpha = 1.25``), projected back into the ball (Wong, Rice & Kolter, "Fast is better than free:
  Revisiting adversarial training", ICLR 2020, arXiv:2001.03994). Implemented as
  ``fortify.attacks.PGD(steps=1, random_start=True, early_stop=False)``.
- ``"n-fgsm"``: noise from a ``k``-times larger ball (default ``k = 2``), then an FGSM step of
  ``alpha * eps`` (default ``alpha = 1.0``) *without* projecting back to the eps-ball (de Jorge et al.,
  "Make Some Noise: Reliable and Efficient Single-Step Adversarial Training", NeurIPS 2022,
  arXiv:2202.01181). The training perturbation may reach ``(k + alpha) * eps``; this is the paper's
  point, and it avoids catastrophic overfitting at larger eps without GradAlign's double backward.
  Implemented as ``fortify.attacks.FGSM`` on the noisy point.

Both cost one input-gradient per batch. Catastrophic overfitting (robust accuracy against PGD suddenly
collapses while FGSM accuracy rises) is watched by the training loop (``co_check_every``); on detection
it restores the last good weights and calls ``shrink_step`` here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from fortify._validate import positive_number
from fortify.attacks import FGSM, PGD
from fortify.model import Classifier
from fortify.training.methods import (
    StepContext,
    attack_seed,
    attacking,
    register_method,
    require_threat,
)
from fortify.types import FortifyError

VARIANTS = ("fgsm-rs", "n-fgsm")
_DEFAULT_ALPHA = {"fgsm-rs": 1.25, "n-fgsm": 1.0}


@register_method("fast")
class FastTraining:
    """Single-step adversarial training (N-FGSM or FGSM-RS).

    Options: ``variant`` (``"n-fgsm"``: on Fashion-MNIST cnn-small at Linf 0.1, 10k images x 5 epochs,
    it reached 67.6% PGD-50 accuracy against FGSM-RS's 61.4% at the same cost, see BENCHMARKS.md),
    ``alpha`` step as a fraction of eps (1.0 for N-FGSM, 1.25 for FGSM-RS), ``noise`` (``k``, N-FGSM
    only, default 2.0).

    >>> ft.train(clf, (x, y), method="fast", threat=ft.Linf(0.1), epochs=5)
    """

    name = "fast"

    def __init__(self, *, variant: str = "n-fgsm", alpha: float | None = None, noise: float = 2.0) -> None:
        if variant not in VARIANTS:
            raise FortifyError(f"unknown fast variant {variant!r}; choose one of {list(VARIANTS)}")
        self.variant = variant
        self.alpha = positive_number("alpha", alpha if alpha is not None else _DEFAULT_ALPHA[variant])
        self.noise = positive_number("noise", noise)

    def shrink_step(self, factor: float) -> bool:
        """Multiply the step by ``factor`` (< 1): the recovery from catastrophic overfitting."""
        self.alpha *= factor
        return True

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        threat = require_threat(ctx, self.name)
        if threat.eps == 0:
            return F.cross_entropy(clf(x), y)
        seed = attack_seed(ctx)
        with attacking(clf, ctx):
            if self.variant == "fgsm-rs":
                attack = PGD(steps=1, step_size=self.alpha * threat.eps, early_stop=False, seed=seed)
                x_adv = attack(clf, x, y, threat)
            else:
                x_noisy = threat.with_eps(self.noise * threat.eps).random_start(x, clf.bounds, ctx.generator)
                x_adv = FGSM(seed=seed)(clf, x_noisy, y, threat.with_eps(self.alpha * threat.eps))
        return F.cross_entropy(clf(x_adv), y)
