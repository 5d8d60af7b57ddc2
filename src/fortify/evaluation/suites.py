"""Attack suites: named, ordered lists of attacks that ``evaluate`` runs.

A suite is a function ``(threat, seed) -> list[SuiteEntry]``, registered by name, so later suites
(``standard``, ``strong``) plug in without touching ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fortify.attacks import FGSM, PGD, Attack
from fortify.threat import Threat
from fortify.types import FortifyError


@dataclass(frozen=True)
class SuiteEntry:
    """One attack of a suite.

    ``ran_on="all"`` runs it on every clean-correct sample (its own accuracy is then reported);
    ``"remaining"`` runs it only on samples no earlier attack broke (cheaper; AutoAttack's semantics).
    """

    name: str
    attack: Attack
    ran_on: Literal["all", "remaining"] = "remaining"


SuiteFactory = Callable[[Threat, int], list[SuiteEntry]]
_SUITES: dict[str, SuiteFactory] = {}


def register_suite(name: str) -> Callable[[SuiteFactory], SuiteFactory]:
    def add(factory: SuiteFactory) -> SuiteFactory:
        _SUITES[name] = factory
        return factory

    return add


def suite_names() -> list[str]:
    return sorted(_SUITES)


def build_suite(name: str, threat: Threat, seed: int) -> list[SuiteEntry]:
    if name not in _SUITES:
        raise FortifyError(f"unknown suite {name!r}; choose one of {suite_names()}")
    return _SUITES[name](threat, seed)


@register_suite("quick")
def quick(threat: Threat, seed: int) -> list[SuiteEntry]:
    """FGSM, then PGD-20 with one restart, each on every clean-correct sample."""
    return [
        SuiteEntry("fgsm", FGSM(seed=seed), ran_on="all"),
        SuiteEntry("pgd", PGD(steps=20, seed=seed), ran_on="all"),
    ]
