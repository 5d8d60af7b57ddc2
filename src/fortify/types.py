"""Small shared types: errors, and the protocols the layers meet at.

``ProvidesClassifier`` (a guard evaluated as the classifier it provides), ``Detected`` / ``DetectorLike``
(a model with a detector, and what evaluation needs of the detector), ``Progress`` / ``Ticker`` (how slow
library calls report progress; the CLI draws it), ``Executor`` (where the shards of one evaluation or
certification run: ``ft.scale.InProcess``, ``ft.scale.Ray``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

if TYPE_CHECKING:  # torch is imported where it is used, so `import fortify` stays light
    from torch import Tensor, nn

Bounds: TypeAlias = tuple[float, float]
"""Inclusive (low, high) range of every input coordinate, in the model's input space."""


class FortifyError(ValueError):
    """A problem with the user's input or files, reported to the user as one line (CLI exit code 2)."""


class DataError(FortifyError):
    """A dataset file is missing, corrupt or unreadable; the message says which file and what to do."""


class UnsafeFileError(FortifyError):
    """A file would need unpickling (arbitrary code execution) to load; fortify refuses it."""


@runtime_checkable
class ProvidesClassifier(Protocol):
    """An object evaluated as the ``Classifier`` it provides (``ft.Guard``: its pipeline and policy).

    ``ft.evaluate(obj, ...)`` attacks and judges ``obj.as_classifier()``, then lets
    ``obj.annotate_result(result, x, y)`` add its own section to the Result it returns.
    """

    def as_classifier(self) -> Any: ...

    def annotate_result(self, result: Any, x: Any, y: Any) -> Any: ...


class DetectorLike(Protocol):
    """What evaluation needs of a runtime detector (``fortify.detect.Detector`` is one): differentiable
    suspicion scores ``(N,)`` from calling it, a ``threshold`` above which an input is flagged (set by
    calibration), ``flagged`` in batches, a JSON-ready ``describe``, and its sub-modules (an
    ``nn.Module``'s ``named_modules``), whose ``differentiable`` / ``randomized`` flags adaptive attacks
    read."""

    @property
    def calibrated(self) -> bool: ...

    @property
    def threshold(self) -> float: ...

    def __call__(self, x: Tensor) -> Tensor: ...

    def score(self, x: Tensor) -> Tensor: ...

    def flagged(self, x: Tensor, *, batch_size: int = ...) -> Tensor: ...

    def describe(self) -> dict[str, object]: ...

    def named_modules(self) -> Iterator[tuple[str, nn.Module]]: ...


@runtime_checkable
class Detected(Protocol):
    """A model with a detector in front ("a model with a detector"): evaluation checks for this protocol.

    ``detector`` is the detector (``None`` when the model has none); ``flagged(x)`` is a boolean ``(N,)``
    on the model's device: which inputs it rejects. Such a model is broken only by attack points that
    are misclassified and not flagged, and is attacked with the detector in the objective.
    ``fortify.defenses.defend(clf, detector=det)`` builds one; so does the classifier a runtime guard
    provides (``ProvidesClassifier``).
    """

    @property
    def detector(self) -> DetectorLike | None: ...

    def flagged(self, x: Tensor) -> Tensor: ...


def is_detector(obj: object) -> bool:
    """True for an ``nn.Module`` with the ``DetectorLike`` methods (checked without reading ``threshold``,
    which raises until the detector is calibrated)."""
    from torch import nn

    methods = ("score", "flagged", "calibrate", "describe")
    return isinstance(obj, nn.Module) and all(callable(getattr(obj, name, None)) for name in methods)


def detector_of(model: object) -> DetectorLike | None:
    """The detector of a ``Detected`` model, ``None`` for any other model (or one without a detector)."""
    return model.detector if isinstance(model, Detected) else None


class Ticker(Protocol):
    """What a long library call advances as it works: ``advance(units, status="...")``."""

    def advance(self, amount: float = 1, **fields: str) -> None: ...


Progress: TypeAlias = Callable[[str, float], AbstractContextManager[Ticker]]
"""A progress reporter: called with a description and the total units of work, it returns a context
manager holding the ``Ticker`` the library advances. The CLI passes one that draws bars
(``fortify.cli.progress.bars``); the library itself never draws."""

ProgressOption: TypeAlias = Progress | bool | None
"""The ``progress=`` argument of slow library calls: a ``Progress`` reporter, ``True`` to log progress
through ``logging`` (logger ``fortify.progress``, level INFO), or ``False`` / ``None`` for nothing."""

_progress_log = logging.getLogger("fortify.progress")


class _Silent:
    def advance(self, amount: float = 1, **fields: str) -> None:
        return None


class _Logged:
    def __init__(self, description: str, total: float) -> None:
        self.description, self.total, self.done = description, total, 0.0

    def advance(self, amount: float = 1, **fields: str) -> None:
        self.done += amount
        status = fields.get("status", "")
        _progress_log.info("%s: %g/%g %s", self.description, self.done, self.total, status)


@contextmanager
def reporting(progress: ProgressOption, description: str, total: float) -> Iterator[Ticker]:
    """The ticker a library call advances for ``progress`` (see ``ProgressOption``)."""
    if callable(progress):
        with progress(description, total) as ticker:
            yield ticker
    elif progress:
        yield _Logged(description, total)
    else:
        yield _Silent()


ShardTask: TypeAlias = Callable[[Any, Any], Any]
"""The unit of work of a sharded job: ``task(clf, payload) -> part``, a picklable callable run once per
shard on whichever worker holds the model; ``payload`` is that shard's data."""


@runtime_checkable
class Executor(Protocol):
    """Where the shards of one job run (``ft.evaluate(..., executor=...)``, ``certified_accuracy``...).

    ``plan(n, align)`` cuts the samples ``0..n`` into contiguous ``(start, stop)`` shards
    (``split_shards``; boundaries multiples of ``align``; how many is the executor's choice).
    ``map_shards(task, model, shards, payload, done=f)`` builds each shard's data with
    ``payload(start, stop)``, runs ``task(clf, data)`` on a worker that loaded ``model`` once (a
    ``Classifier``, or a zero-argument callable returning one) and returns the parts in shard order,
    each shard's exactly once whatever workers died and were replaced. ``done(shard, shards)`` is
    called in the caller's process as each shard finishes. ``describe()`` is the JSON-ready record of
    how the last job ran (executor, shards, workers, retries), for the Result's ``sections["scale"]``.
    """

    def plan(self, n: int, align: int = 1) -> list[tuple[int, int]]: ...

    def map_shards(
        self,
        task: ShardTask,
        model: Any,
        shards: list[tuple[int, int]],
        payload: Callable[[int, int], Any],
        *,
        done: Callable[[int, int], None] | None = None,
    ) -> list[Any]: ...

    def describe(self) -> dict[str, object]: ...


def split_shards(n: int, shards: int, align: int = 1) -> list[tuple[int, int]]:
    """``0..n`` cut into at most ``shards`` contiguous, non-empty ``(start, stop)`` ranges of near-equal
    size whose inner boundaries are multiples of ``align`` (fewer shards when ``n`` is too small);
    they cover every index exactly once, in order. The same ``(n, shards, align)`` always gives the
    same ranges, so a sharded job is reproducible from its record."""
    if n < 0 or shards < 1 or align < 1:
        raise FortifyError(f"cannot split {n} samples into {shards} shards aligned to {align}")
    if n == 0:
        return []
    blocks = -(-n // align)  # ceil: whole aligned blocks (the last may be short)
    count = min(shards, blocks)
    bounds = [min(n, (blocks * k // count) * align) for k in range(count + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
