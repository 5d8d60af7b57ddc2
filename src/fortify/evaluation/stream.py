"""Evaluation of data given as batches (a ``DataLoader``, a list of ``(x, y)`` pairs, a generator),
streamed: a data set larger than memory is evaluated one chunk at a time.

The batches are regrouped into chunks of ``chunk_size`` samples (``fortify.data.batches.chunks``);
each chunk is evaluated by the in-memory ``evaluate`` (or ``sweep``) and dropped, and the chunks'
Results are merged into one (``fortify.evaluation.merge`` says exactly how). Per-sample records keep
their global index: the position of the sample in the order the batches came.

What streaming changes, and what it does not:

- the suite (for ``evaluate``) is chosen once, from the evidence measured on the first chunk
  (gradients, randomness, classes, detector), as the in-memory evaluation chooses it from the first
  samples of the whole set; every chunk then runs those same attacks, with the same ``seed``;
- per-sample outcomes equal those of the in-memory evaluation of the same data whenever every
  attack's outcome for a sample does not depend on which samples share its batch: true of the
  deterministic attacks (FGSM, PGD without random start, DeepFool...). Attacks with random starts
  or restarts draw from a generator seeded with ``seed`` at each batch, so which draw a sample gets
  depends on its batch, in memory as well as streamed: the figures agree statistically, not bitwise;
- entries that ``probe`` a few samples (``standard``'s ``square-probe``) probe that many in each
  chunk, and their escalation runs in the chunks whose probe broke a sample;
- diagnostics run on every chunk (their cost is bounded per chunk) and are merged conservatively:
  a check fails if it failed on any chunk. ``sweep_batches`` lets every chunk choose its suite from
  its own evidence;
- ``sections["streaming"]`` records the chunking: chunks, chunk_size, where the suite was chosen.

Memory: one chunk of inputs at a time, plus the per-sample records (well under a kilobyte each) and
a gallery of at most a few images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from torch import Tensor

from fortify.attacks.base import resolve_precision
from fortify.data.batches import chunks, sample_count
from fortify.evaluation.adaptive import DEFAULT_EOT_SAMPLES
from fortify.evaluation.evaluate import DEFAULT_BATCH_SIZE, check_arguments, evaluate, prepare
from fortify.evaluation.gallery import Gallery
from fortify.evaluation.ledger import Ledger
from fortify.evaluation.merge import Merger
from fortify.evaluation.suites import SuiteEntry, entries_for, is_smoke_test, suite_names
from fortify.evaluation.sweep import sweep
from fortify.model import Classifier
from fortify.result import Result, Sweep
from fortify.threat import Threat
from fortify.types import FortifyError, ProgressOption, ProvidesClassifier, Ticker, reporting

DEFAULT_CHUNK_SIZE = 4096
"""Samples evaluated at once: large enough that per-chunk checks cost little, small enough for memory."""


def evaluate_batches(
    clf: Classifier | ProvidesClassifier,
    data: Iterable[Any],
    threat: Threat,
    suite: str | Sequence[SuiteEntry] = "quick",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    eot_samples: int = DEFAULT_EOT_SAMPLES,
    progress: ProgressOption = None,
    precision: str = "fp32",
) -> Result:
    """``evaluate`` over ``data``, an iterable of ``(x, y)`` batches, streamed chunk by chunk.

    ``data`` is read once, in order. Each chunk of ``chunk_size`` samples is evaluated by
    ``evaluate`` with the suite chosen on the first chunk (see the module docstring for what that
    keeps and changes); ``groups`` has one entry per sample of the whole stream. ``precision``
    (``fp32 | bf16 | auto``, as for ``evaluate``) is resolved once, for ``clf``'s device, and every
    chunk runs in it. Returns one Result over every sample (``precision`` what ran); per-sample
    ``index`` is the sample's global position in the stream.
    """
    clf = _refuse_guards(clf)
    precision = resolve_precision(precision, clf.device)
    if isinstance(suite, str) and suite not in suite_names():
        raise FortifyError(f"unknown suite {suite!r}; choose one of {suite_names()}")
    merger = Merger(class_names=list(class_names) if class_names else None, grouped=groups is not None)
    started = time.perf_counter()
    entries: list[SuiteEntry] | None = None
    choose_s = 0.0
    with _stream_ticker(progress, data) as (ticker, forward):
        for start, x, y in _timed_chunks(data, chunk_size, merger):
            if entries is None:
                t0 = time.perf_counter()
                entries = _choose(clf, x, y, threat, suite, seed, batch_size, eot_samples)
                choose_s = time.perf_counter() - t0
                merger.gallery_limit = Gallery.for_inputs(x, clf.bounds).limit
            part = evaluate(
                clf,
                x,
                y,
                threat,
                entries,
                seed=seed,
                batch_size=batch_size,
                dataset=dataset,
                groups=_groups_of(groups, start, x.shape[0]),
                class_names=class_names,
                eot_samples=eot_samples,
                progress=forward(f"chunk {merger.parts + 1}"),
                precision=precision,
            )
            merger.add(start, part)
            ticker.advance(x.shape[0], status=f"chunk {merger.parts} done")
    _check_groups(groups, merger.n)
    merger.timing["probe_s"] = merger.timing.get("probe_s", 0.0) + choose_s
    named = suite if isinstance(suite, str) else "custom"
    return _finish(merger, started, chunk_size, "first chunk", suite=named, smoke_test=is_smoke_test(named))


def sweep_batches(
    clf: Classifier | ProvidesClassifier,
    data: Iterable[Any],
    threat: type[Threat] | Threat | str,
    epsilons: Sequence[float],
    suite: str | Sequence[SuiteEntry] = "standard",
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dataset: str | None = None,
    groups: Sequence[str] | None = None,
    eot_samples: int = DEFAULT_EOT_SAMPLES,
    progress: ProgressOption = None,
    precision: str = "fp32",
    **options: Any,
) -> Result:
    """``sweep`` over ``data``, an iterable of ``(x, y)`` batches, streamed chunk by chunk.

    Each chunk is swept on its own (its suite chosen from its own evidence) and the Results merged;
    the curve's robust accuracy at each eps is the count of samples robust there over all chunks.
    ``precision`` is resolved once, for ``clf``'s device, and every chunk's suite refinement runs in
    it. ``options`` go to ``sweep`` (``min_norm``, ``refine``).
    """
    clf = _refuse_guards(clf)
    precision = resolve_precision(precision, clf.device)
    merger = Merger(grouped=groups is not None)
    curves: list[tuple[int, Sweep]] = []
    started = time.perf_counter()
    with _stream_ticker(progress, data) as (ticker, forward):
        for start, x, y in _timed_chunks(data, chunk_size, merger):
            if not curves:
                merger.gallery_limit = Gallery.for_inputs(x, clf.bounds).limit
            part = sweep(
                clf,
                x,
                y,
                threat,
                epsilons,
                suite,
                seed=seed,
                batch_size=batch_size,
                dataset=dataset,
                groups=_groups_of(groups, start, x.shape[0]),
                eot_samples=eot_samples,
                progress=forward(f"chunk {merger.parts + 1}"),
                precision=precision,
                **options,
            )
            assert part.sweep is not None  # sweep always records its curve
            curves.append((part.n_samples, part.sweep))
            merger.add(start, part)
            ticker.advance(x.shape[0], status=f"chunk {merger.parts} done")
    _check_groups(groups, merger.n)
    result = _finish(merger, started, chunk_size, "each chunk")
    result.sweep = _merged_curve(curves, result.clean_accuracy or 0.0)
    return result


def _merged_curve(curves: list[tuple[int, Sweep]], clean_accuracy: float) -> Sweep:
    """The chunks' curves as one: robust counts added up at each eps, times summed."""
    n = sum(count for count, _ in curves)
    first = curves[0][1]
    robust = [
        sum(round(curve.robust_accuracy[k] * count) for count, curve in curves) / n
        for k in range(len(first.epsilons))
    ]
    times = [sum(curve.time_s[k] for _, curve in curves) for k in range(len(first.time_s))]
    return first.model_copy(
        update={"robust_accuracy": robust, "time_s": times, "clean_accuracy": clean_accuracy}
    )


