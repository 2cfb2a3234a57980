"""``ReadThrough``: the cache of client records and API keys in front of the store."""

from __future__ import annotations

import asyncio

from tokensmith.core.clock import FrozenClock
from tokensmith.storage.cache import ReadThrough


class Loader:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls: list[str] = []

    async def __call__(self, key: str) -> str | None:
        self.calls.append(key)
        await asyncio.sleep(0)
        return self.values.get(key)


async def test_hits_and_misses_are_both_cached_until_the_ttl() -> None:
    clock, load = FrozenClock(), Loader({"a": "A"})
    cache = ReadThrough(load, clock, ttl=2.0)
    assert [await cache.get("a"), await cache.get("a")] == ["A", "A"]
    assert [await cache.get("nope"), await cache.get("nope")] == [None, None]
    assert load.calls == ["a", "nope"]
    load.values["a"] = "A2"
    clock.advance(2.0)
    assert await cache.get("a") == "A2"


async def test_concurrent_misses_share_one_read() -> None:
    load = Loader({"a": "A"})
    cache = ReadThrough(load, FrozenClock(), ttl=2.0)
    assert await asyncio.gather(*(cache.get("a") for _ in range(10))) == ["A"] * 10
    assert load.calls == ["a"]


async def test_invalidate_forgets_one_key_or_all() -> None:
    load = Loader({"a": "A", "b": "B"})
    cache = ReadThrough(load, FrozenClock(), ttl=60.0)
    await cache.get("a"), await cache.get("b")
    cache.invalidate("a")
    await cache.get("a"), await cache.get("b")
    assert load.calls == ["a", "b", "a"]
    cache.invalidate()
    await cache.get("a"), await cache.get("b")
    assert load.calls == ["a", "b", "a", "a", "b"]
