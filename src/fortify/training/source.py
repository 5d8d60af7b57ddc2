"""Where the training loop's batches come from: tensors in memory, or an iterable of ``(x, y)``
batches (a ``DataLoader``) read afresh every epoch.

Both give the loop the same three things: ``epoch()`` (the batches of one pass), ``steps`` (batches per
epoch, for the schedules) and ``head`` (the first samples, at most ``ACCURACY_SUBSET``: the training
accuracy after each epoch and the catastrophic-overfitting checks are measured on them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import torch
from torch import Tensor

from fortify.attacks.base import check_labels
from fortify.data.batches import iter_batches
from fortify.model import Classifier
from fortify.types import FortifyError

ACCURACY_SUBSET = 5_000
"""Training samples the per-epoch training accuracy is measured on (the first ones)."""


class Source(Protocol):
    """What the loop reads: ``steps`` per epoch, the ``head`` samples, and one epoch's batches."""

    steps: int
    head: tuple[Tensor, Tensor]

    def epoch(self) -> Iterator[tuple[Tensor, Tensor]]: ...


class TensorSource:
    """Tensors ``x`` ``(N, ...)``, ``y`` ``(N,)``, shuffled each epoch by a generator seeded with ``seed``
    and cut into batches of ``batch_size``."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size
        self.steps = (x.shape[0] + batch_size - 1) // batch_size
        self.head = (x[:ACCURACY_SUBSET], y[:ACCURACY_SUBSET])
        self._shuffle = torch.Generator().manual_seed(seed)

    def epoch(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(self.x.shape[0], generator=self._shuffle)
        for idx in order.split(self.batch_size):
            yield self.x[idx], self.y[idx]


class BatchSource:
    """An iterable of ``(x, y)`` batches with a length (a ``DataLoader``, a list of pairs), read once per
    epoch in its own order (a ``DataLoader`` shuffles with its own generator: seed it to repeat a run).
    After ``checked_by(clf)`` every batch is checked against ``clf`` as it arrives."""

    def __init__(self, data: Iterable[Any]) -> None:
        if isinstance(data, Iterator):
            raise FortifyError(
                "train reads its data once per epoch: give a DataLoader or a list of (x, y) batches, "
                "not an iterator or generator (it can be read only once)"
            )
        try:
            self.steps = len(data)  # type: ignore[arg-type]
        except TypeError:
            raise FortifyError(
                f"train needs to know how many batches an epoch has: {type(data).__name__} has no len()"
            ) from None
        if self.steps < 1:
            raise FortifyError("the training data has no batches")
        self.data: Iterable[Any] = data
        self.clf: Classifier | None = None
        self.batch_size: int | None = getattr(data, "batch_size", None)
        self.head = self._head()

    def checked_by(self, clf: Classifier) -> BatchSource:
        """Check every batch (the head now, the others as they arrive) against ``clf``'s inputs and
        classes; returns this source with the head's labels as int64."""
        self.clf = clf
        clf.check_input(self.head[0])
        self.head = (self.head[0], check_labels(self.head[1], self.head[0].shape[0], clf.num_classes))
        return self

    def _head(self) -> tuple[Tensor, Tensor]:
        xs, ys, held = [], [], 0
        for x, y in self.epoch():
            xs.append(x[: ACCURACY_SUBSET - held])
            ys.append(y[: ACCURACY_SUBSET - held])
            held += xs[-1].shape[0]
            if held >= ACCURACY_SUBSET:
                break
        if not xs:
            raise FortifyError("the training data yielded no samples")
        return torch.cat(xs), torch.cat(ys)

    def epoch(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in iter_batches(self.data):
            if self.clf is None:
                yield x, y
                continue
            self.clf.check_input(x)
            yield x, check_labels(y, x.shape[0], self.clf.num_classes)
