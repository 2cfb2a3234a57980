"""Read-through caches of client records and API keys, so the token path needs no
database round trip.

A change made through this instance is seen at once; one made through another
instance is seen within ``ttl`` seconds (the documented revocation delay). Under load an
entry is refreshed in the background once it is half as old as ``ttl``, and concurrent
misses share one query, so requests do not queue behind the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from tokensmith.core.clock import Clock
from tokensmith.core.models import Client, ClientSecret
from tokensmith.storage.protocols import ClientStore

__all__ = ["CachingClientStore", "ReadThrough"]

V = TypeVar("V")


class ReadThrough(Generic[V]):
    """Caches what ``load`` returns for a key, found or not, for ``ttl`` seconds."""

    def __init__(
        self,
        load: Callable[[str], Awaitable[V | None]],
        clock: Clock,
        ttl: float,
        max_entries: int = 100_000,
    ) -> None:
        self._fetch = load
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        #: key -> (time the record was read, record or None)
        self._entries: dict[str, tuple[float, V | None]] = {}
        self._inflight: dict[str, asyncio.Task[V | None]] = {}
        self._background: set[asyncio.Task[V | None]] = set()
        self._generation = 0

    def invalidate(self, key: str | None = None) -> None:
        """Forget ``key``, or every entry."""
        self._generation += 1  # a read that began before this must not be stored
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def cached(self, key: str) -> V | None:
        """What is held for ``key`` if it is fresh, without reading it."""
        hit = self._entries.get(key)
        if hit is not None and self._clock.now() - hit[0] < self._ttl:
            return hit[1]
        return None

    async def get(self, key: str) -> V | None:
        hit = self._entries.get(key)
        if hit is not None:
            age = self._clock.now() - hit[0]
            if age < self._ttl:
                if age >= self._ttl / 2 and key not in self._inflight:
                    self._refresh_in_background(key)
                return hit[1]
        return await asyncio.shield(self._load(key))

    def _load(self, key: str) -> asyncio.Task[V | None]:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._read(key))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task

    async def _read(self, key: str) -> V | None:
        started, generation = self._clock.now(), self._generation
        value = await self._fetch(key)
        if generation == self._generation:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (started, value)
        return value

    async def aclose(self) -> None:
        """Wait for the reads still in flight, background refreshes included (at shutdown,
        before the store closes)."""
        await asyncio.gather(*self._inflight.values(), *self._background, return_exceptions=True)

    def _refresh_in_background(self, key: str) -> None:
        task = self._load(key)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[V | None]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # a failed refresh is retried by the next request


class CachingClientStore:
    """Wraps a :class:`ClientStore`; caches hits and misses for ``ttl`` seconds."""

    def __init__(self, inner: ClientStore, clock: Clock, ttl: float, max_entries: int = 100_000):
        self._inner = inner
        self._cache = ReadThrough(inner.get_client, clock, ttl, max_entries)

    def invalidate(self, client_id: str | None = None) -> None:
        self._cache.invalidate(client_id)

    async def get_client(self, client_id: str) -> Client | None:
        return await self._cache.get(client_id)

    def cached(self, client_id: str) -> Client | None:
        """The client if this cache holds it, fresh; never reads the store."""
        return self._cache.cached(client_id)

    async def aclose(self) -> None:
        """Wait for the reads still in flight (at shutdown, before the store closes)."""
        await self._cache.aclose()

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
