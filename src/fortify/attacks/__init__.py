"""Attacks: every attack is called as ``attack(clf, x, y, threat) -> x_adv``.

Each family lives in its own module; the contract (ball, bounds, shape, dtype, untouched samples) is
held once in ``fortify.attacks.base.Attack``; ``fortify.attacks.runner`` attacks a data set in batches
(``run_batched``) and measures ``accuracy`` / ``robust_accuracy``.
"""

from fortify.attacks.apgd import APGD, APGDT
from fortify.attacks.base import Attack, AttackOutput
from fortify.attacks.constraints import TabularConstraints
from fortify.attacks.cw import CW
from fortify.attacks.deepfool import DeepFool
from fortify.attacks.fgsm import FGSM
from fortify.attacks.fmn import FMN
from fortify.attacks.hopskipjump import HopSkipJump
from fortify.attacks.minimal import MinNormAttack, MinNormOutput, minimal_distances
from fortify.attacks.momentum import MIFGSM
from fortify.attacks.onepixel import OnePixel
from fortify.attacks.pgd import PGD
from fortify.attacks.runner import accuracy, batches, robust_accuracy, run_batched
from fortify.attacks.square import Square
from fortify.attacks.tabular import ConstrainedPGD

__all__ = [
    "Attack",
    "AttackOutput",
    "FGSM",
    "PGD",
    "MIFGSM",
    "APGD",
    "APGDT",
    "CW",
    "DeepFool",
    "FMN",
    "MinNormAttack",
    "MinNormOutput",
    "minimal_distances",
    "Square",
    "HopSkipJump",
    "OnePixel",
    "ConstrainedPGD",
    "TabularConstraints",
    "run_batched",
    "batches",
    "accuracy",
    "robust_accuracy",
]
