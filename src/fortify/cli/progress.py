"""Progress bars of the CLI: the ``Progress`` reporter it hands to slow library calls.

The library only advances a ``fortify.types.Ticker``; this module draws it as rich's bar on stderr,
removed when done, so nothing is printed into a user's logs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from fortify.types import Ticker, reporting


class _RichTicker:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1, **fields: str) -> None:
        self._progress.update(self._task, advance=amount, **fields)


def wanted(progress: bool | None) -> bool:
    """Draw a bar? ``None`` means: when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


@contextmanager
def bar(description: str, total: float, progress: bool | None, status: str = "") -> Iterator[Ticker]:
    """A progress bar over ``total`` units; ``advance(n, status=...)`` moves it and updates the status."""
    if not wanted(progress):
        with reporting(False, description, total) as silent:
            yield silent
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as rich_progress:
        task = rich_progress.add_task(description, total=total, status=status)
        yield _RichTicker(rich_progress, task)


def bars(description: str, total: float) -> AbstractContextManager[Ticker]:
    """The CLI's ``Progress`` reporter for library calls: always a bar (see ``bar``)."""
    return bar(description, total, True)
