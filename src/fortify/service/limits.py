"""Per-key rate limits (GCRA token bucket), in process or shared across replicas through Redis.

GCRA keeps one number per key, its theoretical arrival time (TAT): a request at ``now`` is allowed
when ``max(TAT, now) + interval - now <= burst * interval``, which admits ``burst`` requests at once
and ``1 / interval`` per second after that. The Redis version runs the same arithmetic in one Lua
script on the server's clock, so replicas share one bucket per key and their clocks do not matter.
Keys can also be throttled (a fraction of their rate and burst) or blocked until a time, by an alert.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fortify.types import FortifyError


@dataclass(frozen=True)
class Decision:
    """``allowed``; if not, ``retry_after_s`` until one more request would be, and whether it is a block."""

    allowed: bool
    retry_after_s: float = 0.0
    blocked: bool = False


class Limiter(Protocol):
    def hit(self, key: str, per_second: float, burst: int) -> Decision: ...

    def block(self, key: str, seconds: float, *, factor: float | None = None) -> None: ...

    def restriction(self, key: str) -> tuple[str, float] | None: ...

    def close(self) -> None: ...


class MemoryLimiter:
    """GCRA in this process, thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._restricted: dict[str, tuple[str, float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, per_second: float, burst: int) -> Decision:
        now = self._clock()
        with self._lock:
            kind_factor = self._active(key, now)
            if kind_factor is not None and kind_factor[0] == "block":
                return Decision(False, kind_factor[1] - now, blocked=True)
            if kind_factor is not None:  # a throttled key keeps that share of its rate and burst
                per_second *= kind_factor[2]
                burst = max(1, int(burst * kind_factor[2]))
            interval = 1.0 / per_second
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + interval
            excess = new_tat - now - burst * interval
            if excess > 0:
                return Decision(False, excess)
            self._tat[key] = new_tat
            return Decision(True)

    def block(self, key: str, seconds: float, *, factor: float | None = None) -> None:
        """Block ``key`` for ``seconds`` (or, with ``factor``, keep only that share of its rate)."""
        with self._lock:
            kind = "block" if factor is None else "throttle"
            self._restricted[key] = (kind, self._clock() + seconds, factor or 0.0)

    def restriction(self, key: str) -> tuple[str, float] | None:
        """``("block" | "throttle", seconds left)`` while ``key`` is restricted, else ``None``."""
        now = self._clock()
        with self._lock:
            active = self._active(key, now)
        return None if active is None else (active[0], active[1] - now)

    def _active(self, key: str, now: float) -> tuple[str, float, float] | None:
        entry = self._restricted.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._restricted[key]
            return None
        return entry

    def close(self) -> None:
        """Nothing to release."""


_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local blocked = redis.call('GET', KEYS[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
if blocked then
  local kind, untl, factor = string.match(blocked, '^(%a+):([%d%.]+):([%d%.]+)$')
  untl = tonumber(untl)
  if untl > now then
    if kind == 'block' then return {0, tostring(untl - now), 1} end
    rate = rate * tonumber(factor)
    burst = math.max(1, math.floor(burst * tonumber(factor)))
  end
end
local interval = 1 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local excess = new_tat - now - burst * interval
if excess > 0 then return {0, tostring(excess), 0} end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0', 0}
"""

_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. string.format('%.6f', untl) .. ':' .. ARGV[3],
           'PX', math.ceil(tonumber(ARGV[2]) * 1000))
return 1
"""


class RedisLimiter:
    """GCRA in Redis: every replica pointing at the same Redis (and ``prefix``) shares each key's bucket."""

    def __init__(self, url: str, *, prefix: str = "fortify:rl") -> None:
        try:
            import redis
        except ImportError as exc:
            raise FortifyError("--redis needs the redis package: pip install 'fortify[serve]'") from exc
        try:
            self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
            self._redis.ping()
        except (redis.RedisError, ValueError) as exc:
            raise FortifyError(f"cannot reach Redis at {_redact(url)}: {exc}") from None
        self._prefix = prefix
        self._gcra = self._redis.register_script(_GCRA)
        self._block = self._redis.register_script(_BLOCK)

    def hit(self, key: str, per_second: float, burst: int) -> Decision:
        allowed, wait, blocked = self._gcra(
            keys=[f"{self._prefix}:tat:{key}", f"{self._prefix}:restrict:{key}"], args=[per_second, burst]
        )
        return Decision(bool(int(allowed)), float(wait), bool(int(blocked)))

    def block(self, key: str, seconds: float, *, factor: float | None = None) -> None:
        """Block (or throttle to ``factor`` of its rate) ``key`` for ``seconds`` on every replica."""
        kind = "block" if factor is None else "throttle"
        self._block(keys=[f"{self._prefix}:restrict:{key}"], args=[kind, seconds, factor or 0.0])

    def restriction(self, key: str) -> tuple[str, float] | None:
        """``("block" | "throttle", seconds left)`` while ``key`` is restricted, else ``None``."""
        raw = self._redis.get(f"{self._prefix}:restrict:{key}")
        if raw is None:
            return None
        kind = raw.decode().split(":", 1)[0]
        left = self._redis.pttl(f"{self._prefix}:restrict:{key}")
        return (kind, max(0, left) / 1000.0)

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()


def make_limiter(redis_url: str | None) -> Limiter:
    """A ``RedisLimiter`` when a URL is given, else a ``MemoryLimiter``."""
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()


def _redact(url: str) -> str:
    """``url`` without its password, for error messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
