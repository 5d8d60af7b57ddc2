"""The attacks by name: the one table of attack names, which the CLI and the evaluation suites look up,
with each attack's paper and threat types. An attack class's ``name`` is its entry's name; the
configurations of one class (APGD with the CE or the DLR loss) have one entry each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fortify._registry import Registry
from fortify.attacks.apgd import APGD, APGDT
from fortify.attacks.base import Attack
from fortify.attacks.cw import CW
from fortify.attacks.deepfool import DeepFool
from fortify.attacks.fgsm import FGSM
from fortify.attacks.fmn import FMN
from fortify.attacks.hopskipjump import HopSkipJump
from fortify.attacks.momentum import MIFGSM
from fortify.attacks.onepixel import OnePixel
from fortify.attacks.pgd import PGD
from fortify.attacks.square import Square
from fortify.types import FortifyError


@dataclass(frozen=True)
class CatalogEntry:
    """One named attack configuration.

    ``budget`` names the keyword that ``--steps`` sets (``"steps"`` or ``"n_queries"``; ``None`` when the
    attack has no iteration budget); ``access`` is what it needs from the model.
    """

    name: str
    factory: Callable[..., Attack]
    paper: str
    norms: tuple[str, ...]
    access: str
    budget: str | None = "steps"

    def build(self, *, seed: int = 0, budget: int | None = None, **options: Any) -> Attack:
        if budget is not None:
            if self.budget is None:
                raise FortifyError(f"{self.name} has no iteration or query budget to set")
            options[self.budget] = budget
        if options.get("targeted") and not self.factory(seed=seed).supports_targeted:
            raise FortifyError(f"{self.name} has no targeted variant")
        return self.factory(seed=seed, **options)


_ENTRIES = [
    CatalogEntry(FGSM.name, FGSM, "Goodfellow et al., ICLR 2015", ("linf", "l2"), "gradients", None),
    CatalogEntry(
        PGD.name,
        lambda **kw: PGD(**{"steps": 40, **kw}),
        "Madry et al., ICLR 2018",
        ("linf", "l2"),
        "gradients",
    ),
    CatalogEntry(
        "apgd-ce", lambda **kw: APGD(loss="ce", **kw), "Croce & Hein, ICML 2020", ("linf", "l2"), "gradients"
    ),
    CatalogEntry(
        "apgd-dlr",
        lambda **kw: APGD(loss="dlr", **kw),
        "Croce & Hein, ICML 2020",
        ("linf", "l2"),
        "gradients",
    ),
    CatalogEntry(APGDT.name, APGDT, "Croce & Hein, ICML 2020", ("linf", "l2"), "gradients"),
    CatalogEntry(CW.name, CW, "Carlini & Wagner, IEEE S&P 2017", ("l2",), "gradients"),
    CatalogEntry(DeepFool.name, DeepFool, "Moosavi-Dezfooli et al., CVPR 2016", ("linf", "l2"), "gradients"),
    CatalogEntry(FMN.name, FMN, "Pintor et al., NeurIPS 2021 (minimum norm)", ("linf", "l2"), "gradients"),
    CatalogEntry(
        MIFGSM.name,
        lambda **kw: MIFGSM(**{"steps": 10, **kw}),
        "Dong et al., CVPR 2018 (transfer)",
        ("linf", "l2"),
        "gradients",
    ),
    CatalogEntry(
        "di-mi-fgsm",
        lambda **kw: MIFGSM(**{"steps": 10, "diversity": 0.5, **kw}),
        "Xie et al., CVPR 2019 (input diversity, transfer)",
        ("linf", "l2"),
        "gradients",
    ),
    CatalogEntry(
        Square.name, Square, "Andriushchenko et al., ECCV 2020", ("linf", "l2"), "scores", "n_queries"
    ),
    CatalogEntry(
        HopSkipJump.name,
        HopSkipJump,
        "Chen, Jordan & Wainwright, IEEE S&P 2020",
        ("linf", "l2"),
        "labels",
        "n_queries",
    ),
    CatalogEntry(OnePixel.name, OnePixel, "Su, Vargas & Sakurai, IEEE TEVC 2019", ("l0",), "scores"),
]
CATALOG: Registry[CatalogEntry] = Registry("attack")
for _entry in _ENTRIES:
    CATALOG.add(_entry.name, _entry)


def lookup(name: str) -> CatalogEntry:
    """The catalogue entry for ``name``; an unknown name is a ``FortifyError`` listing the known ones."""
    key = name.lower().replace("_", "-")
    if key not in CATALOG:
        raise FortifyError(f"unknown attack {name!r}; choose one of {', '.join(CATALOG)}")
    return CATALOG.get(key)
