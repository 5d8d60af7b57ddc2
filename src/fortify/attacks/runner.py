"""The one batched attack runner: attack a data set in chunks, and the accuracy of a model on it.

Every caller that attacks more samples than fit in one batch (training's robust validation, the CLI,
diagnostics, sweeps, evaluation's ledger, the benchmarks) goes through ``batches`` / ``run_batched``,
so sharding the work over a cluster has exactly one place to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor

from fortify._validate import positive_int
from fortify.attacks.base import Attack, AttackOutput
from fortify.model import BlackBox, Classifier
from fortify.threat import Threat
from fortify.types import Ticker


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


def run_batched(
    attack: Attack,
    model: Classifier | BlackBox,
    x: Tensor,
    y: Tensor,
    threat: Threat,
    *,
    batch_size: int,
    labels: Tensor | None = None,
    ticker: Ticker | None = None,
) -> AttackOutput:
    """The attack on all of ``x`` ``(N, ...)``, run in chunks of ``batch_size``, gathered on the CPU.

    Returns ``x_adv`` ``(N, ...)``, ``queries`` ``(N,)`` (zeros where the attack counts none) and the
    model's ``logits`` ``(N, C)`` at ``x_adv`` (``None`` for a labels-only model). ``ticker`` is
    advanced by the rows of each finished chunk.
    """
    points, queries, logits = [], [], []
    for chunk, out in batches(attack, model, x, y, threat, batch_size=batch_size, labels=labels):
        points.append(out.x_adv.cpu())
        queries.append(
            out.queries.cpu() if out.queries is not None else torch.zeros(len(chunk), dtype=torch.long)
        )
        if out.logits is not None:
            logits.append(out.logits.cpu())
        if ticker is not None:
            ticker.advance(len(chunk))
    all_logits = torch.cat(logits) if logits and len(logits) == len(points) else None
    return AttackOutput(torch.cat(points), torch.cat(queries), all_logits)


def accuracy(model: Classifier | BlackBox, x: Tensor, y: Tensor, *, check: bool = True) -> float:
    """Fraction of ``x`` ``(N, ...)`` that ``model`` classifies as ``y`` ``(N,)`` (batched, no gradients).

    ``check=False`` skips the input checks for points the caller already validated.
    """
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
