"""Pushed authorization requests (RFC 9126) in memory, mixed into
:class:`~tokensmith.storage.memory.MemoryStore`."""

from __future__ import annotations

import dataclasses

from tokensmith.core.models import PushedRequest

__all__ = ["PushedMemoryMixin"]


class PushedMemoryMixin:
    """:class:`~tokensmith.core.ports.PushedRequestStore`; atomic because nothing awaits."""

    @property
    def pushed_requests(self) -> dict[str, PushedRequest]:
        found = self.__dict__.get("_pushed_requests")
        if found is None:
            found = self.__dict__["_pushed_requests"] = {}
        assert isinstance(found, dict)
        return found

    async def add_pushed_request(self, pushed: PushedRequest) -> None:
        if pushed.request_hash in self.pushed_requests:
            raise KeyError("a pushed request with this hash exists")
        self.pushed_requests[pushed.request_hash] = pushed

    async def find_pushed_request(self, request_hash: str) -> PushedRequest | None:
        return self.pushed_requests.get(request_hash)

    async def use_pushed_request(self, request_hash: str, client_id: str, at: float) -> bool:
        p = self.pushed_requests.get(request_hash)
        if p is None or p.client_id != client_id or p.used_at is not None or at >= p.expires_at:
            return False
        self.pushed_requests[request_hash] = dataclasses.replace(p, used_at=at)
        return True

    async def purge_pushed_requests(self, before: float, batch: int) -> int:
        old = [h for h, p in self.pushed_requests.items() if p.expires_at < before][:batch]
        for h in old:
            del self.pushed_requests[h]
        return len(old)
