"""Failure counters: in memory for one process, in Redis across instances."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.limits import FailureLimiter, Limit

log = logging.getLogger("tokensmith.ratelimit")

__all__ = ["MemoryLimiter", "RedisLimiter"]


class MemoryLimiter:
    """A window per key that opens at its first failure, as :class:`RedisLimiter`'s do;
    closed windows are dropped as the dict grows."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max = max_keys
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (window end, failures)

    async def retry_after(self, key: str, limit: Limit) -> int | None:
        now = self._clock.now()
        entry = self._counts.get(key)
        if entry is None or entry[0] <= now or entry[1] < limit.failures:
            return None
        return max(1, math.ceil(entry[0] - now))

    async def record_failure(self, key: str, limit: Limit) -> None:
        now = self._clock.now()
        entry = self._counts.get(key)
        if entry is not None and entry[0] > now:
            self._counts[key] = (entry[0], entry[1] + 1)
            return
        if len(self._counts) >= self._max:
            self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
            if len(self._counts) >= self._max:  # all live: drop the oldest half
                self._counts = dict(list(self._counts.items())[self._max // 2 :])
        self._counts[key] = (now + limit.window, 1)


class RedisLimiter:
    """``INCR`` + ``EXPIRE`` per key and window, so every instance shares the counts.

    When Redis cannot be reached, counting goes on in ``fallback`` (this process only) and a
    warning is logged at most once a minute: an outage of the counter store must not stop
    token issuance.
    """

    def __init__(
        self, redis: Any, prefix: str = "tokensmith:fail:", fallback: FailureLimiter | None = None
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._fallback = fallback
        self._warned_at = float("-inf")
        # imported here: a server without Redis does not load the client (6 MB a worker)
        from redis.exceptions import RedisError

        self._errors: tuple[type[Exception], ...] = (RedisError, OSError)

    def _degraded(self, exc: Exception) -> FailureLimiter:
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("Redis unavailable for failure counters (%s); counting locally", exc)
        if self._fallback is None:
            raise exc
        return self._fallback

    async def retry_after(self, key: str, limit: Limit) -> int | None:
        try:
            return await self._retry_after(key, limit)
        except self._errors as exc:
            return await self._degraded(exc).retry_after(key, limit)

    async def record_failure(self, key: str, limit: Limit) -> None:
        try:
            await self._record_failure(key, limit)
        except self._errors as exc:
            await self._degraded(exc).record_failure(key, limit)

    async def _retry_after(self, key: str, limit: Limit) -> int | None:
        rkey = self._prefix + key
        count = await self._redis.get(rkey)
        if count is None or int(count) < limit.failures:
            return None
        ttl = int(await self._redis.ttl(rkey))
        if ttl == -2:  # expired between the two reads
            return None
        return max(1, ttl)

    async def _record_failure(self, key: str, limit: Limit) -> None:
        rkey = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(rkey)
            pipe.expire(rkey, limit.window, nx=True)
            await pipe.execute()
