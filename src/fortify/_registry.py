"""One small registry for every set of named things: norms, attacks, suites, training methods, models.

>>> SUITES: Registry[SuiteFactory] = Registry("suite")
>>> @SUITES.register("quick")
... def quick(...): ...
>>> SUITES.get("quick")      # an unknown name raises FortifyError listing the known ones
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fortify.types import FortifyError

T = TypeVar("T")


class Registry(Generic[T]):
    """Items of one ``kind`` by name, in the order they were added."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Make ``item`` known as ``name`` (replacing an earlier one of that name); returns it."""
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of ``add``."""

        def add(item: T) -> T:
            return self.add(name, item)

        return add

    def get(self, name: str, *, shown: str | None = None) -> T:
        """The item named ``name``; ``FortifyError`` naming ``shown`` (default ``name``) and listing the
        known names otherwise."""
        if name not in self._items:
            asked = name if shown is None else shown
            raise FortifyError(f"unknown {self.kind} {asked!r}; choose one of {self.names()}")
        return self._items[name]

    def names(self) -> list[str]:
        """The known names, sorted."""
        return sorted(self._items)

    def values(self) -> list[T]:
        """The items, in the order they were added."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
