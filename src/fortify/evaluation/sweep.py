"""Accuracy-epsilon curves in one pass: minimal distances first, the suite only where they leave doubt.

A minimum-norm attack (FMN, Pintor et al., NeurIPS 2021) gives each sample the distance ``d_i`` to the
nearest adversarial example it found; the sample is broken at every ``eps >= d_i``. One run of it draws
the whole curve. With ``refine=True`` (the default) the suite then attacks, at each eps in increasing
order, only the samples still unbroken there, and an adversarial example found at a small eps counts
at every larger one (the smaller ball lies inside the larger). The curve is therefore the per-sample
worst case of the minimum-norm attack and the suite at every eps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

from fortify._validate import number
from fortify.attacks import FMN, PGD, MinNormAttack
from fortify.attacks.base import resolve_precision
from fortify.attacks.runner import accuracy
from fortify.data.batches import is_batches
from fortify.evaluation import diagnostics as checks
from fortify.evaluation.adaptive import DEFAULT_EOT_SAMPLES
from fortify.evaluation.detection import flags
from fortify.evaluation.evaluate import (
    DEFAULT_BATCH_SIZE,
    Probe,
    after_attack_checks,
    build_result,
    check_arguments,
    prepare,
    white_vs_black,
)
from fortify.evaluation.ledger import Ledger, jsonable
from fortify.evaluation.suites import SuiteEntry, entries_for
from fortify.model import Classifier
from fortify.result import AttackRecord, Diagnostic, Result, Sweep
from fortify.threat import Threat, make_threat
from fortify.types import Executor, FortifyError, ProgressOption, reporting


def check_epsilons(epsilons: Sequence[float]) -> list[float]:
    """Validate a sweep's radii: non-empty, finite, >= 0 and strictly increasing."""
    values = list(epsilons)
    if not values:
        raise FortifyError("epsilons must not be empty")
    for eps in values:
        number("every eps", eps, low=0, finite=True)
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise FortifyError(f"epsilons must be strictly increasing, got {values}")
    return [float(e) for e in values]


def _threat_kind(threat: type[Threat] | Threat | str) -> Threat:
    if isinstance(threat, str):
        return make_threat(threat, 0.0)
    if isinstance(threat, Threat):
        return threat
    if isinstance(threat, type) and issubclass(threat, Threat):
        return threat(0.0)
    raise TypeError(f"threat must be a Threat class (ft.Linf), a Threat or a norm name, got {threat!r}")


