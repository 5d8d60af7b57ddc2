"""Adaptive attacks on defended pipelines: BPDA through non-differentiable parts, EOT over random ones.

A defended model is a ``Classifier`` whose components (sub-modules, or the classifier itself) declare
``differentiable`` and ``randomized``. ``attack_view(clf)`` returns a classifier with the same forward
values but gradients an attacker can use:

- BPDA (Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018,
  arXiv:1802.00420): on the backward pass a non-differentiable component is replaced by a differentiable
  approximation, the identity by default (straight-through) or the component's own
  ``backward_approximation(x)`` when it has one. A non-differentiable classifier that offers
  ``forward_bpda(x)`` (``fortify.defenses.defend`` pipelines do) is attacked through it; one with no
  marked component and no ``forward_bpda`` is approximated by its undefended core,
  ``Classifier.forward`` (the wrapped module on normalised inputs).
- EOT (Athalye et al., "Synthesizing Robust Adversarial Examples", ICML 2018, arXiv:1707.07397): a
  randomized pipeline is run ``eot_samples`` times and its logits averaged, so gradients (and the
  attack's own success checks) are expectations over the random draws.
- Probability outputs (a softmax inside the model, which squashes the gradients cross-entropy needs:
  Carlini et al. 2019, section 5; AutoAttack's warning): attacked through their logarithm, which equals
  the logits up to a per-sample constant, so every loss sees the logits again.

The forward values are those of the defended model (averaged over draws for EOT); only the gradient
path changes. Evaluation still judges every attack point on the original classifier.

A ``Detected`` classifier's ``detector`` (``fortify.types.Detected``) is not part of its forward pass: its own
non-differentiable parts are listed apart (``AdaptivePlan.detector_bpda``) and crossed by the reject
view of ``fortify.evaluation.detection``, which puts the detector in the attack objective.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from fortify.model import Classifier
from fortify.types import DetectorLike, FortifyError, detector_of

log = logging.getLogger(__name__)

DEFAULT_EOT_SAMPLES = 8
DETECTOR = "detector"  # the sub-module name under which a Detected classifier keeps its detector


def _declares(module: nn.Module, flag: str, default: bool) -> bool:
    return bool(getattr(module, flag, default))


def non_differentiable_parts(clf: nn.Module | DetectorLike) -> list[str]:
    """Names of the components (``""`` for the classifier itself) declaring ``differentiable = False``,
    outside its ``detector``."""
    return [
        name
        for name, m in clf.named_modules()
        if not _declares(m, "differentiable", True) and name.split(".")[0] != DETECTOR
    ]


def randomized_parts(clf: Classifier) -> list[str]:
    """Names of the components (``""`` for the classifier itself) declaring ``randomized = True``."""
    return [name for name, m in clf.named_modules() if _declares(m, "randomized", False)]


@dataclass(frozen=True)
class AdaptivePlan:
    """How evaluation attacks a classifier: which parts get BPDA, and how many EOT draws."""

    bpda: list[str] = field(default_factory=list)
    eot_samples: int = 1
    detected_randomness: bool = False
    detector: str | None = None
    detector_bpda: list[str] = field(default_factory=list)
    log_outputs: bool = False  # the model returns probabilities: attack their logarithm

    @property
    def adaptive(self) -> bool:
        return bool(self.bpda) or self.eot_samples > 1 or self.detector is not None or self.log_outputs

    def describe(self) -> str:
        parts = []
        if self.bpda:
            named = [name for name in self.bpda if name] or ["the classifier itself"]
            parts.append(f"BPDA (straight-through) through the non-differentiable {', '.join(named)}")
        if self.eot_samples > 1:
            why = (
                "randomness detected in two forward passes" if self.detected_randomness else "declared random"
            )
            parts.append(f"EOT over {self.eot_samples} draws ({why})")
        if self.log_outputs:
            parts.append("log-probabilities as logits (the model returns probabilities)")
        if self.detector is not None:
            through = f", BPDA through its {', '.join(self.detector_bpda)}" if self.detector_bpda else ""
            parts.append(
                f"detector {self.detector} attacked in the objective "
                f"(targeted attacks on a reject logit{through})"
            )
        return "; ".join(parts) if parts else "plain gradients (no non-differentiable or random parts)"


def plan_for(
    clf: Classifier,
    *,
    randomness_detected: bool = False,
    eot_samples: int = DEFAULT_EOT_SAMPLES,
    probability_outputs: bool = False,
) -> AdaptivePlan:
    """The adaptive plan for ``clf`` from its declarations (and measured randomness / probabilities)."""
    if eot_samples < 1:
        raise FortifyError(f"eot_samples must be >= 1, got {eot_samples!r}")
    random = bool(randomized_parts(clf)) or randomness_detected
    detector = detector_of(clf)
    return AdaptivePlan(
        bpda=non_differentiable_parts(clf),
        eot_samples=eot_samples if random else 1,
        detected_randomness=randomness_detected and not randomized_parts(clf),
        detector=None if detector is None else type(detector).__name__,
        detector_bpda=[] if detector is None else [n for n in non_differentiable_parts(detector) if n],
        log_outputs=probability_outputs,
    )


def _straight_through(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
    """Forward hook: keep ``output``'s value, route its gradient through an approximation of ``module``."""
    if not inputs or not isinstance(inputs[0], Tensor) or not isinstance(output, Tensor):
        return None
    x = inputs[0]
    approx_fn = getattr(module, "backward_approximation", None)
    if callable(approx_fn):
        approx = approx_fn(x)
    elif x.shape == output.shape:
        approx = x
    else:
        return None
    return approx + (output - approx).detach()


