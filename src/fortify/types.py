"""Small shared types."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeAlias

Bounds: TypeAlias = tuple[float, float]
"""Inclusive (low, high) range of every input coordinate, in the model's input space."""


class FortifyError(ValueError):
    """A problem with the user's input or files, reported to the user as one line (CLI exit code 2)."""


class DataError(FortifyError):
    """A dataset file is missing, corrupt or unreadable; the message says which file and what to do."""


class UnsafeFileError(FortifyError):
    """A file would need unpickling (arbitrary code execution) to load; fortify refuses it."""


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
