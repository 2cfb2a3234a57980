"""``ReadThrough``: the cache of client records and API keys in front of the store."""

from __future__ import annotations

import asyncio

import pytest

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


class SlowLoader(Loader):
    """Reads the value when called; while ``hold`` is set, answers only once it clears
    (a slow or stuck database)."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.hold: asyncio.Event | None = None

    async def __call__(self, key: str) -> str | None:
        self.calls.append(key)
        value, hold = self.values.get(key), self.hold
        await asyncio.sleep(0)
        if hold is not None:
            await hold.wait()
        return value


@pytest.mark.parametrize("idle", [2.0, 30.0, 3_600.0])
async def test_after_an_idle_spell_the_first_get_sees_a_change_made_elsewhere(
    idle: float,
) -> None:
    clock, load = FrozenClock(), Loader({"a": "live"})
    cache = ReadThrough(load, clock, ttl=2.0)
    assert await cache.get("a") == "live"
    clock.advance(idle)
    load.values["a"] = "revoked"  # by another instance: nothing here is invalidated
    assert await cache.get("a") == "revoked"


async def test_a_get_after_invalidate_does_not_wait_for_a_read_begun_before_it() -> None:
    """The instance that revokes sees it at once: a background refresh that read the
    record before the revocation must not answer the next request."""
    clock, load = FrozenClock(), SlowLoader({"a": "live"})
    cache = ReadThrough(load, clock, ttl=2.0)
    await cache.get("a")
    clock.advance(1.5)  # past half the ttl
    load.hold = asyncio.Event()
    assert await cache.get("a") == "live"
    await asyncio.sleep(0)  # the refresh starts, and reads "live"
    assert load.calls == ["a", "a"]
    load.values["a"] = "revoked"
    cache.invalidate("a")
    load.hold.set()
    load.hold = None
    assert await asyncio.wait_for(cache.get("a"), 1) == "revoked"
    await cache.aclose()


async def test_a_read_in_flight_for_longer_than_the_ttl_is_not_waited_for() -> None:
    clock, load = FrozenClock(), SlowLoader({"a": "live"})
    cache = ReadThrough(load, clock, ttl=2.0)
    await cache.get("a")
    clock.advance(1.5)
    stuck = load.hold = asyncio.Event()
    assert await cache.get("a") == "live"
    await asyncio.sleep(0)  # the refresh starts, and sticks
    assert load.calls == ["a", "a"]
    load.hold = None
    load.values["a"] = "revoked"  # by another instance
    clock.advance(2.0)
    assert await asyncio.wait_for(cache.get("a"), 1) == "revoked"
    stuck.set()
    await cache.aclose()
    assert await cache.get("a") == "revoked"  # the stuck read, ending last, stored nothing


async def test_a_clock_set_back_does_not_stretch_the_ttl() -> None:
    clock, load = FrozenClock(), Loader({"a": "live"})
    cache = ReadThrough(load, clock, ttl=2.0)
    await cache.get("a")
    clock.advance(-120.0)
    load.values["a"] = "revoked"
    assert await cache.get("a") == "revoked"
