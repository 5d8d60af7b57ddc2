"""A poisoning audit end to end: poison, train, inspect, retrain without the flagged samples, compare.

What a user actually gets from a poison filter is the attack success rate of the model retrained without
what it flagged. ``audit`` measures that for each inspection method, beside two baselines that frame it
(ANCHORS.md: in Armory's CIFAR-10 runs both published filters barely beat the first):

- a *random* filter removing as many samples as the method flagged, and
- a *perfect* filter removing exactly the poisoned samples.

Every attack success rate stands beside the clean accuracy of the same model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from fortify.attacks.runner import accuracy
from fortify.audits.poisoning.backdoor import BadNets, CleanLabel
from fortify.audits.poisoning.inspection import activation_clustering, precision_recall, spectral_signatures
from fortify.model import Classifier
from fortify.types import FortifyError

INSPECTIONS: dict[str, Callable[..., Tensor]] = {
    "spectral": spectral_signatures,
    "clustering": activation_clustering,
}
Trainer = Callable[[Tensor, Tensor], Classifier]


def _scores(attack: BadNets, clf: Classifier, x_test: Tensor, y_test: Tensor) -> dict[str, float]:
    return {
        "clean_accuracy": accuracy(clf, x_test, y_test),
        "attack_success_rate": attack.success_rate(clf, x_test, y_test),
    }


def _without(x: Tensor, y: Tensor, drop: Tensor) -> tuple[Tensor, Tensor]:
    keep = torch.ones(x.shape[0], dtype=torch.bool)
    keep[drop] = False
    return x[keep], y[keep]


def audit(
    attack: BadNets,
    train: Trainer,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    *,
    inspections: Sequence[str] = ("spectral", "clustering"),
    layer: str | None = None,
    surrogate: Classifier | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Poison ``(x_train, y_train)`` with ``attack``, train with ``train(x, y) -> Classifier``, inspect it
    with each of ``inspections`` (``"spectral"``, ``"clustering"``) on ``layer``, retrain without the
    flagged samples, and measure every model on ``(x_test, y_test)``.

    Returns the ``poisoning`` section: the attack's description, the poisoned count, the undefended
    model's scores, and per inspection the flagged count, precision, recall, and the scores after
    retraining without the flagged samples, without as many random ones, and (once) without exactly the
    poison. ``surrogate`` is required for ``CleanLabel``.
    """
    unknown = [name for name in inspections if name not in INSPECTIONS]
    if unknown:
        raise FortifyError(f"unknown inspection(s) {unknown}; choose from {sorted(INSPECTIONS)}")
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    if isinstance(attack, CleanLabel):
        x_p, y_p, poisoned = attack.poison(x_train, y_train, surrogate)
    else:
        x_p, y_p, poisoned = attack.poison(x_train, y_train)
    say(f"poisoned {poisoned.numel()} of {x_train.shape[0]} samples; training on the poisoned set")
    model = train(x_p, y_p)
    section: dict[str, Any] = {
        "attack": attack.describe(),
        "n_train": int(x_train.shape[0]),
        "n_poisoned": int(poisoned.numel()),
        "n_test": int(x_test.shape[0]),
        "layer": layer or "penultimate",
        "undefended": _scores(attack, model, x_test, y_test),
        "inspections": {},
    }
    say("training without exactly the poison (the perfect filter)")
    section["perfect_filter"] = _scores(attack, train(*_without(x_p, y_p, poisoned)), x_test, y_test)
    generator = torch.Generator().manual_seed(seed)
    for name in inspections:
        say(f"inspecting with {name}")
        extra = {"expected_rate": min(0.5, max(attack.rate, 1e-3))} if name == "spectral" else {"seed": seed}
        flagged = INSPECTIONS[name](model, x_p, y_p, layer=layer, **extra)
        precision, recall = precision_recall(flagged, poisoned)
        say(f"retraining without the {flagged.numel()} samples {name} flagged, and as many random ones")
        random_drop = torch.randperm(x_p.shape[0], generator=generator)[: flagged.numel()]
        section["inspections"][name] = {
            "n_flagged": int(flagged.numel()),
            "precision": precision,
            "recall": recall,
            "after_filter": _scores(attack, train(*_without(x_p, y_p, flagged)), x_test, y_test),
            "random_filter": _scores(attack, train(*_without(x_p, y_p, random_drop)), x_test, y_test),
        }
    section["time_s"] = time.perf_counter() - t0
    return section