def sweep(
    clf: Classifier,
    x: Tensor | Iterable[Any],
    y: Tensor | None,
    threat: type[Threat] | Threat | str,
    epsilons: Sequence[float],
    suite: str | Sequence[SuiteEntry] = "standard",
    *,
    min_norm: MinNormAttack | None = None,
    refine: bool = True,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    eot_samples: int = DEFAULT_EOT_SAMPLES,
    progress: ProgressOption = None,
    executor: Executor | None = None,
    precision: str = "fp32",
) -> Result:
    """Robust accuracy of ``clf`` at each eps of ``epsilons`` (strictly increasing) for one norm.

    ``threat`` is a threat class (``ft.Linf``), an instance (its eps is ignored) or a norm name.
    ``min_norm`` is the minimum-norm attack drawing the curve (default ``FMN(steps=100)``); with
    ``refine=False`` its distances alone give the curve (fastest, an upper bound on robustness that
    is usually looser than the suite's). Returns a ``Result`` for the largest eps (its samples carry
    ``min_distance``) with ``result.sweep`` holding the curve and a ``monotone_in_eps`` diagnostic
    from independent PGD runs on a few samples. Its gallery (small images) holds the point that first
    broke each shown sample: the minimum-norm point, or a suite attack's (``name@eps``) at the
    smallest eps that broke it. ``x`` may be an iterable of ``(x, y)`` batches (a ``DataLoader``) with
    ``y=None``: streamed chunk by chunk (``fortify.evaluation.stream.sweep_batches``). ``executor``
    (``ft.scale.Ray(...)``) sweeps shards of the samples on its workers and merges them
    (``fortify.evaluation.sharded.sweep_sharded``).

    ``precision`` (``fp32 | bf16 | auto``, as for ``evaluate``) is the arithmetic of the suite's
    attacks at each eps, where they support it; the minimum-norm pass and the diagnostics stay
    float32, every verdict is float32, and ``result.precision`` records what the suite ran in.
    """
    if is_batches(x):  # a DataLoader or other iterable of batches: streamed, chunk by chunk
        from fortify.evaluation.stream import sweep_batches

        if executor is not None:
            raise FortifyError("an executor shards tensors: give x and y as tensors, not batches")
        if y is not None:
            raise FortifyError("x is an iterable of (x, y) batches: pass y=None (its labels come with them)")
        return sweep_batches(
            clf,
            x,
            threat,
            epsilons,
            suite,
            min_norm=min_norm,
            refine=refine,
            seed=seed,
            batch_size=batch_size,
            dataset=dataset,
            groups=groups,
            eot_samples=eot_samples,
            progress=progress,
            precision=precision,
        )
    x, y = cast("tuple[Tensor, Tensor]", (x, y))
    kind = _threat_kind(threat)
    eps_list = check_epsilons(epsilons)
    if executor is not None:
        from fortify.evaluation.sharded import sweep_sharded

        check_arguments(clf, x, y, kind.with_eps(eps_list[-1]), batch_size)
        return sweep_sharded(
            clf,
            x,
            y,
            kind,
            eps_list,
            suite,
            executor,
            seed=seed,
            batch_size=batch_size,
            dataset=dataset,
            groups=groups,
            eot_samples=eot_samples,
            progress=progress,
            min_norm=min_norm,
            refine=refine,
            precision=precision,
        )
    largest = kind.with_eps(eps_list[-1])
    y = check_arguments(clf, x, y, largest, batch_size)
    precision = resolve_precision(precision, clf.device)
    if groups is not None and len(groups) != x.shape[0]:
        raise FortifyError(f"groups must have one entry per sample ({x.shape[0]}), got {len(groups)}")
    attack = _min_norm_attack(min_norm, seed)
    started = time.perf_counter()
    ledger = Ledger.start(clf, x, y)
    probe = prepare(clf, x, y, ledger, eot_samples)
    distances, points, min_norm_s = _min_distances(attack, clf, probe.view, x, ledger, kind, batch_size)

    accuracy, times = _curve(
        ledger,
        probe,
        x,
        kind,
        eps_list,
        suite,
        refine,
        seed,
        batch_size,
        progress,
        (attack.name, distances, points),
        precision,
    )
    times[0] += min_norm_s
    diags = _diagnostics(clf, probe, ledger, kind, eps_list, suite, refine, seed)
    timing = {"clean_s": ledger.clean_s, "min_norm_s": min_norm_s, "total_s": time.perf_counter() - started}
    timing.update({f"eps_{eps:g}_s": t for eps, t in zip(eps_list, times, strict=True)})
    result = build_result(
        probe.view,
        ledger,
        largest,
        suite if isinstance(suite, str) else "custom",
        seed,
        dataset,
        groups,
        None,
        diags,
        timing,
    )
    for sample, d in zip(result.samples, distances.tolist(), strict=True):
        sample.min_distance = d if math.isfinite(d) and sample.clean_correct else None
    result.sweep = Sweep(
        norm=kind.norm,
        epsilons=eps_list,
        robust_accuracy=accuracy,
        clean_accuracy=result.clean_accuracy or 0.0,
        method="min-norm+suite" if refine else "min-norm",
        min_norm_attack=attack.name,
        time_s=times,
    )
    result.precision = "bf16" if precision == "bf16" and refine else "fp32"
    return result


def _min_norm_attack(min_norm: MinNormAttack | None, seed: int) -> MinNormAttack:
    attack = min_norm if min_norm is not None else FMN(steps=100, seed=seed)
    if not isinstance(attack, MinNormAttack):
        raise TypeError(
            f"min_norm must be a minimum-norm attack (FMN, CW, DeepFool), got {type(attack).__name__}"
        )
    return attack


def _diagnostics(
    clf: Classifier,
    probe: Probe,
    ledger: Ledger,
    kind: Threat,
    eps_list: list[float],
    suite: str | Sequence[SuiteEntry],
    refine: bool,
    seed: int,
) -> list[Diagnostic]:
    """The probe's diagnostics, the after-attack checks at the largest eps, monotonicity in eps, and
    (when the suite ran) the white- vs black-box comparison."""
    largest = kind.with_eps(eps_list[-1])
    diags = list(probe.diagnostics)
    if probe.x.shape[0] and largest.eps > 0:
        diags += after_attack_checks(
            clf, probe.view, probe.x, probe.y, largest, seed, probe.evidence.randomized
        )
        diags.append(_monotone_probe(clf, probe.view, probe.x, probe.y, kind, eps_list, seed))
    entries_any = entries_for(suite, largest, seed, probe.evidence)
    return diags + (white_vs_black(ledger, entries_any) if refine else [])


