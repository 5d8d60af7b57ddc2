"""Small shared types."""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias, runtime_checkable

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
