"""Evaluation and sweeps sharded over an ``Executor`` (``ft.scale.InProcess``, ``ft.scale.Ray``).

The samples are cut into contiguous shards (``fortify.types.split_shards``); each shard is evaluated by
the in-memory ``evaluate`` (or ``sweep``) on a worker that holds the model, and the shards' Results are
merged in sample order by ``fortify.evaluation.merge.Merger``, exactly as streamed chunks are
(``fortify.evaluation.stream`` says what merging keeps and changes). What this guarantees:

- the Result is a function of the data, the seed and the shard ranges only: which executor ran the
  shards, how many workers, in which order they finished, and whether a worker died and its shard
  was run again change nothing (every shard's Result enters the merge once). ``InProcess(shards=k)``
  reproduces, record for record, what ``Ray(shards=k)`` gives on a cluster;
- for ``evaluate``, the suite is chosen once, in the caller's process, from the evidence of the first
  shard (as streaming chooses it on the first chunk), and every shard runs those entries with the same
  ``seed``. Attacks draw random starts from a generator seeded per batch, so a sample's draw depends
  on the batch it lands in: with one shard the Result is the in-memory one; with several it is the
  in-memory one for deterministic attacks, and agrees statistically otherwise;
- ``sweep``: every shard sweeps its samples, choosing its suite from its own evidence; the curve counts
  robust samples over all shards at each eps;
- ``sections["scale"]`` records how the job ran (the executor's ``describe()``: shard ranges, workers,
  retried shards).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from fortify.attacks.base import resolve_precision
from fortify.evaluation.evaluate import check_arguments, evaluate
from fortify.evaluation.gallery import Gallery
from fortify.evaluation.merge import Merger
from fortify.evaluation.stream import _choose, _merged_curve
from fortify.evaluation.suites import SuiteEntry, is_smoke_test
from fortify.evaluation.sweep import sweep
from fortify.model import Classifier
from fortify.result import Result
from fortify.threat import Threat
from fortify.types import Executor, FortifyError, ProgressOption, reporting


@dataclass(frozen=True)
class EvaluateShard:
    """``evaluate`` of one shard with fixed suite entries: ``task(clf, (start, x, y, groups))``.

    ``precision`` is already resolved (``"fp32"`` or ``"bf16"``), so every worker runs the same."""

    threat: Threat
    entries: list[SuiteEntry]
    seed: int
    batch_size: int
    dataset: str | None
    class_names: list[str] | None
    eot_samples: int
    precision: str = "fp32"

    def __call__(self, clf: Classifier, payload: tuple[int, Tensor, Tensor, list[str] | None]) -> Result:
        _, x, y, groups = payload
        return evaluate(
            clf,
            x.to(clf.device),
            y.to(clf.device),
            self.threat,
            self.entries,
            seed=self.seed,
            batch_size=self.batch_size,
            dataset=self.dataset,
            groups=groups,
            class_names=self.class_names,
            eot_samples=self.eot_samples,
            precision=self.precision,
        )


@dataclass(frozen=True)
class SweepShard:
    """``sweep`` of one shard: ``task(clf, (start, x, y, groups))``; ``options`` go to ``sweep``;
    ``precision`` (resolved) is that of the suite refinement."""

    threat: Threat | type[Threat] | str
    epsilons: list[float]
    suite: str | list[SuiteEntry]
    seed: int
    batch_size: int
    dataset: str | None
    eot_samples: int
    options: dict[str, Any]
    precision: str = "fp32"

    def __call__(self, clf: Classifier, payload: tuple[int, Tensor, Tensor, list[str] | None]) -> Result:
        _, x, y, groups = payload
        return sweep(
            clf,
            x.to(clf.device),
            y.to(clf.device),
            self.threat,
            self.epsilons,
            self.suite,
            seed=self.seed,
            batch_size=self.batch_size,
            dataset=self.dataset,
            groups=groups,
            eot_samples=self.eot_samples,
            precision=self.precision,
            **self.options,
        )


def evaluate_sharded(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    suite: str | Sequence[SuiteEntry],
    executor: Executor,
    *,
    seed: int,
    batch_size: int,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    eot_samples: int,
    progress: ProgressOption = None,
    precision: str = "fp32",
) -> Result:
    """``evaluate`` of ``(x, y)`` run shard by shard on ``executor`` and merged (module docstring).

    The arguments are ``evaluate``'s, already converted to tensors. ``clf`` is checked and used here
    to choose the suite on the first shard (a few passes); the executor's workers attack and judge.
    ``precision`` is resolved here, for ``clf``'s device (``"auto"`` does not vary by worker), and
    every shard runs in it; the merged Result's ``precision`` is what ran.
    """
    labels = check_arguments(clf, x, y, threat, batch_size)
    precision = resolve_precision(precision, clf.device)
    _check_groups(groups, x.shape[0])
    started = time.perf_counter()
    shards = executor.plan(x.shape[0], batch_size)
    first = shards[0][1] if shards else 0
    entries = _choose(clf, x[:first], labels[:first], threat, suite, seed, batch_size, eot_samples)
    choose_s = time.perf_counter() - started
    names = list(class_names) if class_names else None
    task = EvaluateShard(threat, entries, seed, batch_size, dataset, names, eot_samples, precision)
    parts = _run(executor, task, clf, shards, _payloads(x, labels, groups), progress)
    merger = _merge(parts, clf, x, class_names, groups is not None)
    merger.timing["probe_s"] = merger.timing.get("probe_s", 0.0) + choose_s
    named = suite if isinstance(suite, str) else "custom"
    return _finish(merger, executor, started, suite=named, smoke_test=is_smoke_test(named))


def sweep_sharded(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: type[Threat] | Threat | str,
    epsilons: Sequence[float],
    suite: str | Sequence[SuiteEntry],
    executor: Executor,
    *,
    seed: int,
    batch_size: int,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    eot_samples: int,
    progress: ProgressOption = None,
    precision: str = "fp32",
    **options: Any,
) -> Result:
    """``sweep`` of ``(x, y)`` run shard by shard on ``executor``; the curves and Results merged.

    Each shard is swept on its own (its suite chosen from its own evidence); ``precision`` (resolved
    here, for ``clf``'s device) is that of every shard's suite refinement; ``options`` go to
    ``sweep`` (``min_norm``, ``refine``).
    """
    if not isinstance(clf, Classifier):
        raise TypeError(f"sweep takes a fortify Classifier, got {type(clf).__name__}")
    clf.check_input(x)
    precision = resolve_precision(precision, clf.device)
    _check_groups(groups, x.shape[0])
    started = time.perf_counter()
    task = SweepShard(
        threat,
        [float(e) for e in epsilons],
        suite if isinstance(suite, str) else list(suite),
        seed,
        batch_size,
        dataset,
        eot_samples,
        dict(options),
        precision,
    )
    shards = executor.plan(x.shape[0], batch_size)
    parts = _run(executor, task, clf, shards, _payloads(x, y.cpu(), groups), progress)
    merger = _merge(parts, clf, x, None, groups is not None)
    result = _finish(merger, executor, started)
    curves = []
    for _, part in parts:
        if part.sweep is None:
            raise FortifyError("a shard's sweep returned no curve")
        curves.append((part.n_samples, part.sweep))
    result.sweep = _merged_curve(curves, result.clean_accuracy or 0.0)
    return result


def _payloads(
    x: Tensor, y: Tensor, groups: Sequence[str] | None
) -> Callable[[int, int], tuple[int, Tensor, Tensor, list[str] | None]]:
    """The shard builder: ``(start, x, y, groups)`` of the samples ``start..stop``."""

    def payload(start: int, stop: int) -> tuple[int, Tensor, Tensor, list[str] | None]:
        return start, x[start:stop], y[start:stop], None if groups is None else list(groups[start:stop])

    return payload


def _run(
    executor: Executor,
    task: Callable[[Classifier, Any], Result],
    clf: Classifier,
    shards: list[tuple[int, int]],
    payload: Callable[[int, int], Any],
    progress: ProgressOption,
) -> list[tuple[int, Result]]:
    """Run the shards; ``[(start, Result), ...]`` in sample order. Progress advances by each finished
    shard's samples."""
    total = sum(stop - start for start, stop in shards)
    with reporting(progress, "evaluating (sharded)", total) as ticker:

        def done(shard: int, count: int) -> None:
            start, stop = shards[shard]
            ticker.advance(stop - start, status=f"shard {shard + 1} of {count} done")

        parts = executor.map_shards(task, clf, shards, payload, done=done)
    return [(start, part) for (start, _), part in zip(shards, parts, strict=True)]


def _merge(
    parts: list[tuple[int, Result]],
    clf: Classifier,
    x: Tensor,
    class_names: Sequence[str] | None,
    grouped: bool,
) -> Merger:
    merger = Merger(class_names=list(class_names) if class_names else None, grouped=grouped)
    merger.gallery_limit = Gallery.for_inputs(x, clf.bounds).limit
    for start, part in parts:
        merger.add(start, part)
    return merger


def _finish(merger: Merger, executor: Executor, started: float, **updates: Any) -> Result:
    """The merged Result; ``timing["worker_s"]`` is the shards' time added up, ``total_s`` the wall time."""
    merger.timing["worker_s"] = merger.timing.get("total_s", 0.0)
    merger.timing["total_s"] = time.perf_counter() - started
    first = merger.first
    sections = dict(first.sections) if first is not None else {}
    sections["scale"] = {
        **executor.describe(),
        "diagnostics": "run on every shard; a check fails if it failed on any",
    }
    return merger.result(sections=sections, **updates)


def _check_groups(groups: Sequence[str] | None, n: int) -> None:
    if groups is not None and len(groups) != n:
        raise FortifyError(f"groups must have one entry per sample ({n}), got {len(groups)}")
