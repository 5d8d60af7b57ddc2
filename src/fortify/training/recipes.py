"""Named training recipes: the settings of a documented run, stage by stage, reproducible by name.

A recipe is what ``fortify train --recipe NAME`` runs: a dataset, an architecture and one or more
stages, each a set of ``fortify train`` options; every stage after the first fine-tunes the model the
previous one saved. The figures each recipe reached, and the runs that led to it, are in BENCHMARKS.md
("Hardening"); the README's hardening section names the recommended one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fortify.types import FortifyError


@dataclass(frozen=True)
class Recipe:
    """``stages``: each a mapping of ``fortify train`` option names (Python spelling) to values."""

    name: str
    description: str
    dataset: str
    arch: str
    stages: tuple[dict[str, Any], ...] = field(default_factory=tuple)


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="fmnist-linf-0.1",
            description=(
                "Fashion-MNIST, Linf 0.1: cnn-wide (Madry et al.'s MNIST model), 5 epochs of N-FGSM "
                "fast adversarial training with a cosine learning rate, the best epoch by PGD-10 "
                "validation accuracy on 1,000 held-out training images kept; then 8 epochs of PGD-10 "
                "adversarial training from it at half the learning rate"
            ),
            dataset="fashion-mnist",
            arch="cnn-wide",
            stages=(
                dict(method="fast", eps=0.1, epochs=5, lr=1e-3, lr_schedule="cosine", val_n=1000),
                dict(method="pgd", eps=0.1, epochs=8, lr=5e-4, lr_schedule="cosine", val_n=1000, steps=10),
            ),
        ),
    )
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; ``FortifyError`` naming the known ones otherwise."""
    if name not in RECIPES:
        raise FortifyError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]
