"""Failure counters: in memory for one process, in Redis across instances."""

from __future__ import annotations

from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.limits import Limit

__all__ = ["MemoryLimiter", "RedisLimiter"]


class MemoryLimiter:
    """Fixed windows in a dict; old windows are dropped as the dict grows."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max = max_keys
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window start, failures)

    def _window(self, limit: Limit) -> int:
        now = int(self._clock.now())
        return now - now % limit.window

    async def retry_after(self, key: str, limit: Limit) -> int | None:
        start = self._window(limit)
        entry = self._counts.get(key)
        if entry is None or entry[0] != start or entry[1] < limit.failures:
            return None
        return max(1, start + limit.window - int(self._clock.now()))

    async def record_failure(self, key: str, limit: Limit) -> None:
        start = self._window(limit)
        entry = self._counts.get(key)
        count = entry[1] + 1 if entry is not None and entry[0] == start else 1
        if len(self._counts) >= self._max:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == start}
        self._counts[key] = (start, count)


class RedisLimiter:
    """``INCR`` + ``EXPIRE`` per key and window, so every instance shares the counts."""

    def __init__(self, redis: Any, prefix: str = "tokensmith:fail:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def retry_after(self, key: str, limit: Limit) -> int | None:
        rkey = self._prefix + key
        count = await self._redis.get(rkey)
        if count is None or int(count) < limit.failures:
            return None
        ttl = int(await self._redis.ttl(rkey))
        return max(1, ttl)

    async def record_failure(self, key: str, limit: Limit) -> None:
        rkey = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(rkey)
            pipe.expire(rkey, limit.window, nx=True)
            await pipe.execute()
