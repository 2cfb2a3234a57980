"""Caches refresh in the background; at shutdown each waits for its reads still in flight,
so that none holds a database connection when the store closes."""

from __future__ import annotations

import asyncio

from tests.core.conftest import Core
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client
from tokensmith.storage.cache import CachingClientStore
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.revocations import RevocationView


class GatedClients:
    """A client store whose reads wait until the gate opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.reads = 0

    async def get_client(self, client_id: str) -> Client | None:
        await self.gate.wait()
        self.reads += 1
        return Client(client_id=client_id, name="n", scopes=("read",))


async def _closes_only_after_the_gate(close: asyncio.Task[None], gate: asyncio.Event) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    assert not close.done()
    gate.set()
    await asyncio.wait_for(close, 1)


async def test_client_cache_close_waits_for_a_background_refresh(clock: FrozenClock) -> None:
    inner = GatedClients()
    cache = CachingClientStore(inner, clock, ttl=10.0)  # type: ignore[arg-type]
    assert await cache.get_client("a") is not None
    clock.advance(6.0)  # past half the ttl: the next hit refreshes in the background
    inner.gate.clear()
    assert await cache.get_client("a") is not None
    await _closes_only_after_the_gate(asyncio.ensure_future(cache.aclose()), inner.gate)
    assert inner.reads == 2


async def test_revocation_view_close_waits_for_its_background_read(clock: FrozenClock) -> None:
    store = MemoryStore()
    gate = asyncio.Event()
    real = store.revoked_since

    async def gated(since: float, now: float) -> list[tuple[str, float, float]]:
        await gate.wait()
        return await real(since, now)

    store.revoked_since = gated  # type: ignore[method-assign]
    gate.set()
    view = RevocationView(store, clock, interval=1.0)
    assert await view.revoked_at("j") is None
    clock.advance(0.6)  # past half the interval: the next answer refreshes in the background
    gate.clear()
    assert await view.revoked_at("j") is None  # answered at once; the read goes on
    await _closes_only_after_the_gate(asyncio.ensure_future(view.aclose()), gate)


async def test_keyring_close_waits_for_a_background_reload(core: Core) -> None:
    await core.keyring.codec()
    gate = asyncio.Event()
    real = core.store.list_signing_keys

    async def gated() -> list:  # type: ignore[type-arg]
        await gate.wait()
        return await real()

    core.store.list_signing_keys = gated  # type: ignore[method-assign]
    core.clock.advance(60.0)
    await core.keyring.codec()  # answered with the current codec; the reload goes on
    await _closes_only_after_the_gate(asyncio.ensure_future(core.keyring.aclose()), gate)
