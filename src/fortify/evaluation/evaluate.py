"""Per-sample worst-case evaluation of a classifier over a suite of attacks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor

from fortify._validate import from_numpy
from fortify.attacks import APGD, PGD, Attack
from fortify.attacks.base import check_labels, resolve_precision
from fortify.data.batches import is_batches
from fortify.evaluation import diagnostics as checks
from fortify.evaluation.adaptive import DEFAULT_EOT_SAMPLES, attack_view, plan_for
from fortify.evaluation.detection import detector_summary
from fortify.evaluation.ledger import Ledger
from fortify.evaluation.suites import Evidence, SuiteEntry, entries_for, is_smoke_test, suite_names
from fortify.evaluation.summaries import calibration, slices
from fortify.model import Classifier
from fortify.result import Diagnostic, Environment, Result, ThreatSpec
from fortify.threat import Threat
from fortify.types import (
    Executor,
    FortifyError,
    ProgressOption,
    ProvidesClassifier,
    detector_of,
    reporting,
)

DEFAULT_BATCH_SIZE = 250


def check_arguments(clf: Classifier, x: Tensor, y: Tensor, threat: Threat, batch_size: int) -> Tensor:
    """Validate the common arguments of ``evaluate`` and ``sweep``; returns the labels as CPU int64."""
    if not isinstance(clf, Classifier):
        raise TypeError(f"evaluate takes a fortify Classifier, got {type(clf).__name__}")
    if not isinstance(threat, Threat):
        raise TypeError(f"threat must be a fortify Threat (ft.Linf, ft.L2...), got {type(threat).__name__}")
    if batch_size < 1:
        raise FortifyError(f"batch_size must be >= 1, got {batch_size!r}")
    detector = detector_of(clf)
    if detector is not None and not detector.calibrated:
        raise FortifyError("the model's detector is not calibrated: call detector.calibrate(x_clean) first")
    clf.check_input(x)
    return check_labels(y, x.shape[0], clf.num_classes).cpu()


def evaluate(
    clf: Classifier | ProvidesClassifier,
    x: Tensor | Iterable[Any],
    y: Tensor | None,
    threat: Threat,
    suite: str | Sequence[SuiteEntry] = "quick",
    *,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    eot_samples: int = DEFAULT_EOT_SAMPLES,
    progress: ProgressOption = None,
    executor: Executor | None = None,
    precision: str = "fp32",
) -> Result:
    """Robustness of ``clf`` on ``(x, y)`` under ``threat``: the per-sample worst case over a suite.

    A sample is robust only if it is classified correctly clean and under every attack of the suite.
    Attacks run in suite order, in batches of ``batch_size``; an entry with ``ran_on="remaining"`` only
    attacks the samples still unbroken. ``suite`` is a registered name (``"quick"``, ``"standard"``,
    ``"strong"``) or a list of ``SuiteEntry``. ``groups`` optionally tags each sample (e.g. a user
    segment) for sliced results; ``class_names`` names the class slices.

    Defended models are attacked adaptively without being told: components declaring
    ``differentiable = False`` are crossed with BPDA and random models (declared, or caught giving two
    different answers) are attacked with EOT over ``eot_samples`` draws; every attack point is still
    judged by ``clf`` itself. A model with a (calibrated) ``detector`` is broken only by points that are
    misclassified and not flagged, and every suite adds ``evade-detector``, which puts the detector in
    the objective (``fortify.evaluation.detection``); ``result.detector`` records its flag rates.
    Sanity checks of the evaluation land in ``result.diagnostics``. ``x`` and ``y`` may be NumPy arrays
    (float ``x`` is taken as float32, ``y`` as int64). ``x`` may instead be an iterable of ``(x, y)``
    batches (a ``DataLoader``) with ``y=None``: it is streamed, chunk by chunk, and the chunks' Results
    merged (``fortify.evaluation.stream.evaluate_batches`` says what that keeps and changes).
    ``executor`` (``ft.scale.Ray(...)``, ``ft.scale.InProcess(shards=k)``) shards the samples over its
    workers and merges their Results (``fortify.evaluation.sharded`` says what that keeps); the
    default evaluates everything here, in one piece.

    ``precision``: ``"fp32"`` (default), ``"bf16"`` or ``"auto"`` (bf16 where the device has fast
    bfloat16, see ``fortify.attacks.base.resolve_precision``): the arithmetic of the iterations of the
    attacks that support it (FGSM, PGD, APGD, APGD-T; ``Attack``). Every verdict, every accuracy and
    the no-worse-than-clean check stay float32; ``result.precision`` records what ran. Streamed and
    sharded evaluations run every chunk or shard in the one precision ``"auto"`` resolves to for the
    device of ``clf`` given here.

    Returns a ``Result`` with clean and robust accuracy, attack success rate, per-attack records
    (with forward/backward passes per attacked sample), per-sample records (with confidences), slices
    per class and group, calibration, diagnostics, timing, seed and versions, and for small images a
    gallery: up to 8 adversarial points exactly as the attacks found them (``evaluation.gallery``).
    """
    if is_batches(x):  # a DataLoader or other iterable of batches: streamed, chunk by chunk
        from fortify.evaluation.stream import evaluate_batches

        if executor is not None:
            raise FortifyError("an executor shards tensors: give x and y as tensors, not batches")
        if y is not None:
            raise FortifyError("x is an iterable of (x, y) batches: pass y=None (its labels come with them)")
        return evaluate_batches(
            clf,
            x,
            threat,
            suite,
            seed=seed,
            batch_size=batch_size,
            dataset=dataset,
            groups=groups,
            class_names=class_names,
            eot_samples=eot_samples,
            progress=progress,
            precision=precision,
        )
    source, clf = clf, _provided(clf)
    x, y = cast("tuple[Tensor, Tensor]", from_numpy(x, y))
    if executor is not None:
        from fortify.evaluation.sharded import evaluate_sharded

        if isinstance(source, ProvidesClassifier):
            raise FortifyError("a guard is evaluated in one process: its section is about the whole set")
        if isinstance(suite, str) and suite not in suite_names():
            raise FortifyError(f"unknown suite {suite!r}; choose one of {suite_names()}")
        return evaluate_sharded(
            clf,
            x,
            y,
            threat,
            suite,
            executor,
            seed=seed,
            batch_size=batch_size,
            dataset=dataset,
            groups=groups,
            class_names=class_names,
            eot_samples=eot_samples,
            progress=progress,
            precision=precision,
        )
    y = check_arguments(clf, x, y, threat, batch_size)
    precision = resolve_precision(precision, clf.device)
    if groups is not None and len(groups) != x.shape[0]:
        raise FortifyError(f"groups must have one entry per sample ({x.shape[0]}), got {len(groups)}")
    if not isinstance(suite, str) and not list(suite):
        raise FortifyError("the suite has no attacks")
    if isinstance(suite, str) and suite not in suite_names():
        raise FortifyError(f"unknown suite {suite!r}; choose one of {suite_names()}")
    started = time.perf_counter()
    ledger = Ledger.start(clf, x, y)
    probe = prepare(clf, x, y, ledger, eot_samples)
    view, diags = probe.view, list(probe.diagnostics)
    entries = entries_for(suite, threat, seed, probe.evidence)
    if precision != "fp32":
        entries = [entry.in_precision(precision) for entry in entries]
    timing = {"clean_s": ledger.clean_s, "probe_s": time.perf_counter() - started - ledger.clean_s}

    with reporting(progress, "evaluating", len(entries)) as ticker:
        for entry in entries:
            ticker.advance(0, status=entry.name)
            for record in ledger.run_entry(entry, view, x, threat, batch_size):
                timing[f"{record.name}_s"] = timing.get(f"{record.name}_s", 0.0) + record.time_s
            ticker.advance(1, status=f"{entry.name} done")

    t0 = time.perf_counter()
    if probe.x.shape[0] and threat.eps > 0:
        diags += after_attack_checks(clf, view, probe.x, probe.y, threat, seed, probe.evidence.randomized)
    diags += white_vs_black(ledger, entries)
    timing["diagnostics_s"] = timing["probe_s"] + time.perf_counter() - t0
    timing["total_s"] = time.perf_counter() - started
    result = build_result(
        view,
        ledger,
        threat,
        suite if isinstance(suite, str) else "custom",
        seed,
        dataset,
        groups,
        class_names,
        diags,
        timing,
    )
    result.precision = "bf16" if precision == "bf16" else "fp32"
    return source.annotate_result(result, x, y) if isinstance(source, ProvidesClassifier) else result


def _provided(clf: Classifier | ProvidesClassifier) -> Classifier:
    """The classifier to attack: ``clf`` itself, or the one a guard provides."""
    model = clf.as_classifier() if isinstance(clf, ProvidesClassifier) else clf
    if not isinstance(model, Classifier):
        raise TypeError(f"evaluate takes a fortify Classifier, got {type(model).__name__}")
    return model


@dataclass(frozen=True)
class Probe:
    """What evaluation learns before attacking: the attack view, the evidence, the first diagnostics.

    ``x``, ``y`` are the clean-correct samples the later checks use.
    """

    view: Classifier
    evidence: Evidence
    diagnostics: list[Diagnostic]
    x: Tensor
    y: Tensor


def prepare(clf: Classifier, x: Tensor, y: Tensor, ledger: Ledger, eot_samples: int) -> Probe:
    """Check randomness and gradients, choose BPDA / EOT, and gather the evidence suites choose by."""
    correct = ledger.correct.nonzero().squeeze(1)[: checks.COMPARE_SAMPLES]
    x_probe, y_probe = x[correct], y[correct]
    random_diag, random_detected = checks.check_randomness(clf, x)
    outputs = checks.check_outputs(clf, x)
    plan = plan_for(
        clf,
        randomness_detected=random_detected,
        eot_samples=eot_samples,
        probability_outputs=checks.outputs_are_probabilities(outputs),
    )
    view = attack_view(clf, plan)
    diags = [random_diag, outputs]
    if correct.numel():
        diags.append(checks.check_gradients(clf, view, x_probe, y_probe, plan.describe()))
    gradients = [d for d in diags if d.name == "gradients"]
    masking_how = plan.describe()
    if any(d.details["used"]["ce"]["nonzero"] < 0.5 for d in gradients):
        masking_how += "; margin (DLR) losses instead of cross-entropy"
    diags.append(
        checks.check_gradient_masking(gradients[0] if gradients else None, plan.eot_samples > 1, masking_how)
    )
    evidence = Evidence(
        num_classes=clf.num_classes,
        gradients_informative=all(d.passed for d in gradients),
        randomized=plan.eot_samples > 1,
        ce_gradients_vanish=any(d.details["used"]["ce"]["nonzero"] < 0.5 for d in gradients),
        images=x.dim() == 4,
        detector=plan.detector is not None,
    )
    return Probe(view, evidence, diags, x_probe, y_probe)


def after_attack_checks(
    clf: Classifier,
    view: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    seed: int,
    randomized: bool = False,
) -> list[Diagnostic]:
    unbounded: list[Attack] = [PGD(steps=20, seed=seed)]
    if clf.num_classes >= 3:
        unbounded.append(APGD(loss="dlr", steps=50, seed=seed))
    return [
        checks.check_iterative_vs_single_step(clf, view, x, y, threat, seed, randomized=randomized),
        checks.check_unbounded(clf, view, x, y, threat, unbounded),
    ]


def white_vs_black(ledger: Ledger, entries: Sequence[SuiteEntry]) -> list[Diagnostic]:
    every = [e for entry in entries for e in entry.chain()]
    black = {e.name for e in every if e.black_box}
    if not black or len(black) == len(every):
        return []
    broken = [b for b in ledger.broken_by if b is not None]
    n_black_only = sum(b.split("@")[0] in black for b in broken)  # sweeps name entries name@eps
    return [
        checks.check_white_vs_black_box(len(broken) - n_black_only, n_black_only, int(ledger.correct.sum()))
    ]


def build_result(
    clf: Classifier,  # the attack view: its description says how the model was attacked
    ledger: Ledger,
    threat: Threat,
    suite_name: str,
    seed: int,
    dataset: str | None,
    groups: Sequence[str] | None,
    class_names: Sequence[str] | None,
    diags: list[Diagnostic],
    timing: dict[str, float],
) -> Result:
    n = ledger.n
    n_correct = int(ledger.correct.sum())
    adv_conf = torch.where(ledger.correct, ledger.adv_conf, ledger.clean_conf)
    return Result(
        model=clf.describe(),
        dataset=dataset,
        threat=ThreatSpec(norm=threat.norm, eps=threat.eps),
        suite=suite_name,
        smoke_test=is_smoke_test(suite_name),
        seed=seed,
        n_samples=n,
        clean_accuracy=float(ledger.correct.float().mean()),
        robust_accuracy=float(ledger.robust.float().mean()),
        attack_success_rate=float((ledger.correct & ~ledger.robust).sum()) / n_correct if n_correct else 0.0,
        per_attack=ledger.records,
        samples=ledger.samples(groups),
        diagnostics=diags,
        timing=timing,
        environment=Environment.capture(str(clf.device)),
        slices=slices(ledger.y, ledger.correct, ledger.robust, groups, class_names),
        calibration=calibration(ledger.clean_conf, ledger.correct, adv_conf, ledger.robust),
        gallery=ledger.gallery.entries(ledger),
        detector=detector_summary(ledger.clf, ledger.x, ledger.correct, ledger.adv_flagged),
    )
