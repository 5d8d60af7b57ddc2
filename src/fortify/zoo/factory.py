"""Models built by the user's own code: an import path ``pkg.module:factory`` and its keyword arguments.

Importing a module runs its code, so nothing here is ever reached from a file alone: the caller must
have been told to import (an import path the user typed, or ``trust_code=True``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from torch import nn

from fortify.types import FortifyError

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_import_path(text: str) -> bool:
    """``True`` for ``pkg.module:factory`` (dotted module, colon, dotted attribute)."""
    return bool(_IMPORT_PATH.match(text))


def resolve(path: str) -> Callable[..., Any]:
    """The callable named by ``pkg.module:factory``, importing ``pkg.module`` (the current folder is
    searched too, as ``python -m`` would)."""
    if not is_import_path(path):
        raise FortifyError(f"{path[:80]!r} is not an import path of the form pkg.module:factory")
    module_name, attribute = path.split(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FortifyError(f"cannot import {module_name!r} for {path}: {exc}") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise FortifyError(f"{module_name} has no attribute {attribute!r} (from {path})")
        target = getattr(target, part)
    if not callable(target):
        raise FortifyError(f"{path} is not callable (a {type(target).__name__})")
    return target


def build(path: str, kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Call the factory at ``path`` with ``kwargs``; it must return an ``nn.Module``."""
    factory = resolve(path)
    try:
        module = factory(**(kwargs or {}))
    except TypeError as exc:
        raise FortifyError(f"{path}({_show(kwargs)}) failed: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise FortifyError(f"{path} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def parse_model_args(pairs: Iterable[str]) -> dict[str, Any]:
    """``["width=32", "act=relu", "dropout=0.1"]`` -> keyword arguments; values are read as JSON
    (numbers, booleans, null, lists) and otherwise kept as strings."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise FortifyError(f"--model-arg must be name=value, got {pair[:80]!r}")
        if key in kwargs:
            raise FortifyError(f"--model-arg {key} given twice")
        try:
            kwargs[key] = json.loads(raw)
        except ValueError:
            kwargs[key] = raw
    return kwargs


def _show(kwargs: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in (kwargs or {}).items())
