"""Parsing files fortify did not write itself: every file it reads is untrusted.

``load_json`` and ``load_yaml`` parse a document under limits (size, nesting depth, integer size,
finite numbers only, no duplicate keys, UTF-8 text) and raise a one-line ``FortifyError`` naming
``what`` the document is; nothing a crafted file holds reaches a deeper layer as a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from fortify.types import FortifyError

MAX_DEPTH = 64
"""Deepest nesting of lists and mappings accepted in a document."""
MAX_INT = 2**63
"""Largest magnitude of an integer in a document (a 5,000-digit integer is not a count)."""
_MAX_INT_DIGITS = 20


def as_text(data: str | bytes, what: str, *, max_bytes: int) -> str:
    """``data`` as text: at most ``max_bytes`` bytes of UTF-8."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise FortifyError(f"{what}: too large ({size} bytes; at most {max_bytes} are read)")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FortifyError(f"{what}: not UTF-8 text (byte {exc.start})") from exc


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"holds {name}, which is not a finite number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Refused(f"holds an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"repeats the key {key!r}")
        out[key] = value
    return out


class _Refused(Exception):
    """Raised inside the parser's hooks; turned into a ``FortifyError`` naming the document."""


def load_json(data: str | bytes, what: str, *, max_bytes: int) -> Any:
    """Parse untrusted JSON: size, depth and integer limits, finite numbers only, no repeated keys."""
    text = as_text(data, what, max_bytes=max_bytes)
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_bounded_int,
            object_pairs_hook=_no_duplicates,
        )
    except _Refused as exc:
        raise FortifyError(f"{what}: {exc}") from exc
    except RecursionError as exc:
        raise FortifyError(f"{what}: nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise FortifyError(
            f"{what}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    check_tree(value, what)
    return value


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses repeated keys (PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key that is not a plain value", key_node.start_mark
            ) from None
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is repeated", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def load_yaml(data: str | bytes, what: str, *, max_bytes: int) -> Any:
    """Parse untrusted YAML (safe tags only): size and depth limits, no repeated keys, UTF-8."""
    text = as_text(data, what, max_bytes=max_bytes)
    try:
        value = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None)
        reason = f": {problem}" if problem else ""
        raise FortifyError(f"{what} is not valid YAML{line}{reason}") from exc
    except RecursionError as exc:
        raise FortifyError(f"{what}: nested too deeply") from exc
    except (ValueError, OverflowError) as exc:  # e.g. an integer of thousands of digits
        raise FortifyError(
            f"{what} holds a value that cannot be read: {str(exc).splitlines()[0][:120]}"
        ) from exc
    check_tree(value, what)
    return value


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value.keys()
        yield from value.values()
    elif isinstance(value, (list, tuple)):
        yield from value


def check_tree(value: Any, what: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than ``max_depth``, integers beyond ``MAX_INT`` and non-finite floats."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise FortifyError(f"{what}: nested more than {max_depth} levels deep")
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and abs(item) >= MAX_INT:
            raise FortifyError(f"{what}: holds an integer beyond 2**63")
        if isinstance(item, float) and not math.isfinite(item):
            raise FortifyError(f"{what}: holds {item!r}, which is not a finite number")
        stack.extend((child, depth + 1) for child in _children(item))


def guarded(what: str, build: Callable[[], Any]) -> Any:
    """``build()`` with a recursion or memory failure while validating a document made one line."""
    try:
        return build()
    except RecursionError as exc:
        raise FortifyError(f"{what}: nested too deeply") from exc
    except MemoryError as exc:
        raise FortifyError(f"{what}: asks for more memory than this machine has") from exc
