"""A read-through cache of client records, so the token path needs no database round trip.

A change made through this instance is seen at once; one made through another
instance is seen within ``ttl`` seconds (the documented revocation delay). Under load an
entry is refreshed in the background once it is half as old as ``ttl``, and concurrent
misses share one query, so requests do not queue behind the database.
"""

from __future__ import annotations

import asyncio

from tokensmith.core.clock import Clock
from tokensmith.core.models import Client, ClientSecret
from tokensmith.storage.protocols import ClientStore

__all__ = ["CachingClientStore"]


class CachingClientStore:
    """Wraps a :class:`ClientStore`; caches hits and misses for ``ttl`` seconds."""

    def __init__(self, inner: ClientStore, clock: Clock, ttl: float, max_entries: int = 100_000):
        self._inner = inner
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        #: client_id -> (time the record was read, record or None)
        self._entries: dict[str, tuple[float, Client | None]] = {}
        self._inflight: dict[str, asyncio.Task[Client | None]] = {}
        self._background: set[asyncio.Task[Client | None]] = set()
        self._generation = 0

    def invalidate(self, client_id: str | None = None) -> None:
        self._generation += 1  # a read that began before this must not be stored
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)

    async def get_client(self, client_id: str) -> Client | None:
        hit = self._entries.get(client_id)
        if hit is not None:
            age = self._clock.now() - hit[0]
            if age < self._ttl:
                if age >= self._ttl / 2 and client_id not in self._inflight:
                    self._refresh_in_background(client_id)
                return hit[1]
        return await asyncio.shield(self._load(client_id))

    def _load(self, client_id: str) -> asyncio.Task[Client | None]:
        task = self._inflight.get(client_id)
        if task is None:
            task = asyncio.ensure_future(self._read(client_id))
            self._inflight[client_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(client_id, None))
        return task

    async def _read(self, client_id: str) -> Client | None:
        started, generation = self._clock.now(), self._generation
        client = await self._inner.get_client(client_id)
        if generation == self._generation:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[client_id] = (started, client)
        return client

    async def aclose(self) -> None:
        """Wait for the reads still in flight, background refreshes included (at shutdown,
        before the store closes)."""
        await asyncio.gather(*self._inflight.values(), *self._background, return_exceptions=True)

    def _refresh_in_background(self, client_id: str) -> None:
        task = self._load(client_id)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Client | None]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # a failed refresh is retried by the next request

    async def add_client(self, client: Client) -> None:
        await self._inner.add_client(client)
        self.invalidate(client.client_id)

    async def list_clients(self, merchant_id: str | None = None) -> list[Client]:
        return await self._inner.list_clients(merchant_id)

    async def update_client(self, client: Client) -> None:
        await self._inner.update_client(client)
        self.invalidate(client.client_id)

    async def revoke_client(self, client_id: str, at: float) -> bool:
        done = await self._inner.revoke_client(client_id, at)
        self.invalidate(client_id)
        return done

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        done = await self._inner.rotate_secret(client_id, new, old_expires_at)
        self.invalidate(client_id)
        return done
