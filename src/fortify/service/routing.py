"""Which guard version serves a request: the named one, the fallback under an attack alert, or the canary.

The canary takes exactly ``share`` of the unversioned traffic that is not on the fallback, spread
evenly (request ``i`` goes to the canary when ``floor((i + 1) * share) > floor(i * share)``), so 10%
means every tenth request, not 10% on average. The fallback applies to one key or to everyone until
the alert's hold time runs out. State is per process (see the README on replicas).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fortify.service.errors import NotFound


class Router:
    """Picks a version name; ``activate_fallback`` switches a key (or ``None``: all traffic) for a while."""

    def __init__(
        self,
        primary: str,
        *,
        canary: str | None = None,
        share: float = 0.0,
        fallback: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary, self.canary, self.share, self.fallback = primary, canary, share, fallback
        self.versions = [v for v in (primary, canary, fallback) if v is not None]
        self._clock = clock
        self._count = 0
        self._fallback_until: dict[str | None, float] = {}
        self._lock = threading.Lock()

    def pick(self, key: str, requested: str | None) -> str:
        """The version for this request by ``key``; ``requested`` (from the URL) wins when it exists."""
        if requested is not None:
            if requested not in self.versions:
                raise NotFound(f"unknown model version {requested!r}; served: {', '.join(self.versions)}")
            return requested
        if self.fallback is not None and self.on_fallback(key):
            return self.fallback
        if self.canary is None or self.share <= 0:
            return self.primary
        with self._lock:
            i, self._count = self._count, self._count + 1
        return self.canary if math.floor((i + 1) * self.share) > math.floor(i * self.share) else self.primary

    def on_fallback(self, key: str) -> bool:
        """Whether ``key`` (or all traffic) is switched to the fallback right now."""
        now = self._clock()
        with self._lock:
            for who in (None, key):
                until = self._fallback_until.get(who)
                if until is not None and until <= now:
                    del self._fallback_until[who]
                elif until is not None:
                    return True
        return False

    def activate_fallback(self, key: str | None, seconds: float) -> bool:
        """Send ``key``'s (``None``: all) traffic to the fallback for ``seconds``; ``False`` if none."""
        if self.fallback is None:
            return False
        with self._lock:
            self._fallback_until[key] = max(self._fallback_until.get(key, 0.0), self._clock() + seconds)
        return True

    def fallback_holds(self) -> dict[str, float]:
        """Seconds left per switched key (``"*"`` for all traffic)."""
        now = self._clock()
        with self._lock:
            return {("*" if k is None else k): t - now for k, t in self._fallback_until.items() if t > now}
