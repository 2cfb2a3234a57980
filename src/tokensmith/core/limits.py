"""Throttling of failed authentications (RFC 6749 §10.10 asks servers to resist guessing).

A guess is "tested" when its answer tells the guesser whether it was right. Every
operation here is atomic over all the keys it is given, in one process
(:class:`~tokensmith.storage.ratelimit.MemoryLimiter`: no ``await`` inside) and across
instances (:class:`~tokensmith.storage.ratelimit.RedisLimiter`: one Lua script), so a
burst of parallel attempts tests no more guesses than the same attempts one by one.
Two ways to use it:

* :meth:`FailureLimiter.reserve` before the check, :meth:`FailureLimiter.release` when it
  succeeded: an attempt counts while it is in flight, so at most ``failures`` checks run in
  a window. For costly checks (argon2 passwords), where a burst must not buy work either.
* :meth:`FailureLimiter.check` before and after a cheap check, :meth:`FailureLimiter.fail`
  when it failed: the check runs, but a failure answers 429 instead of 401 once its count
  is over the limit, and a success once as many failures were counted meanwhile. Parallel
  successes never wait on each other (client secrets on the token path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["FailureLimiter", "Keys", "Limit", "NoLimiter"]


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``failures`` within ``window`` seconds for one key; the window opens at the
    key's first counted attempt."""

    failures: int
    window: int


#: The counters an attempt is counted under, each with its limit.
Keys = Sequence[tuple[str, Limit]]


class FailureLimiter(Protocol):
    """Counts attempts per key in a fixed window."""

    async def check(self, keys: Keys) -> int | None:
        """Seconds until every key is under its limit again, or ``None`` if all are now."""
        ...

    async def fail(self, keys: Keys) -> int | None:
        """Count a failure on every key; the seconds to wait if a count is now over its limit
        (the failure must then be answered as refused), else ``None``."""
        ...

    async def reserve(self, keys: Keys) -> int | None:
        """Count an attempt on every key, unless one is at its limit: then count none and
        return the seconds to wait."""
        ...

    async def release(self, keys: Keys) -> None:
        """Take back an attempt :meth:`reserve` counted, because it did not fail."""
        ...


class NoLimiter:
    """A limiter that never limits."""

    async def check(self, keys: Keys) -> int | None:
        return None

    async def fail(self, keys: Keys) -> int | None:
        return None

    async def reserve(self, keys: Keys) -> int | None:
        return None

    async def release(self, keys: Keys) -> None:
        return None