def _curve(
    ledger: Ledger,
    probe: Probe,
    x: Tensor,
    kind: Threat,
    eps_list: list[float],
    suite: str | Sequence[SuiteEntry],
    refine: bool,
    seed: int,
    batch_size: int,
    progress: ProgressOption,
    min_norm: tuple[str, Tensor, Tensor],
    precision: str = "fp32",
) -> tuple[list[float], list[float]]:
    """Robust accuracy and time at each eps, increasing: minimal distances, then the suite if ``refine``
    (its attacks in ``precision`` where they support it)."""
    accuracy, times = [], []
    name, distances, points = min_norm
    with reporting(progress, "sweeping", len(eps_list)) as ticker:
        for eps in eps_list:
            t0 = time.perf_counter()
            _mark_min_norm(ledger, name, distances, points, eps)
            threat = kind.with_eps(eps)
            entries = entries_for(suite, threat, seed, probe.evidence)
            for entry in entries if refine else []:
                entry = entry.in_precision(precision) if precision != "fp32" else entry
                ledger.run_entry(entry.renamed(f"@{eps:g}"), probe.view, x, threat, batch_size)
            accuracy.append(float(ledger.robust.float().mean()))
            times.append(time.perf_counter() - t0)
            ticker.advance(1, status=f"eps {eps:g}: {accuracy[-1]:.1%}")
    return accuracy, times


def _min_distances(
    attack: MinNormAttack,
    clf: Classifier,
    view: Classifier,
    x: Tensor,
    ledger: Ledger,
    kind: Threat,
    batch_size: int,
) -> tuple[Tensor, Tensor, float]:
    """Per-sample minimal distances ``(N,)`` (inf where nothing was found or the point does not fool
    ``clf``), the minimum-norm points ``(N, ...)`` and the time taken."""
    t0 = time.perf_counter()
    distances = torch.full((ledger.n,), math.inf)
    points = x.detach().clone()
    for chunk in ledger.correct.nonzero().squeeze(1).split(batch_size):
        if chunk.numel() == 0:  # nothing classified correctly: nothing to attack
            continue
        out = attack.min_norm(view, x[chunk], ledger.y[chunk], kind.norm)
        found = out.success.cpu() & (clf.predict(out.x_adv, check=False).cpu() != ledger.y[chunk])
        found &= ~flags(clf, out.x_adv)
        distances[chunk] = torch.where(found, out.distances.cpu().float(), torch.tensor(math.inf))
        points[chunk] = out.x_adv.to(points.device, points.dtype)
    elapsed = time.perf_counter() - t0
    ledger.records.append(
        AttackRecord(
            name=attack.name,
            config={"min_norm": True, **jsonable(attack.config())},
            ran_on="all",
            n_attacked=int(ledger.correct.sum()),
            n_succeeded=int(torch.isfinite(distances).sum()),
            accuracy=None,
            cumulative_accuracy=float(ledger.robust.float().mean()),
            time_s=elapsed,
        )
    )
    return distances, points, elapsed


def _mark_min_norm(ledger: Ledger, name: str, distances: Tensor, points: Tensor, eps: float) -> None:
    """Samples whose minimal distance is within ``eps`` are broken, by the minimum-norm attack."""
    newly = (ledger.robust & (distances <= eps * (1 + 1e-6) + 1e-12)).nonzero().squeeze(1)
    if newly.numel():
        ledger.mark_broken(name, newly, points[newly.to(points.device)], distances[newly])


def _monotone_probe(
    clf: Classifier, view: Classifier, x: Tensor, y: Tensor, kind: Threat, eps_list: list[float], seed: int
) -> Diagnostic:
    """Independent PGD-10 runs at every eps on a few samples: accuracy must not rise with eps."""
    xs, ys = x[: checks.PROBE_SAMPLES], y[: checks.PROBE_SAMPLES]
    accuracies = []
    for eps in eps_list:
        x_adv = PGD(steps=10, seed=seed)(view, xs, ys, kind.with_eps(eps))
        accuracies.append(accuracy(clf, x_adv, ys, check=False))
    slack = 1.0 / max(1, xs.shape[0])
    return checks.check_monotone(eps_list, accuracies, slack=slack)
