"""Replay caches (:class:`~tokensmith.core.ports.ReplayCache`) in memory and in Redis; the
database one is :class:`tokensmith.storage.sql.replay.SqlReplayCache`.

:class:`RedisReplayCache` is one ``SET key 1 NX EX ttl`` per first use: Redis runs it whole,
so of every instance sharing the Redis exactly one sets a key. Unlike the failure counters,
it has no local fallback: a replay cache that forgets across instances would let a proof
through twice, so a Redis that cannot be reached makes the request fail with
:class:`~tokensmith.core.errors.TemporarilyUnavailable` (503, ``Retry-After``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.errors import TemporarilyUnavailable

__all__ = ["MemoryReplayCache", "RedisReplayCache"]

log = logging.getLogger("tokensmith.replay")


class MemoryReplayCache:
    """Keys of this process only (one instance, one worker: tests and the in-memory store).
    Keys whose time is over are dropped whenever the dict has doubled since the last
    sweep."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._keys: dict[str, float] = {}
        self._sweep_at = 1024

    async def first_use(self, key: str, expires_at: float) -> bool:
        now = self._clock.now()
        known = self._keys.get(key)
        if known is not None and known > now:
            return False
        self._keys[key] = expires_at
        if len(self._keys) >= self._sweep_at:
            self._keys = {k: e for k, e in self._keys.items() if e > now}
            self._sweep_at = max(1024, 2 * len(self._keys))
        return True

    async def aclose(self) -> None:
        return None


class RedisReplayCache:
    """Keys in Redis under ``prefix``, each expiring when its time is over."""

    def __init__(self, redis: Any, clock: Clock, prefix: str = "tokensmith:replay:") -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._warned_at = float("-inf")
        # imported here: a server without Redis does not load the client
        from redis.exceptions import RedisError

        self._errors: tuple[type[Exception], ...] = (RedisError, OSError)

    async def first_use(self, key: str, expires_at: float) -> bool:
        ttl = max(1, math.ceil(expires_at - self._clock.now()))
        try:
            return bool(await self._redis.set(self._prefix + key, b"1", nx=True, ex=ttl))
        except self._errors as exc:
            self._warn(exc)
            raise TemporarilyUnavailable("the replay cache is unavailable") from exc

    async def aclose(self) -> None:
        """Nothing: the Redis client is the app's to close."""
        return None

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("Redis unavailable for the replay cache (%s)", type(exc).__name__)
