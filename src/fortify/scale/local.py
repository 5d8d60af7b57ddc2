"""The in-process executor: the shards of a job run here, one after another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fortify._validate import positive_int
from fortify.model import Classifier
from fortify.types import FortifyError, ShardTask, split_shards


def load_once(model: Any) -> Classifier:
    """The classifier ``model`` stands for: itself, or what the zero-argument loader ``model`` returns.

    Raises ``FortifyError`` when the loader fails or returns something else than a ``Classifier``.
    """
    if isinstance(model, Classifier):
        return model
    if not callable(model):
        raise TypeError(f"model must be a Classifier or a loader returning one, got {type(model).__name__}")
    clf = model()
    if not isinstance(clf, Classifier):
        raise FortifyError(f"the model loader returned {type(clf).__name__}, not a fortify Classifier")
    return clf


class InProcess:
    """Runs the ``shards`` shards of a job in this process, in order: the reference a cluster's run of
    the same shards reproduces (``ft.scale.Ray(shards=k)`` gives what ``InProcess(shards=k)`` gives).

    ``model_loader`` (a zero-argument callable returning a ``Classifier``) replaces the caller's model
    for the workers, as it does for ``Ray``; by default the caller's classifier is used.
    """

    def __init__(self, shards: int = 1, *, model_loader: Callable[[], Classifier] | None = None) -> None:
        self.shards = positive_int("shards", shards)
        self.model_loader = model_loader
        self._last: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"InProcess(shards={self.shards})"

    def plan(self, n: int, align: int = 1) -> list[tuple[int, int]]:
        """``split_shards(n, self.shards, align)``."""
        return split_shards(n, self.shards, align)

    def map_shards(
        self,
        task: ShardTask,
        model: Any,
        shards: list[tuple[int, int]],
        payload: Callable[[int, int], Any],
        *,
        done: Callable[[int, int], None] | None = None,
    ) -> list[Any]:
        """``[task(clf, payload(start, stop)) for each shard]``, the model loaded once."""
        clf = load_once(self.model_loader if self.model_loader is not None else model)
        parts = []
        for k, (start, stop) in enumerate(shards):
            parts.append(task(clf, payload(start, stop)))
            if done is not None:
                done(k, len(shards))
        self._last = {
            "executor": "in-process",
            "shards": [list(s) for s in shards],
            "workers": 1,
            "retries": 0,
        }
        return parts

    def describe(self) -> dict[str, object]:
        """How the last job ran: ``{"executor": "in-process", "shards": [[start, stop], ...], ...}``."""
        return dict(self._last) or {"executor": "in-process", "shards": self.shards}
