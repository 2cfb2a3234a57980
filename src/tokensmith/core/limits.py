"""Throttling of failed authentications (RFC 6749 §10.10 asks servers to resist guessing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["FailureLimiter", "Limit", "NoLimiter"]


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``failures`` within ``window`` seconds for one key."""

    failures: int
    window: int


class FailureLimiter(Protocol):
    """Counts failures per key in a fixed window."""

    async def retry_after(self, key: str, limit: Limit) -> int | None:
        """Seconds until ``key`` may try again, or ``None`` if it is under its limit."""
        ...

    async def record_failure(self, key: str, limit: Limit) -> None: ...


class NoLimiter:
    """A limiter that never limits."""

    async def retry_after(self, key: str, limit: Limit) -> int | None:
        return None

    async def record_failure(self, key: str, limit: Limit) -> None:
        return None
