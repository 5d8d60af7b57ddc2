"""The declarative list of attacks that the contract tests run against.

Add one ``AttackCase`` per attack configuration; ``test_contract.py`` then checks the contract for it:
ball, bounds, shape, dtype, device, untouched samples, no-worse-than-clean, labels of any integer dtype.
``threats`` lists the norms the attack supports; ``eps`` are radii on the tiny synthetic model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import fortify as ft


@dataclass(frozen=True)
class AttackCase:
    id: str
    make: Callable[[], ft.attacks.Attack]
    threats: tuple[str, ...] = ("linf", "l2")
    eps: dict[str, float] = field(default_factory=lambda: {"linf": 0.3, "l2": 2.0})
    breaks_undefended: bool = True


CASES: list[AttackCase] = [
    AttackCase("fgsm", lambda: ft.attacks.FGSM(), breaks_undefended=False),
    AttackCase("pgd", lambda: ft.attacks.PGD(steps=10)),
    AttackCase("pgd-restarts", lambda: ft.attacks.PGD(steps=5, restarts=2)),
    AttackCase("pgd-no-early-stop", lambda: ft.attacks.PGD(steps=10, early_stop=False)),
    AttackCase("apgd-ce", lambda: ft.attacks.APGD(steps=5)),
    AttackCase("apgd-dlr-no-early-stop", lambda: ft.attacks.APGD(loss="dlr", steps=5, early_stop=False)),
    AttackCase("apgd-t", lambda: ft.attacks.APGDT(steps=5, n_target_classes=2)),
    AttackCase("cw", lambda: ft.attacks.CW(steps=10, binary_search_steps=2, lr=0.1), threats=("l2",)),
    AttackCase("deepfool", lambda: ft.attacks.DeepFool()),
    AttackCase("fmn", lambda: ft.attacks.FMN(steps=10)),
    # black-box attacks at tiny budgets: the contract here, strength in test_square / test_hopskipjump
    AttackCase("square", lambda: ft.attacks.Square(n_queries=40), breaks_undefended=False),
    AttackCase(
        "hopskipjump",
        lambda: ft.attacks.HopSkipJump(n_queries=120, steps=4, init_evals=10),
        breaks_undefended=False,
    ),
]
