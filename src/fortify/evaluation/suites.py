"""Attack suites: named, ordered lists of attacks that ``evaluate`` runs.

A suite is a function ``(threat, seed, evidence) -> list[SuiteEntry]``, registered by name. ``evidence``
is what evaluation measured about the model before attacking it (are its gradients informative, is it
random, how many classes), so a suite can spend its budget where the evidence says it is needed.

- ``quick``: FGSM and PGD-20 (APGD-DLR-20 when cross-entropy gradients vanish), each on every
  sample; a smoke test, not a robustness claim.
- ``standard``: at least as strong as AutoAttack's standard version at the paper's 100 iterations, at
  about a tenth of its model passes (BENCHMARKS.md, "Evaluation"). Every attack runs only on the
  samples still unbroken, cheapest first, each stopping per sample at its first success: APGD-CE, then
  APGD-T (targeted DLR) with targets chosen by each sample's margin: the most likely other class for
  every survivor, the next two for survivors that some attack point left below ``NEAR`` probability
  of their true class, every other class for those below ``CLOSE_CALL`` (the close calls: the budget
  goes where it changes answers, while AutoAttack runs nine targets on every sample alike; Croce &
  Hein 2020; Liu et al., "Practical Evaluation of Adversarial Robustness via Adaptive Auto Attack",
  CVPR 2022), then the black-box Square attack: at AutoAttack's 5,000 queries on every survivor when
  the gradient check found masked gradients, otherwise as a probe on ``SQUARE_PROBE`` survivors that
  escalates to the full attack on every survivor when it breaks one. When cross-entropy gradients
  vanish (saturated softmax) the first attack is APGD on the DLR loss and every survivor gets every
  target: saturated probabilities say nothing about margins.
- ``strong``: for sign-off: APGD-CE with 5 restarts, APGD-T over every other class, the FMN
  minimum-norm attack, and Square with 10,000 queries.

When the model has a detector (``evidence.detector``), every suite also runs ``evade-detector``
(``fortify.evaluation.detection``: targeted APGD-DLR on the reject view, so the detector is in the
objective) before its black-box attack, with the suite's step count and targets.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from fortify._registry import Registry
from fortify.attacks import APGD, Attack
from fortify.attacks.catalog import lookup
from fortify.evaluation.detection import EvadeDetector
from fortify.threat import Threat


@dataclass(frozen=True)
class SuiteEntry:
    """One attack of a suite.

    ``ran_on="all"`` runs it on every clean-correct sample (its own accuracy is then reported);
    ``"remaining"`` runs it only on samples no earlier attack broke (cheaper; AutoAttack's semantics).
    ``black_box`` marks attacks that use only the model's outputs (for the white- vs black-box check).

    Spending the budget where it changes answers:
    - ``close_calls``: only the samples (of those ``ran_on`` selects) whose worst true-class probability
      found so far is below this value: the survivors that earlier attacks came close to breaking;
    - ``probe``: at most this many of them, spread evenly over the sample order (a probe, e.g. a
      black-box attack checking that the gradients did not mislead the white-box ones);
    - ``escalation``: an entry run next, on the samples still unbroken, when this one broke any.
    """

    name: str
    attack: Attack
    ran_on: Literal["all", "remaining"] = "remaining"
    black_box: bool = False
    close_calls: float | None = None
    probe: int | None = None
    escalation: SuiteEntry | None = None

    def chain(self) -> list[SuiteEntry]:
        """This entry and its escalations, in the order they may run."""
        return [self, *(self.escalation.chain() if self.escalation is not None else [])]

    def in_precision(self, precision: str) -> SuiteEntry:
        """This entry (and its escalation) with its attack iterating in ``precision`` where the attack
        supports it (``Attack.supports_precision``); other attacks stay float32."""
        attack = self.attack
        supported = getattr(attack, "supports_precision", False)
        if supported and precision != vars(attack).get("precision", "fp32"):
            attack = copy.copy(attack)
            attack.set_precision(precision)
        escalation = None if self.escalation is None else self.escalation.in_precision(precision)
        return replace(self, attack=attack, escalation=escalation)

    def renamed(self, suffix: str) -> SuiteEntry:
        """This entry (and its escalation) named ``name + suffix``, on the remaining samples."""
        escalation = None if self.escalation is None else self.escalation.renamed(suffix)
        return replace(self, name=self.name + suffix, ran_on="remaining", escalation=escalation)


@dataclass(frozen=True)
class Evidence:
    """What evaluation measured about the model before choosing the attacks."""

    num_classes: int
    gradients_informative: bool = True
    randomized: bool = False
    ce_gradients_vanish: bool = False
    images: bool = True
    detector: bool = False


def named(
    name: str, seed: int, *, ran_on: Literal["all", "remaining"] = "remaining", **options: Any
) -> SuiteEntry:
    """The entry for catalogue attack ``name`` (``fortify.attacks.catalog``, the one table of attack
    names) built with ``seed`` and ``options``; attacks that need only outputs are marked black-box."""
    entry = lookup(name)
    return SuiteEntry(name, entry.build(seed=seed, **options), ran_on, black_box=entry.access != "gradients")


SuiteFactory = Callable[[Threat, int, Evidence], list[SuiteEntry]]
_SUITES: Registry[SuiteFactory] = Registry("suite")
SMOKE_TESTS = frozenset({"quick"})
"""Suites whose Results say they are smoke tests, not evidence (the gate refuses them by default)."""


def is_smoke_test(suite: str) -> bool:
    return suite in SMOKE_TESTS


def register_suite(name: str) -> Callable[[SuiteFactory], SuiteFactory]:
    """Decorator: make a suite factory known to ``ft.evaluate(suite=name)``."""
    return _SUITES.register(name)


def suite_names() -> list[str]:
    return _SUITES.names()


def build_suite(name: str, threat: Threat, seed: int, evidence: Evidence | None = None) -> list[SuiteEntry]:
    """The entries of suite ``name``; without ``evidence``, a deterministic 10-class image model with
    informative gradients is assumed."""
    return _SUITES.get(name)(threat, seed, evidence or Evidence(num_classes=10))


@register_suite("quick")
def quick(threat: Threat, seed: int, evidence: Evidence) -> list[SuiteEntry]:
    """FGSM, then PGD-20 with one restart, each on every clean-correct sample.

    When cross-entropy gradients vanish (saturated softmax) and there are 3 classes or more, the
    iterative attack is APGD-20 on the scale-free DLR loss instead of PGD.
    """
    stop = not evidence.randomized
    iterative = (
        named("apgd-dlr", seed, ran_on="all", steps=20, early_stop=stop)
        if evidence.ce_gradients_vanish and evidence.num_classes >= 3
        else named("pgd", seed, ran_on="all", steps=20, early_stop=stop)
    )
    entries = [named("fgsm", seed, ran_on="all"), iterative, evasion(evidence, 3, seed, 20)]
    return [e for e in entries if e is not None]


def evasion(evidence: Evidence, targets: int, seed: int, steps: int) -> SuiteEntry | None:
    """Targeted APGD-DLR on the reject view over the top ``targets`` classes, when there is a detector."""
    if not evidence.detector:
        return None
    inner = APGD(loss="dlr", steps=steps, targeted=True, early_stop=not evidence.randomized, seed=seed)
    return SuiteEntry(EvadeDetector.name, EvadeDetector(inner=inner, n_targets=targets, seed=seed))


def _targeted(evidence: Evidence, targets: int, seed: int, steps: int) -> SuiteEntry | None:
    """APGD over the top ``targets`` classes: targeted DLR, or targeted CE with fewer than 3 classes."""
    if evidence.num_classes < 3:
        return None
    k = min(targets, evidence.num_classes - 1)
    return named("apgd-t", seed, steps=steps, n_target_classes=k, early_stop=not evidence.randomized)


def _square(evidence: Evidence, queries: int, seed: int) -> SuiteEntry | None:
    """Square on images (it perturbs square windows of ``(N, C, H, W)`` inputs); nothing on tables."""
    if not evidence.images:
        return None
    return named("square", seed, n_queries=queries)


SQUARE_PROBE = 16
"""Survivors the black-box probe of ``standard`` attacks when the gradients are informative..."""
SQUARE_PROBE_QUERIES = 500
"""...with this many queries each."""


def _square_probe(evidence: Evidence, seed: int) -> SuiteEntry | None:
    """Square at AutoAttack's 5,000 queries on every survivor when the gradients look masked; otherwise
    a probe (``SQUARE_PROBE_QUERIES`` queries on ``SQUARE_PROBE`` survivors spread over the data) that
    escalates to the full attack on every survivor as soon as it breaks one: gradients that mislead the
    white-box attacks show up on any sample, while on informative gradients Square breaks (almost)
    nothing APGD missed."""
    full = _square(evidence, 5000, seed)
    if full is None or not evidence.gradients_informative:
        return full
    probe = named("square", seed, n_queries=SQUARE_PROBE_QUERIES)
    return replace(probe, name="square-probe", probe=SQUARE_PROBE, escalation=full)


NEAR = 0.9
"""Survivors some attack point left below this probability of their true class get targets 2 and 3."""
CLOSE_CALL = 0.5
"""...and below this one, every other target: the survivors earlier attacks came close to breaking."""


def _targets_by_margin(evidence: Evidence, seed: int, steps: int) -> list[SuiteEntry]:
    """APGD-T with targets chosen by each sample's margin: the most likely other class for every
    survivor, the next two for survivors below ``NEAR``, the rest for those below ``CLOSE_CALL``."""
    first = _targeted(evidence, 1, seed, steps)
    if first is None:
        return []
    stop = not evidence.randomized
    others = evidence.num_classes - 1
    # saturated softmax: the probabilities carry no margin (every point looks certain), so every
    # survivor gets every target, as in AutoAttack
    near, close = (None, None) if evidence.ce_gradients_vanish else (NEAR, CLOSE_CALL)
    tiers = [(1, 2, near, "apgd-t-near"), (3, others - 3, close, "apgd-t-close")]
    entries = [first]
    for skip, count, below, name in tiers:
        if count <= 0 or skip >= others:
            continue
        attack = named(
            "apgd-t",
            seed,
            steps=steps,
            n_target_classes=min(count, others - skip),
            skip_targets=skip,
            early_stop=stop,
        )
        entries.append(replace(attack, name=name, close_calls=below))
    return entries


def _untargeted(evidence: Evidence, seed: int, steps: int) -> SuiteEntry:
    """APGD-CE, or APGD on the scale-free DLR loss when cross-entropy gradients vanish (3+ classes)."""
    stop = not evidence.randomized
    if evidence.ce_gradients_vanish and evidence.num_classes >= 3:
        return named("apgd-dlr", seed, steps=steps, early_stop=stop)
    return named("apgd-ce", seed, steps=steps, early_stop=stop)


@register_suite("standard")
def standard(threat: Threat, seed: int, evidence: Evidence) -> list[SuiteEntry]:
    """APGD-CE (APGD-DLR on saturated softmax); APGD-T on the top target, on targets 2-3 for survivors
    below ``NEAR`` and on the rest for those below ``CLOSE_CALL`` (every target for every survivor on
    saturated softmax, whose probabilities say nothing about margins); a Square probe (5,000 queries
    on every survivor when gradients look masked or the probe breaks one)."""
    entries = [
        _untargeted(evidence, seed, steps=100),
        *_targets_by_margin(evidence, seed, steps=100),
        evasion(evidence, 3, seed, steps=100),
        _square_probe(evidence, seed),
    ]
    return [e for e in entries if e is not None]


@register_suite("strong")
def strong(threat: Threat, seed: int, evidence: Evidence) -> list[SuiteEntry]:
    """APGD-CE x5 restarts, APGD-T on every class, FMN, Square (10,000 queries)."""
    entries = [
        named("apgd-ce", seed, steps=100, restarts=5, early_stop=not evidence.randomized),
        _targeted(evidence, evidence.num_classes - 1, seed, steps=100),
        named("fmn", seed, steps=100),
        evasion(evidence, evidence.num_classes - 1, seed, steps=100),
        _square(evidence, 10_000, seed),
    ]
    return [e for e in entries if e is not None]


def entries_for(
    suite: str | Sequence[SuiteEntry], threat: Threat, seed: int, evidence: Evidence
) -> list[SuiteEntry]:
    """The entries evaluation runs: a named suite's, or a custom list followed, when the model has a
    detector and the list does not attack it, by ``evade-detector`` as in ``standard``."""
    if isinstance(suite, str):
        return build_suite(suite, threat, seed, evidence)
    entries = list(suite)
    if not any(isinstance(e.attack, EvadeDetector) for e in entries):
        entries += [e for e in [evasion(evidence, 3, seed, steps=100)] if e is not None]
    return entries
