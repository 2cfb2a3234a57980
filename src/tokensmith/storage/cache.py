"""A read-through cache of client records, so the token path needs no database round trip.

A change made through this instance is seen at once; one made through another
instance is seen within ``ttl`` seconds (the documented revocation delay).
"""

from __future__ import annotations

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
        self._entries: dict[str, tuple[float, Client | None]] = {}

    def invalidate(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)

    async def get_client(self, client_id: str) -> Client | None:
        now = self._clock.now()
        hit = self._entries.get(client_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        client = await self._inner.get_client(client_id)
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[client_id] = (now + self._ttl, client)
        return client

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
