"""PGD adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models
Resistant to Adversarial Attacks", ICLR 2018, arXiv:1706.06083).

Each batch is replaced by PGD-k adversarial examples (random start, no early stop: the last iterate of
every sample) and the model minimises the cross-entropy on them. ``clean_ratio`` mixes in clean
examples, as practitioners do to keep clean accuracy up: the loss is
``clean_ratio * CE(x) + (1 - clean_ratio) * CE(x_adv)`` (0 = pure Madry, 0.5 = Goodfellow et al.'s mix).

The inner maximisation is ``fortify.attacks.PGD``, so it obeys the attack contract: a sample that is
already misclassified on its clean input is returned unchanged and trained on clean (its loss is
already high), and a sample whose attack did worse than the clean point is trained on the clean point.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from fortify._validate import integer, number
from fortify.attacks import PGD
from fortify.model import Classifier
from fortify.training.methods import (
    StepContext,
    attack_seed,
    attacking,
    register_method,
    require_threat,
)


@register_method("pgd")
class PGDTraining:
    """Madry et al.'s PGD adversarial training.

    Options: ``steps`` (10) PGD iterations, ``rel_stepsize`` (``2.5 / steps``) step as a fraction of eps,
    ``clean_ratio`` (0.0) weight of the clean loss in ``[0, 1]``, ``precision`` (``"fp32"``) the
    arithmetic of the inner attack's iterations: ``"bf16"`` about halves its cost on CPUs with bfloat16
    instructions (``fortify.attacks.Attack``); the training loss itself stays float32.

    >>> ft.train(clf, (x, y), method="pgd", threat=ft.Linf(0.1), steps=10, epochs=5)
    """

    name = "pgd"

    def __init__(
        self,
        *,
        steps: int = 10,
        rel_stepsize: float | None = None,
        clean_ratio: float = 0.0,
        precision: str = "fp32",
    ) -> None:
        integer("steps", steps, low=1)
        PGD(precision=precision)  # refuses an unknown precision now, not at the first batch
        self.precision = precision
        self.steps = steps
        self.rel_stepsize = rel_stepsize if rel_stepsize is not None else 2.5 / steps
        number("rel_stepsize", self.rel_stepsize, low=1e-6, high=10.0)
        self.clean_ratio = number("clean_ratio", clean_ratio, low=0, high=1)

    def loss(self, clf: Classifier, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        threat = require_threat(ctx, self.name)
        if threat.eps == 0 or self.clean_ratio == 1.0:
            return F.cross_entropy(clf(x), y)
        attack = PGD(
            steps=self.steps,
            rel_stepsize=self.rel_stepsize,
            early_stop=False,
            seed=attack_seed(ctx),
            precision=self.precision,
        )
        with attacking(clf, ctx):
            x_adv = attack(clf, x, y, threat)
        adv_loss = F.cross_entropy(clf(x_adv), y)
        if self.clean_ratio == 0.0:
            return adv_loss
        return self.clean_ratio * F.cross_entropy(clf(x), y) + (1 - self.clean_ratio) * adv_loss
