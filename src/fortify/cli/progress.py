"""Progress of the CLI: the ``Progress`` reporter it hands to slow library calls.

The library only advances a ``fortify.types.Ticker``; this module draws it on stderr. On a terminal it
is rich's bar, removed when done; elsewhere (a CI log, a notebook, a pipe) it is a plain line every few
seconds -- stage, done/total, rate, ETA -- so a long run is never silent. ``--progress rich|plain|none``
chooses; ``--quiet`` means none.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any, TextIO

import typer

from fortify.types import FortifyError, Ticker, reporting

MODES = ("auto", "rich", "plain", "none")
PLAIN_EVERY_S = 5.0
"""Seconds between two plain progress lines (the first and the last are always written)."""

ProgressMode = Annotated[
    str,
    typer.Option(
        "--progress",
        help="rich (a bar), plain (a line every few seconds, for logs), none; auto: rich on a terminal, "
        "else plain",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress output (same as --progress none)")]

_mode = "auto"


def configure(mode: str = "auto", quiet: bool = False) -> None:
    """Choose how ``bars`` draws for the rest of this command."""
    global _mode
    if mode not in MODES:
        raise FortifyError(f"--progress must be one of {', '.join(MODES)}, got {mode!r}")
    _mode = "none" if quiet else mode


def silenced() -> bool:
    """True when this command writes no progress (``--quiet``, ``--progress none``)."""
    return _mode == "none"


def _resolved() -> str:
    if _mode != "auto":
        return _mode
    return "rich" if sys.stderr.isatty() else "plain"


class _RichTicker:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1, **fields: str) -> None:
        self._progress.update(self._task, advance=amount, **fields)


class PlainTicker:
    """Writes ``stage: done/total (pct) rate/s ETA status`` to ``stream`` at most every ``every`` seconds."""

    def __init__(
        self,
        description: str,
        total: float,
        stream: TextIO,
        every: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        status: str = "",
    ) -> None:
        self.description, self.total, self.done = description, total, 0.0
        self._stream, self._every, self._clock = stream, every, clock
        self._start = clock()
        self._last: float | None = None
        self._written = -1.0
        self._status = status

    def advance(self, amount: float = 1, **fields: str) -> None:
        self.done += amount
        self._status = fields.get("status", self._status)
        now = self._clock()
        if self._last is None or now - self._last >= self._every or self.done >= self.total:
            self.write(now)

    def finish(self) -> None:
        """The last line, unless it is already written (a stage that stopped early says where)."""
        if self._written != self.done:
            self.write()

    def write(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        self._last, self._written = now, self.done
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total > 0 else ""
        if self.done >= self.total:
            eta = f"done in {_duration(elapsed)}"
        else:
            eta = f"ETA {_duration((self.total - self.done) / rate)}" if rate > 0 else "ETA ?"
        status = f" {self._status}" if self._status else ""
        line = f"{self.description}: {self.done:g}/{self.total:g}{share} {rate:.3g}/s {eta}{status}"
        print(line, file=self._stream, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


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
    if _resolved() == "plain":
        ticker = PlainTicker(description, total, sys.stderr, status=status)
        yield ticker
        ticker.finish()
        return
    if _resolved() == "none":
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
    """The CLI's ``Progress`` reporter for library calls, drawn as ``--progress`` says (see ``bar``)."""
    return bar(description, total, True)
