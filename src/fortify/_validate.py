"""Input checks shared by the whole package: each returns the checked value or raises ``FortifyError``
naming the parameter and the value it got.

Booleans are refused wherever a number is expected (``True`` is an ``int`` to Python, never a count
or a rate to fortify).
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from fortify.types import FortifyError


def is_number(value: object) -> TypeGuard[int | float]:
    """True for an ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: object) -> TypeGuard[int]:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def integer(name: str, value: Any, *, low: int = 1, high: int | None = None, note: str = "") -> int:
    """``value`` if it is an integer ``>= low`` (and ``<= high`` when given).

    The message reads ``{name} must be an integer >= {low}{note}`` (or ``in [low, high]``).
    """
    if not is_integer(value) or value < low or (high is not None and value > high):
        span = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise FortifyError(f"{name} must be an integer {span}{note}, got {value!r}")
    return value


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
    finite: bool = False,
) -> float:
    """``value`` as a float if it is a number inside the given range (``open_*``: bound excluded).

    ``finite`` refuses NaN and infinities (a range already does). The message names the range:
    ``{name} must be a number > 0``, ``... in [1, 4]``, ``... a finite number > 0``.
    """
    kind = "a finite number" if finite else "a number"
    if not is_number(value) or (finite and not math.isfinite(value)):
        raise FortifyError(f"{name} must be {kind}{_span(low, high, open_low, open_high)}, got {value!r}")
    inside = (
        (low is None or (value > low if open_low else value >= low))
        and (high is None or (value < high if open_high else value <= high))
        and not math.isnan(value)
    )
    if not inside:
        raise FortifyError(f"{name} must be {kind}{_span(low, high, open_low, open_high)}, got {value!r}")
    return float(value)


def _span(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if low is not None:
        return f" {'>' if open_low else '>='} {low:g}"
    if high is not None:
        return f" {'<' if open_high else '<='} {high:g}"
    return ""


def positive_number(name: str, value: float) -> float:
    """``value`` as a float if it is a number > 0 (infinity included)."""
    return number(name, value, low=0, open_low=True)


def positive_int(name: str, value: int) -> int:
    """``value`` if it is an integer >= 1."""
    return integer(name, value, low=1)


def non_negative_int(name: str, value: int) -> int:
    """``value`` if it is an integer >= 0."""
    return integer(name, value, low=0)


def positive_float(name: str, value: float, *, allow_zero: bool = False) -> float:
    """``value`` as a float if it is finite and > 0 (or >= 0 with ``allow_zero``)."""
    if not is_number(value) or not math.isfinite(value):
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


def from_numpy(x: Any, y: Any) -> tuple[Any, Any]:
    """NumPy inputs as tensors: float ``x`` becomes float32 (torch's default, the weights' usual
    dtype), integer ``y`` int64. Tensors pass through unchanged; integer pixels and fractional labels
    are refused naming what to do."""
    import numpy as np
    import torch

    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise FortifyError(
                f"x is a NumPy {x.dtype} array: give floats in the model's bounds (e.g. pixels / 255)"
            )
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if isinstance(y, np.ndarray):
        if not np.issubdtype(y.dtype, np.integer):
            raise FortifyError(f"y is a NumPy {y.dtype} array: give integer class indices")
        y = torch.from_numpy(y.astype(np.int64))
    return x, y
