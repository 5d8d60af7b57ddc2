"""Hyperparameter checks shared by the white-box attacks: each raises ``FortifyError`` naming the value."""

from __future__ import annotations

import math

from fortify.types import FortifyError


def positive_int(name: str, value: int) -> int:
    """``value`` if it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FortifyError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def non_negative_int(name: str, value: int) -> int:
    """``value`` if it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FortifyError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def positive_float(name: str, value: float, *, allow_zero: bool = False) -> float:
    """``value`` as a float if it is finite and > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FortifyError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise FortifyError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


def fraction(name: str, value: float) -> float:
    """``value`` as a float if it lies in the open interval (0, 1)."""
    value = positive_float(name, value)
    if value >= 1:
        raise FortifyError(f"{name} must lie in (0, 1), got {value!r}")
    return value


def choice(name: str, value: str, options: tuple[str, ...]) -> str:
    """``value`` (lower-cased) if it is one of ``options``."""
    key = str(value).lower() if isinstance(value, str) else value
    if key not in options:
        raise FortifyError(f"{name} must be one of {list(options)}, got {value!r}")
    return key
