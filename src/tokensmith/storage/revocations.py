"""Which JWT access tokens are revoked, known in memory, so introspecting a JWT reads no row.

A revocation made through this instance's store is seen at once: the store counts its
revocations (``revocation_generation``) and the view catches up before it answers. One
made through another instance is seen within ``interval`` seconds: the view reads the rows
revoked since its last read (with an overlap for clocks that differ between instances) in
the background. Entries leave the view once their token has expired.
"""

from __future__ import annotations

import asyncio

from tokensmith.core.clock import Clock
from tokensmith.storage.protocols import TokenStore

__all__ = ["RevocationView"]

#: Seconds each read looks back before the previous one, for clock skew between instances.
CLOCK_OVERLAP = 10.0


class RevocationView:
    """``jti -> revoked_at`` of the revoked, unexpired access tokens."""

    def __init__(self, store: TokenStore, clock: Clock, interval: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._revoked: dict[str, tuple[float, float]] = {}  # jti -> (revoked_at, expires_at)
        self._read_at: float | None = None
        self._generation = -1
        self._sync: asyncio.Task[None] | None = None

    async def revoked_at(self, jti: str) -> float | None:
        """When ``jti`` was revoked, or ``None``."""
        if self._generation != self._store.revocation_generation or self._read_at is None:
            await self._catch_up()
        elif self._clock.now() - self._read_at >= self._interval and self._sync is None:
            self._sync = asyncio.ensure_future(self._catch_up())
            self._sync.add_done_callback(self._synced)
        hit = self._revoked.get(jti)
        return None if hit is None else hit[0]

    async def aclose(self) -> None:
        """Wait for a background read still in flight (at shutdown, before the store closes)."""
        if self._sync is not None:
            await asyncio.gather(self._sync, return_exceptions=True)

    def _synced(self, task: asyncio.Task[None]) -> None:
        self._sync = None
        if not task.cancelled():
            task.exception()  # a failed read is retried by the next request

    async def _catch_up(self) -> None:
        generation = self._store.revocation_generation
        now = self._clock.now()
        since = float("-inf") if self._read_at is None else self._read_at - CLOCK_OVERLAP
        rows = await self._store.revoked_since(since, now)
        for jti, revoked_at, expires_at in rows:
            self._revoked[jti] = (revoked_at, expires_at)
        self._revoked = {j: v for j, v in self._revoked.items() if v[1] > now}
        self._read_at, self._generation = now, generation
