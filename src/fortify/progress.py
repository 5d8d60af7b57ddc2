"""Moved to ``fortify.cli.progress`` (the CLI draws progress; the library reports it through
``fortify.types.Progress``); this module keeps the old import path working."""

from fortify.cli.progress import bar, bars, wanted
from fortify.types import Ticker

__all__ = ["Ticker", "bar", "bars", "wanted"]
