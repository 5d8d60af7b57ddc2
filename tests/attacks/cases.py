"""The declarative list of attacks that the contract tests run against.

Add one ``AttackCase`` per attack configuration; ``test_contract.py`` then checks the contract for it:
ball, bounds, shape, dtype, device, untouched samples, no-worse-than-clean, labels of any integer dtype.
``threats`` lists the norms the attack supports; ``eps`` are radii on the tiny synthetic model (a pixel
count for ``l0``). ``model`` names the fixture the case runs on: ``tiny_cnn`` (images), ``tiny_mlp``
(a table, for the tabular attack) or ``tiny_guarded`` (the CNN behind a detector, for EvadeDetector).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import fortify as ft
from fortify.evaluation.detection import EvadeDetector


@dataclass(frozen=True)
class AttackCase:
    id: str
    make: Callable[[], ft.attacks.Attack]
    threats: tuple[str, ...] = ("linf", "l2")
    eps: dict[str, float] = field(default_factory=lambda: {"linf": 0.3, "l2": 2.0})
    breaks_undefended: bool = True
    model: str = "tiny_cnn"

    def threat(self, norm: str, scale: float = 1.0) -> ft.Threat:
        """The case's threat of ``norm`` at ``scale`` times its radius (at least one pixel for l0)."""
        eps = self.eps[norm] * scale
        return ft.L0(max(1, round(eps))) if norm == "l0" else ft.make_threat(norm, eps)


CASES: list[AttackCase] = [
    AttackCase("fgsm", lambda: ft.attacks.FGSM(), breaks_undefended=False),
    AttackCase("pgd", lambda: ft.attacks.PGD(steps=10)),
    AttackCase("pgd-restarts", lambda: ft.attacks.PGD(steps=5, restarts=2)),
    AttackCase("pgd-no-early-stop", lambda: ft.attacks.PGD(steps=10, early_stop=False)),
    AttackCase("apgd-ce", lambda: ft.attacks.APGD(steps=5)),
    AttackCase("apgd-dlr-no-early-stop", lambda: ft.attacks.APGD(loss="dlr", steps=5, early_stop=False)),
    AttackCase("apgd-t", lambda: ft.attacks.APGDT(steps=5, n_target_classes=2)),
    # reduced precision iterations (verdicts in float32): the same contract
    AttackCase("fgsm-bf16", lambda: ft.attacks.FGSM(precision="bf16"), breaks_undefended=False),
    AttackCase("pgd-bf16", lambda: ft.attacks.PGD(steps=10, precision="bf16")),
    AttackCase("apgd-ce-bf16", lambda: ft.attacks.APGD(steps=5, precision="bf16")),
    AttackCase("apgd-t-bf16", lambda: ft.attacks.APGDT(steps=5, n_target_classes=2, precision="bf16")),
    AttackCase("cw", lambda: ft.attacks.CW(steps=10, binary_search_steps=2, lr=0.1), threats=("l2",)),
    AttackCase("deepfool", lambda: ft.attacks.DeepFool()),
    AttackCase("fmn", lambda: ft.attacks.FMN(steps=10)),
    AttackCase("mi-fgsm", lambda: ft.attacks.MIFGSM(steps=10)),
    # input diversity shifts 8x8 images by up to 2 pixels per step: the contract here, not strength
    AttackCase("di-mi-fgsm", lambda: ft.attacks.MIFGSM(steps=10, diversity=0.7), breaks_undefended=False),
    # black-box attacks at tiny budgets: the contract here, strength in test_square / test_hopskipjump
    AttackCase("square", lambda: ft.attacks.Square(n_queries=40), breaks_undefended=False),
    AttackCase(
        "hopskipjump",
        lambda: ft.attacks.HopSkipJump(n_queries=120, steps=4, init_evals=10),
        breaks_undefended=False,
    ),
    AttackCase(
        "onepixel",
        lambda: ft.attacks.OnePixel(pixels=1, population=8, steps=3),
        threats=("l0",),
        eps={"l0": 1},
        breaks_undefended=False,
    ),
    AttackCase(
        "constrained-pgd",
        lambda: ft.attacks.ConstrainedPGD(steps=5),
        eps={"linf": 0.2, "l2": 1.0},
        breaks_undefended=False,
        model="tiny_mlp",
    ),
    AttackCase(
        "evade-detector",
        lambda: EvadeDetector(inner=ft.attacks.APGD(loss="dlr", targeted=True, steps=5), n_targets=2),
        breaks_undefended=False,
        model="tiny_guarded",
    ),
]
