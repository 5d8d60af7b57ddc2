"""Attacks: every attack is called as ``attack(clf, x, y, threat) -> x_adv``.

Each family lives in its own module; the contract (ball, bounds, shape, dtype, untouched samples) is
held once in ``fortify.attacks.base.Attack``.
"""

from fortify.attacks.base import Attack, AttackOutput
from fortify.attacks.fgsm import FGSM
from fortify.attacks.pgd import PGD

__all__ = ["Attack", "AttackOutput", "FGSM", "PGD"]
