"""Failure counters: in memory for one process, in Redis across instances.

Each operation of :class:`~tokensmith.core.limits.FailureLimiter` reads and counts all of
an attempt's keys in one step: :class:`MemoryLimiter` does it without an ``await`` (so no
other request of the event loop runs in between), :class:`RedisLimiter` in one Lua script
(Redis runs a script whole, before any other command of any instance).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from tokensmith.core.clock import Clock
from tokensmith.core.limits import FailureLimiter, Keys

log = logging.getLogger("tokensmith.ratelimit")

__all__ = ["MemoryLimiter", "RedisLimiter"]


class MemoryLimiter:
    """A window per key that opens at its first counted attempt, as :class:`RedisLimiter`'s
    do; closed windows are dropped as the dict grows. The counts are this process's only."""

    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max = max_keys
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (window end, count)

    def _wait(self, keys: Keys, now: float, over: int) -> int | None:
        """The longest wait of the keys whose count reached their limit plus ``over``."""
        wait: int | None = None
        for key, limit in keys:
            entry = self._counts.get(key)
            if entry is not None and entry[0] > now and entry[1] >= limit.failures + over:
                wait = max(wait or 1, math.ceil(entry[0] - now))
        return wait

    def _count(self, keys: Keys, now: float) -> None:
        for key, limit in keys:
            entry = self._counts.get(key)
            if entry is not None and entry[0] > now:
                self._counts[key] = (entry[0], entry[1] + 1)
                continue
            if len(self._counts) >= self._max:
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
                if len(self._counts) >= self._max:  # all live: drop the oldest half
                    self._counts = dict(list(self._counts.items())[self._max // 2 :])
            self._counts[key] = (now + limit.window, 1)

    async def check(self, keys: Keys) -> int | None:
        return self._wait(keys, self._clock.now(), 0)

    async def fail(self, keys: Keys) -> int | None:
        now = self._clock.now()
        self._count(keys, now)
        return self._wait(keys, now, 1)

    async def reserve(self, keys: Keys) -> int | None:
        now = self._clock.now()
        wait = self._wait(keys, now, 0)
        if wait is None:
            self._count(keys, now)
        return wait

    async def release(self, keys: Keys) -> None:
        now = self._clock.now()
        for key, _ in keys:
            entry = self._counts.get(key)
            if entry is not None and entry[0] > now and entry[1] > 0:
                self._counts[key] = (entry[0], entry[1] - 1)


# KEYS are the counters, ARGV their limits and windows: limit 1, window 1, limit 2, ...
# Each script answers the seconds to wait, or -1 for none.
_WAIT = """
local function wait_of(over)
  local wait = -1
  for i, key in ipairs(KEYS) do
    local n = tonumber(redis.call('GET', key) or '0')
    if n >= tonumber(ARGV[2 * i - 1]) + over then
      local ttl = redis.call('TTL', key)
      if ttl == -1 then ttl = tonumber(ARGV[2 * i]) end
      if ttl > wait then wait = math.max(ttl, 1) end
    end
  end
  return wait
end
local function count()
  for i, key in ipairs(KEYS) do
    redis.call('INCR', key)
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[2 * i]) end
  end
end
"""

_SCRIPTS = {
    "check": _WAIT + "return wait_of(0)",
    "fail": _WAIT + "count()\nreturn wait_of(1)",
    "reserve": _WAIT + "local wait = wait_of(0)\nif wait < 0 then count() end\nreturn wait",
    "release": """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return -1
""",
}


class RedisLimiter:
    """Counts in Redis, so that every instance sharing it shares the counts: one Lua script
    per operation (one round trip, atomic over the attempt's keys, which must therefore be
    on one Redis server, not spread over a cluster).

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
        self._scripts = {name: redis.register_script(lua) for name, lua in _SCRIPTS.items()}
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

    async def _run(self, name: str, keys: Keys) -> int | None:
        args = [n for _, limit in keys for n in (limit.failures, limit.window)]
        wait = int(await self._scripts[name](keys=[self._prefix + k for k, _ in keys], args=args))
        return None if wait < 0 else wait

    async def check(self, keys: Keys) -> int | None:
        try:
            return await self._run("check", keys)
        except self._errors as exc:
            return await self._degraded(exc).check(keys)

    async def fail(self, keys: Keys) -> int | None:
        try:
            return await self._run("fail", keys)
        except self._errors as exc:
            return await self._degraded(exc).fail(keys)

    async def reserve(self, keys: Keys) -> int | None:
        try:
            return await self._run("reserve", keys)
        except self._errors as exc:
            return await self._degraded(exc).reserve(keys)

    async def release(self, keys: Keys) -> None:
        try:
            await self._run("release", keys)
        except self._errors as exc:
            await self._degraded(exc).release(keys)
