"""Progress reporting for slow library calls.

Library functions take ``progress: bool | None``; ``None`` means "show a bar when stderr is a terminal".
The bar is rich's, drawn on stderr and removed when done, so nothing is printed into a user's logs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Ticker(Protocol):
    def advance(self, amount: float = 1, **fields: str) -> None: ...


class _Silent:
    def advance(self, amount: float = 1, **fields: str) -> None:
        return None


class _RichTicker:
    def __init__(self, progress: object, task: object) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1, **fields: str) -> None:
        self._progress.update(self._task, advance=amount, **fields)  # type: ignore[attr-defined]


def wanted(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


@contextmanager
def bar(description: str, total: float, progress: bool | None, status: str = "") -> Iterator[Ticker]:
    """A progress bar over ``total`` units; ``advance(n, status=...)`` moves it and updates the status."""
    if not wanted(progress):
        yield _Silent()
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
