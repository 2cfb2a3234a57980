"""Read-through caches of client records and API keys, so the token path needs no
database round trip.

The bound: no answer rests on a read that began ``ttl`` seconds or more before the
request, so a change made anywhere (another worker, another instance, the CLI) is seen
within ``ttl`` seconds at every worker of every instance, busy or idle; a change made
through this object (:meth:`ReadThrough.invalidate`) is seen at once. Under load an entry
is refreshed in the background once it is half as old as ``ttl``, and concurrent misses
share one query, so requests do not queue behind the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tokensmith.core.clock import Clock
from tokensmith.core.models import Client, ClientSecret, Resource
from tokensmith.core.ports import ClientStore, ResourceStore

__all__ = ["CachingClientStore", "CachingResourceStore", "ReadThrough"]

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    """A read of one key: its place in the order reads began, when it began by the clock,
    the invalidation count then, and its result once it has one."""

    seq: int
    started: float
    generation: int
    task: asyncio.Task[V | None] | None = None
    value: V | None = None


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
        #: key -> the newest read that finished
        self._entries: dict[str, _Entry[V]] = {}
        #: key -> the newest read begun and still running, which requests may wait for
        self._inflight: dict[str, _Entry[V]] = {}
        self._running: set[asyncio.Task[V | None]] = set()
        self._generation = 0
        self._reads = 0

    def invalidate(self, key: str | None = None) -> None:
        """Forget ``key``, or every entry."""
        self._generation += 1  # a read that began before this is neither stored nor joined
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def cached(self, key: str) -> V | None:
        """What is held for ``key`` if it is fresh, without reading it."""
        hit = self._entries.get(key)
        if hit is not None and 0.0 <= self._clock.now() - hit.started < self._ttl:
            return hit.value
        return None

    async def get(self, key: str) -> V | None:
        """The record of ``key`` from a read begun less than ``ttl`` seconds ago."""
        now = self._clock.now()
        hit = self._entries.get(key)
        if hit is not None:
            age = now - hit.started
            if 0.0 <= age < self._ttl:  # a read from before the clock went back proves nothing
                if age >= self._ttl / 2 and key not in self._inflight:
                    self._begin(key, now)  # in the background: answered from memory meanwhile
                return hit.value
        return await asyncio.shield(self._fresh_read(key, now))

    @staticmethod
    def _age(read: _Entry[V], now: float) -> float:
        """Seconds since ``read`` began; infinite if the clock went back past its start
        (then it proves nothing about the present)."""
        return float("inf") if now < read.started else now - read.started

    def _fresh_read(self, key: str, now: float) -> asyncio.Task[V | None]:
        """The read of ``key`` in flight if it began less than ``ttl`` before ``now`` and
        after the last invalidation (requests arriving together share it), else a new one."""
        read = self._inflight.get(key)
        if read is None or read.generation != self._generation or self._age(read, now) >= self._ttl:
            read = self._begin(key, now)
        assert read.task is not None
        return read.task

    def _begin(self, key: str, now: float) -> _Entry[V]:
        self._reads += 1
        read: _Entry[V] = _Entry(self._reads, now, self._generation)
        task = read.task = asyncio.ensure_future(self._read(key, read))
        self._inflight[key] = read
        self._running.add(task)
        task.add_done_callback(lambda _: self._finished(key, read))
        return read

    async def _read(self, key: str, read: _Entry[V]) -> V | None:
        read.value = await self._fetch(key)
        current = self._entries.get(key)
        if read.generation == self._generation and (current is None or current.seq < read.seq):
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = read
        return read.value

    def _finished(self, key: str, read: _Entry[V]) -> None:
        assert read.task is not None
        self._running.discard(read.task)
        if self._inflight.get(key) is read:
            del self._inflight[key]
        if not read.task.cancelled():
            read.task.exception()  # a failed refresh is retried by the next request
        read.task = None  # a cached entry keeps its value, not the finished task

    async def aclose(self) -> None:
        """Wait for the reads still in flight, background refreshes included (at shutdown,
        before the store closes)."""
        await asyncio.gather(*self._running, return_exceptions=True)


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

    async def delete_client(self, client_id: str) -> bool:
        done = await self._inner.delete_client(client_id)
        self.invalidate(client_id)
        return done

    async def rotate_secret(self, client_id: str, new: ClientSecret, old_expires_at: float) -> bool:
        done = await self._inner.rotate_secret(client_id, new, old_expires_at)
        self.invalidate(client_id)
        return done


class CachingResourceStore:
    """Wraps a :class:`ResourceStore` (RFC 8707); caches hits and misses for ``ttl``
    seconds like clients, so a token request naming a resource reads no database."""

    def __init__(
        self, inner: ResourceStore, clock: Clock, ttl: float, max_entries: int = 10_000
    ) -> None:
        self._inner = inner
        self._cache = ReadThrough(inner.get_resource, clock, ttl, max_entries)

    async def get_resource(self, identifier: str) -> Resource | None:
        return await self._cache.get(identifier)

    async def add_resource(self, resource: Resource) -> None:
        await self._inner.add_resource(resource)
        self._cache.invalidate(resource.identifier)

    async def list_resources(self) -> list[Resource]:
        return await self._inner.list_resources()

    async def remove_resource(self, identifier: str) -> bool:
        done = await self._inner.remove_resource(identifier)
        self._cache.invalidate(identifier)
        return done

    async def aclose(self) -> None:
        """Wait for the reads still in flight (at shutdown, before the store closes)."""
        await self._cache.aclose()
