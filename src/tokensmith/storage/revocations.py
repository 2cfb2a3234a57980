"""Which JWT access tokens are revoked, known in memory, so introspecting a JWT reads no row.

The bound: no answer rests on a read that began ``interval`` seconds or more before the
request. A JWT revoked anywhere (another worker, another instance, the CLI) is therefore
inactive within ``interval`` seconds at every worker of every instance, busy or idle: a
request that finds the view that old waits for a read (one read, shared by every request
waiting for it). Under load the view is refreshed in the background once it is half as
old as ``interval``, so requests rarely wait and never read a row of their own. A
revocation made through this worker's store is seen at once: the store counts its
revocations (``revocation_generation``) and the view reads again before it answers.

Each read asks for the rows revoked since the previous one began, less
:data:`CLOCK_OVERLAP` seconds, as ``revoked_at`` comes from the revoking instance's
clock. Entries leave the view once their token has expired.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tokensmith.core.clock import Clock
from tokensmith.core.ports import TokenStore

__all__ = ["CLOCK_OVERLAP", "RevocationView"]

#: Seconds each read looks back before the previous one, for clock skew between instances.
CLOCK_OVERLAP = 10.0


@dataclass(slots=True)
class _Read:
    """A read of the revocations: its place in the order reads began, when it began by
    the clock, and how many revocations this worker's store had made then."""

    seq: int
    started: float
    generation: int
    task: asyncio.Task[None] | None = None


class RevocationView:
    """``jti -> revoked_at`` of the revoked, unexpired access tokens."""

    def __init__(self, store: TokenStore, clock: Clock, interval: float = 1.0) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._revoked: dict[str, tuple[float, float]] = {}  # jti -> (revoked_at, expires_at)
        #: The newest read applied; its start is how old what the view knows is.
        self._last: _Read | None = None
        #: The newest read begun and still running, which requests may wait for.
        self._next: _Read | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._reads = 0

    async def revoked_at(self, jti: str) -> float | None:
        """When ``jti`` was revoked, or ``None``, from revocations read less than
        ``interval`` seconds before this call."""
        now = self._clock.now()
        last = self._last
        age = self._age(last, now)
        if age >= self._interval or self._behind(last):
            await self._fresh_read(now)
        elif age >= self._interval / 2 and self._next is None:
            self._begin(now)  # in the background: answered from memory meanwhile
        hit = self._revoked.get(jti)
        return None if hit is None else hit[0]

    async def aclose(self) -> None:
        """Wait for the reads still in flight (at shutdown, before the store closes)."""
        await asyncio.gather(*self._running, return_exceptions=True)

    @staticmethod
    def _age(read: _Read | None, now: float) -> float:
        """Seconds since ``read`` began; infinite if there is none or the clock went back
        past its start (then it proves nothing about the present)."""
        if read is None or now < read.started:
            return float("inf")
        return now - read.started

    def _behind(self, read: _Read | None) -> bool:
        """True if this worker's store revoked a token since ``read`` began."""
        return read is None or read.generation != self._store.revocation_generation

    async def _fresh_read(self, now: float) -> None:
        """Wait for a read that began less than ``interval`` before ``now`` and after the
        latest revocation through this store: the one in flight if it qualifies (requests
        arriving together share it), else a new one."""
        read = self._next
        if read is None or self._age(read, now) >= self._interval or self._behind(read):
            read = self._begin(now)
        assert read.task is not None
        await asyncio.shield(read.task)

    def _begin(self, now: float) -> _Read:
        self._reads += 1
        read = _Read(self._reads, now, self._store.revocation_generation)
        read.task = asyncio.ensure_future(self._catch_up(read))
        self._next = read
        self._running.add(read.task)
        read.task.add_done_callback(lambda task: self._finished(read, task))
        return read

    def _finished(self, read: _Read, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._next is read:
            self._next = None
        if not task.cancelled():
            task.exception()  # a failed read is retried by the next request

    async def _catch_up(self, read: _Read) -> None:
        rows = await self._store.revoked_since(self._since(read), read.started)
        for jti, revoked_at, expires_at in rows:
            self._revoked[jti] = (revoked_at, expires_at)
        now = self._clock.now()
        self._revoked = {j: v for j, v in self._revoked.items() if v[1] > now}
        if self._last is None or read.seq > self._last.seq:
            self._last = read

    def _since(self, read: _Read) -> float:
        """Where ``read`` starts looking: everything on the first read, and after the clock
        went back (times taken before then mean nothing on the new clock)."""
        last = self._last
        if last is None or read.started < last.started:
            return float("-inf")
        return last.started - CLOCK_OVERLAP
