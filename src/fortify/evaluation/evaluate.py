"""Per-sample worst-case evaluation of a classifier over a suite of attacks."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import Tensor

from fortify import progress as progress_bars
from fortify.attacks.base import check_labels
from fortify.evaluation.suites import SuiteEntry, build_suite
from fortify.model import Classifier
from fortify.result import AttackRecord, Environment, Result, SampleRecord, ThreatSpec
from fortify.threat import Threat
from fortify.types import FortifyError

DEFAULT_BATCH_SIZE = 250


def evaluate(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    suite: str | Sequence[SuiteEntry] = "quick",
    *,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    progress: bool | None = None,
) -> Result:
    """Robustness of ``clf`` on ``(x, y)`` under ``threat``: the per-sample worst case over a suite.

    A sample is robust only if it is classified correctly clean and under every attack of the suite.
    Attacks run in suite order, in batches of ``batch_size``; an entry with ``ran_on="remaining"`` only
    attacks the samples still unbroken. ``suite`` is a registered name (``"quick"``...) or a list of
    ``SuiteEntry``. ``groups`` optionally tags each sample (e.g. a user segment) for sliced reporting.

    Returns a ``Result`` with clean and robust accuracy, attack success rate, per-attack records,
    per-sample records, timing, seed and versions.
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"evaluate takes a fortify Classifier, got {type(clf).__name__}")
    if not isinstance(threat, Threat):
        raise TypeError(f"threat must be a fortify Threat (ft.Linf, ft.L2...), got {type(threat).__name__}")
    if batch_size < 1:
        raise FortifyError(f"batch_size must be >= 1, got {batch_size!r}")
    clf.check_input(x)
    y = check_labels(y, x.shape[0], clf.num_classes).cpu()
    if groups is not None and len(groups) != x.shape[0]:
        raise FortifyError(f"groups must have one entry per sample ({x.shape[0]}), got {len(groups)}")
    suite_name = suite if isinstance(suite, str) else "custom"
    entries = build_suite(suite, threat, seed) if isinstance(suite, str) else list(suite)
    if not entries:
        raise FortifyError("the suite has no attacks")

    started = time.perf_counter()
    n = x.shape[0]
    clean_pred = clf.predict(x, check=False).cpu()
    correct = clean_pred == y
    robust = correct.clone()
    broken_by: list[str | None] = [None] * n
    adv_pred = torch.full((n,), -1, dtype=torch.long)
    pert_norm = torch.full((n,), float("nan"))
    queries = torch.zeros(n, dtype=torch.long)
    records: list[AttackRecord] = []
    timing = {"clean_s": time.perf_counter() - started}

    with progress_bars.bar("evaluating", len(entries), progress) as ticker:
        for entry in entries:
            ticker.advance(0, status=entry.name)
            t0 = time.perf_counter()
            targets = (correct if entry.ran_on == "all" else robust).nonzero().squeeze(1)
            fooled = torch.zeros(n, dtype=torch.bool)
            for chunk in targets.split(batch_size):
                out = entry.attack.attack(clf, x[chunk], y[chunk], threat)
                pred = clf.predict(out.x_adv, check=False).cpu()
                hit = pred != y[chunk]
                fooled[chunk] = hit
                first = hit & robust[chunk]
                newly = chunk[first]
                for i in newly.tolist():
                    broken_by[i] = entry.name
                adv_pred[newly] = pred[first]
                pert_norm[newly] = threat.norm_of(out.x_adv[first] - x[newly].to(out.x_adv.device)).cpu()
                if out.queries is not None:
                    queries[newly] = out.queries[first].cpu()
                robust[newly] = False
            elapsed = time.perf_counter() - t0
            timing[f"{entry.name}_s"] = elapsed
            records.append(
                AttackRecord(
                    name=entry.name,
                    config=_jsonable(entry.attack.config()),
                    ran_on=entry.ran_on,
                    n_attacked=int(targets.numel()),
                    n_succeeded=int(fooled.sum()),
                    accuracy=float((correct & ~fooled).float().mean()) if entry.ran_on == "all" else None,
                    cumulative_accuracy=float(robust.float().mean()),
                    time_s=elapsed,
                )
            )
            ticker.advance(1, status=f"{entry.name} done")
    timing["total_s"] = time.perf_counter() - started

    samples = [
        SampleRecord(
            index=i,
            label=int(y[i]),
            clean_pred=int(clean_pred[i]),
            clean_correct=bool(correct[i]),
            robust=bool(robust[i]),
            broken_by=broken_by[i],
            adv_pred=int(adv_pred[i]) if broken_by[i] else None,
            perturbation_norm=float(pert_norm[i]) if broken_by[i] else None,
            queries=int(queries[i]) if broken_by[i] and queries[i] > 0 else None,
            group=groups[i] if groups is not None else None,
        )
        for i in range(n)
    ]
    n_correct = int(correct.sum())
    return Result(
        model=clf.describe(),
        dataset=dataset,
        threat=ThreatSpec(norm=threat.norm, eps=threat.eps),
        suite=suite_name,
        seed=seed,
        n_samples=n,
        clean_accuracy=float(correct.float().mean()),
        robust_accuracy=float(robust.float().mean()),
        attack_success_rate=float((correct & ~robust).sum()) / n_correct if n_correct else 0.0,
        per_attack=records,
        samples=samples,
        timing=timing,
        environment=Environment.capture(str(clf.device)),
    )


def _jsonable(config: dict[str, object]) -> dict[str, object]:
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else repr(v) for k, v in config.items()}