def _choose(
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    suite: str | Sequence[SuiteEntry],
    seed: int,
    batch_size: int,
    eot_samples: int,
) -> list[SuiteEntry]:
    """The suite's entries for the evidence measured on this (first) chunk, as ``evaluate`` measures it."""
    if not isinstance(suite, str):
        if not list(suite):
            raise FortifyError("the suite has no attacks")
        return list(suite)
    labels = check_arguments(clf, x, y, threat, batch_size)
    probe = prepare(clf, x, labels, Ledger.start(clf, x, labels), eot_samples)
    return entries_for(suite, threat, seed, probe.evidence)


def _finish(merger: Merger, started: float, chunk_size: int, chosen_on: str, **updates: Any) -> Result:
    merger.timing["total_s"] = time.perf_counter() - started
    first = merger.first
    sections = dict(first.sections) if first is not None else {}
    sections["streaming"] = {
        "chunks": merger.parts,
        "chunk_size": chunk_size,
        "suite_chosen_on": chosen_on,
        "diagnostics": "run on every chunk; a check fails if it failed on any",
    }
    return merger.result(sections=sections, **updates)


def _timed_chunks(
    data: Iterable[Any], chunk_size: int, merger: Merger
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """``chunks(data, chunk_size)``, adding the time spent reading the data to ``timing["data_s"]``."""
    stream = chunks(data, chunk_size)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(stream)
        except StopIteration:
            return
        finally:
            merger.timing["data_s"] = merger.timing.get("data_s", 0.0) + time.perf_counter() - t0
        yield item


def _refuse_guards(clf: object) -> Classifier:
    """``clf`` if it is a plain ``Classifier``; a guard is refused naming what to use instead."""
    if isinstance(clf, ProvidesClassifier):
        raise FortifyError(
            "a guard is evaluated in memory (ft.runtime.evaluate_guard, or ft.evaluate with tensors): "
            "its section is about the whole data set, which a stream of chunks cannot give"
        )
    if not isinstance(clf, Classifier):
        raise TypeError(f"evaluate takes a fortify Classifier, got {type(clf).__name__}")
    return clf


def _groups_of(groups: Sequence[str] | None, start: int, n: int) -> Sequence[str] | None:
    if groups is None:
        return None
    if start + n > len(groups):
        raise FortifyError(f"groups must have one entry per sample; the data has more than {len(groups)}")
    return groups[start : start + n]


def _check_groups(groups: Sequence[str] | None, n: int) -> None:
    if groups is not None and len(groups) != n:
        raise FortifyError(f"groups must have one entry per sample ({n}), got {len(groups)}")


Forward = Callable[[str], Callable[[str, float], AbstractContextManager[Ticker]] | None]


@contextmanager
def _stream_ticker(progress: ProgressOption, data: object) -> Iterator[tuple[Ticker, Forward]]:
    """A ticker over the stream's samples (total known when ``data`` says how many it holds, else 0),
    and a maker of per-chunk ``progress`` arguments that show a chunk's stage as the ticker's status."""
    total = sample_count(data) or 0
    with reporting(progress, "evaluating (streamed)", total) as ticker:

        def forward(label: str) -> Callable[[str, float], AbstractContextManager[Ticker]] | None:
            if not progress:
                return None

            @contextmanager
            def stage(description: str, units: float) -> Iterator[Ticker]:
                yield _Status(ticker, label)

            return stage

        yield ticker, forward


class _Status:
    """A ticker that moves nothing and passes its status on, prefixed with the chunk's label."""

    def __init__(self, outer: Ticker, label: str) -> None:
        self._outer, self._label = outer, label

    def advance(self, amount: float = 1, **fields: str) -> None:
        status = fields.get("status")
        if status:
            self._outer.advance(0, status=f"{self._label}: {status}")
