"""The one batched attack runner: attack a data set in chunks, and the accuracy of a model on it.

Every caller that attacks more samples than fit in one batch (training's robust validation, the CLI,
diagnostics, sweeps, evaluation's ledger, the benchmarks) goes through ``batches`` / ``run_batched``,
so sharding the work over a cluster has exactly one place to change. Data given as an iterable of
``(x, y)`` batches (a ``DataLoader``) goes through ``stream``, which keeps nothing, or ``run_batched``
with ``y=None``, which gathers the points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple, cast

import torch
from torch import Tensor

from fortify._validate import from_numpy, positive_int
from fortify.attacks.base import Attack, AttackOutput
from fortify.data.batches import is_batches, iter_batches
from fortify.model import BlackBox, Classifier
from fortify.threat import Threat
from fortify.types import FortifyError, Ticker


def batches(
    attack: Attack,
    model: Classifier | BlackBox,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    *,
    batch_size: int,
    indices: Tensor | None = None,
    labels: Tensor | None = None,
    around: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[tuple[Tensor, AttackOutput]]:
    """Attack the rows ``indices`` (default: all) of ``x`` ``(N, ...)`` in chunks of ``batch_size``.

    Yields ``(chunk, output)`` per chunk: the int64 row indices and the attack's ``AttackOutput`` for
    ``x[chunk]``, ``y[chunk]`` (and ``labels[chunk]`` for targeted attacks). ``around()`` is entered
    around each attack call only (e.g. to count the model's passes without the caller's own checks).
    """
    positive_int("batch_size", batch_size)
    rows = torch.arange(x.shape[0]) if indices is None else indices
    for chunk in rows.split(batch_size) if rows.numel() else ():
        with around():
            if labels is None:
                output = attack.attack(model, x[chunk], y[chunk], threat)
            else:
                output = attack.attack(model, x[chunk], y[chunk], threat, labels=labels[chunk])
        yield chunk, output


class Streamed(NamedTuple):
    """One attacked batch of a stream: ``start`` is the global index of its first sample."""

    start: int
    x: Tensor
    y: Tensor
    output: AttackOutput


def stream(
    attack: Attack,
    model: Classifier | BlackBox,
    data: Iterable[Any],
    threat: Threat,
    *,
    batch_size: int | None = None,
    around: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[Streamed]:
    """Attack each batch of ``data`` (an iterable of ``(x, y)`` batches, e.g. a ``DataLoader``) as it
    arrives, in pieces of at most ``batch_size`` rows (default: the batches as they come).

    Yields a ``Streamed`` per piece, in order; nothing is kept, so ``data`` may be larger than memory.
    Batches are checked as ``fortify.data.batches.iter_batches`` says.
    """
    start = 0
    for x, y in iter_batches(data):
        for xs, ys in zip(x.split(batch_size or x.shape[0]), y.split(batch_size or x.shape[0]), strict=True):
            with around():
                output = attack.attack(model, xs, ys, threat)
            yield Streamed(start, xs, ys, output)
            start += xs.shape[0]


def run_batched(
    attack: Attack,
    model: Classifier | BlackBox,
    x: Tensor | Iterable[Any],
    y: Tensor | None,
    threat: Threat,
    *,
    batch_size: int,
    labels: Tensor | None = None,
    ticker: Ticker | None = None,
) -> AttackOutput:
    """The attack on all of ``x`` ``(N, ...)``, run in chunks of ``batch_size``, gathered on the CPU.

    Returns ``x_adv`` ``(N, ...)``, ``queries`` ``(N,)`` (zeros where the attack counts none) and the
    model's ``logits`` ``(N, C)`` at ``x_adv`` (``None`` for a labels-only model). ``ticker`` is
    advanced by the rows of each finished chunk. ``x`` may be an iterable of ``(x, y)`` batches with
    ``y=None`` (untargeted; the points of every batch are gathered, in order: for data larger than
    memory use ``stream``).
    """
    positive_int("batch_size", batch_size)
    if is_batches(x):
        if y is not None or labels is not None:
            raise FortifyError("x is an iterable of (x, y) batches: pass y=None and no labels")
        pieces: Iterable[tuple[Tensor, AttackOutput]] = (
            (torch.arange(p.start, p.start + p.x.shape[0]), p.output)
            for p in stream(attack, model, x, threat, batch_size=batch_size)
        )
    else:
        if y is None:
            raise FortifyError("give the labels y (None only when x is an iterable of batches)")
        x, y = cast("tuple[Tensor, Tensor]", from_numpy(x, y))
        pieces = batches(attack, model, x, y, threat, batch_size=batch_size, labels=labels)
    points, queries, logits = [], [], []
    for chunk, out in pieces:
        points.append(out.x_adv.cpu())
        queries.append(
            out.queries.cpu() if out.queries is not None else torch.zeros(len(chunk), dtype=torch.long)
        )
        if out.logits is not None:
            logits.append(out.logits.cpu())
        if ticker is not None:
            ticker.advance(len(chunk))
    if not points:
        raise FortifyError("no samples to attack")
    all_logits = torch.cat(logits) if logits and len(logits) == len(points) else None
    return AttackOutput(torch.cat(points), torch.cat(queries), all_logits)


def accuracy(
    model: Classifier | BlackBox, x: Tensor | Iterable[Any], y: Tensor | None, *, check: bool = True
) -> float:
    """Fraction of ``x`` ``(N, ...)`` that ``model`` classifies as ``y`` ``(N,)`` (batched, no gradients).

    ``check=False`` skips the input checks for points the caller already validated. ``x`` may be an
    iterable of ``(x, y)`` batches with ``y=None``: read once, batch by batch.
    """
    if is_batches(x):
        if y is not None:
            raise FortifyError("x is an iterable of (x, y) batches: pass y=None")
        right = total = 0
        for xs, ys in iter_batches(x):
            right += int((model.predict(xs, check=check).cpu() == ys.cpu()).sum())
            total += xs.shape[0]
        if not total:
            raise FortifyError("no samples to measure accuracy on")
        return right / total
    if y is None:
        raise FortifyError("give the labels y (None only when x is an iterable of batches)")
    x, y = cast("tuple[Tensor, Tensor]", from_numpy(x, y))
    pred = model.predict(x, check=check).cpu()
    return float((pred == y.cpu()).float().mean())


def robust_accuracy(
    attack: Attack,
    clf: Classifier,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    *,
    batch_size: int,
    judge: Classifier | None = None,
) -> float:
    """Accuracy of ``judge`` (default ``clf``) at the points ``attack`` finds on ``clf``, in batches.

    Give ``clf`` an attack view of a defended model and ``judge`` the model itself to judge the points
    on the real classifier.
    """
    x_adv = run_batched(attack, clf, x.to(clf.device), y.to(clf.device), threat, batch_size=batch_size).x_adv
    return accuracy(judge if judge is not None else clf, x_adv, y, check=False)