@contextmanager
def straight_through(module: nn.Module | DetectorLike, names: list[str]) -> Iterator[None]:
    """Inside the block, the sub-modules of ``module`` named in ``names`` are crossed with BPDA."""
    modules = dict(module.named_modules())
    handles = [modules[name].register_forward_hook(_straight_through) for name in names]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class AttackView(Classifier):
    """``clf`` as an attacker should see it: same values, BPDA gradients, EOT averaging.

    Shapes and bounds are those of ``clf``; ``forward`` returns logits ``(N, num_classes)``.
    """

    def __init__(self, clf: Classifier, plan: AdaptivePlan) -> None:
        super().__init__(clf, clf.num_classes, clf.bounds, batch_size=clf.batch_size)
        self.plan = plan

    @property
    def defended(self) -> Classifier:
        return self.module  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return self.defended.device

    def forward(self, x: Tensor) -> Tensor:
        with self._bpda_hooks():
            if self.plan.eot_samples == 1:
                out = self._one_draw(x)
            else:
                out = torch.stack([self._one_draw(x) for _ in range(self.plan.eot_samples)]).mean(dim=0)
        if self.plan.log_outputs:
            # log p = z - logsumexp(z): the logits up to a per-sample constant, which no loss sees
            return out.clamp_min(torch.finfo(out.dtype).tiny).log()
        return out

    def _own_bpda(self) -> bool:
        return "" in self.plan.bpda and callable(getattr(self.defended, "forward_bpda", None))

    def _one_draw(self, x: Tensor) -> Tensor:
        clf = self.defended
        if self._own_bpda():
            return clf.forward_bpda(x)  # type: ignore[operator]
        if "" not in self.plan.bpda or len(self.plan.bpda) > 1:
            return clf(x)
        # the whole pipeline is opaque: its value, with gradients of its undefended core
        value = clf(x)
        core = Classifier.forward(clf, x)
        return core + (value - core).detach() if core.shape == value.shape else value

    def _bpda_hooks(self) -> AbstractContextManager[None]:
        names = [] if self._own_bpda() else [name for name in self.plan.bpda if name]
        return straight_through(self.defended, names)

    def describe(self) -> dict[str, object]:
        return {**self.defended.describe(), "attacked_with": self.plan.describe()}


def attack_view(clf: Classifier, plan: AdaptivePlan) -> Classifier:
    """The classifier attacks should run against: ``clf`` itself when no adaptation is needed."""
    if not plan.adaptive:
        return clf
    log.info("attacking %s adaptively: %s", type(clf).__name__, plan.describe())
    return AttackView(clf, plan)
