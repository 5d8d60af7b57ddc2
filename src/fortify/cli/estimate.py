"""The one line a long command writes on stderr before it starts: what the work will cost.

Computed from the options (``fortify.attacks.cost``: the most model passes each attack may spend per
sample) and a quick timing of the model on a batch of the data; written unless progress output is off
(``--quiet`` / ``--progress none``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from fortify.attacks import Attack
from fortify.attacks.cost import CHECKS, Cost, Estimate, cost_of, estimate, measure_rate
from fortify.cli.progress import silenced
from fortify.cli.render import err_console
from fortify.evaluation.suites import Evidence, SuiteEntry, build_suite
from fortify.model import BlackBox, Classifier
from fortify.threat import Threat


def say(line: str) -> None:
    if not silenced():
        err_console.print(line, highlight=False, markup=False, soft_wrap=True)


def grows_with_options(attack: Attack, num_classes: int) -> bool:
    """True unless the attack is a single step (FGSM): its cost is then worth saying."""
    cost = cost_of(attack, num_classes)
    return cost is None or cost.forward > CHECKS + 1


def attack_cost(
    name: str, attack: Attack, model: Classifier | BlackBox, x: Tensor, active: int, batch_size: int
) -> None:
    """Say what ``attack`` costs at most on ``x``, of which ``active`` samples are to be attacked (not
    misclassified, or not on target, already), when it is more than one step."""
    if silenced() or not grows_with_options(attack, model.num_classes):
        return
    say(estimate([(name, attack, active)], model, x, batch_size=batch_size).line())


def suite_cost(
    suite: str,
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    seed: int,
    *,
    batch_size: int,
    detector: bool = False,
    repeats: int = 1,
    extra: Sequence[tuple[str, Attack]] = (),
) -> None:
    """Say what suite ``suite`` (run ``repeats`` times, e.g. once per eps of a sweep, after the ``extra``
    attacks) costs at most on ``x``: every entry and escalation on every clean-correct sample. The suite
    is built for a model with informative gradients; the evaluation may choose more (e.g. Square's
    larger budget when the gradients look masked)."""
    if silenced():
        return
    evidence = Evidence(num_classes=clf.num_classes, images=x.dim() == 4, detector=detector)
    n = int((clf.predict(x, check=False).cpu() == y.cpu()).sum())
    work = [(name, attack, n) for name, attack in extra]
    for entry in _chain(build_suite(suite, threat, seed, evidence)) * repeats:
        work.append((entry.name, entry.attack, min(n, entry.probe) if entry.probe is not None else n))
    say(estimate(work, clf, x, batch_size=batch_size).line())


def certify_cost(clf: Classifier, x: Tensor, n0: int, n: int, batch_size: int) -> None:
    """Say what certifying ``x`` with ``n0`` selection and ``n`` estimation noise samples costs, in
    calls of ``batch_size`` noisy copies."""
    if silenced():
        return
    rate = measure_rate(clf, x, batch_size)
    forward = float((n0 + n) * x.shape[0])
    note = f"{n0} + {n} noisy copies of every image; the time is the model's alone"
    say(Estimate(x.shape[0], Cost(forward), forward / rate.forward, note=note).line())


def _chain(entries: list[SuiteEntry]) -> list[SuiteEntry]:
    return [e for entry in entries for e in entry.chain()]
