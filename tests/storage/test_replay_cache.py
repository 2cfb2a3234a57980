"""The replay cache's contract (:class:`tokensmith.core.ports.ReplayCache`) in memory, on
SQLite, on PostgreSQL and in Redis. Two caches on one database or one Redis stand for two
instances: a key one of them saw is refused by the other, and of concurrent first uses of
one key exactly one wins."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, REDIS_URL, fresh_database
from tokensmith.core.clock import FrozenClock
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.ports import ReplayCache
from tokensmith.storage.replay import MemoryReplayCache, RedisReplayCache
from tokensmith.storage.sql import make_engine, migrate
from tokensmith.storage.sql.replay import SqlReplayCache
from tokensmith.storage.sql.sqlite_writer import sqlite_writer

REDIS = pytest.param(
    "redis",
    id="redis",
    marks=[
        pytest.mark.redis,
        pytest.mark.skipif(not REDIS_URL, reason="TOKENSMITH_TEST_REDIS_URL not set"),
    ],
)


@dataclass
class Pair:
    a: ReplayCache
    b: ReplayCache
    clock: FrozenClock
    backend: str

    async def pass_time(self, seconds: float) -> None:
        """Move the clock; Redis expires keys by its own clock, so wait there too."""
        self.clock.advance(seconds)
        if self.backend == "redis":
            await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def _sql_pair(
    backend: str, tmp_path: Path, clock: FrozenClock, *, flock: bool = True
) -> AsyncIterator[Pair]:
    async with fresh_database(backend, tmp_path) as url:
        engines = [make_engine(url), make_engine(url)]
        await migrate(engines[0])
        # a SQLite file's caches write on the writer thread its store would have
        writers = [sqlite_writer(e) if flock else None for e in engines]
        a, b = (SqlReplayCache(e, clock, w) for e, w in zip(engines, writers, strict=True))
        try:
            yield Pair(a, b, clock, backend)
        finally:
            for cache in (a, b):
                await cache.aclose()
            for writer in writers:
                if writer is not None:
                    await writer.close()
            for engine in engines:
                await engine.dispose()


@contextlib.asynccontextmanager
async def _redis_pair(clock: FrozenClock) -> AsyncIterator[Pair]:
    import redis.asyncio as aioredis

    assert REDIS_URL is not None
    prefix = f"tokensmith-test:{secrets.token_hex(6)}:"
    a, b = aioredis.from_url(REDIS_URL), aioredis.from_url(REDIS_URL)
    try:
        yield Pair(
            RedisReplayCache(a, clock, prefix), RedisReplayCache(b, clock, prefix), clock, "redis"
        )
    finally:
        keys = [k async for k in a.scan_iter(match=prefix + "*")]
        if keys:
            await a.delete(*keys)
        await a.aclose()
        await b.aclose()


#: SQLite where there is no ``flock`` (no writer thread: transactions of the async engine)
NO_FLOCK = pytest.param("sqlite-no-flock", id="sqlite-no-flock")


@pytest.fixture(params=[pytest.param("memory", id="memory"), *BACKENDS, NO_FLOCK, REDIS])
async def pair(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    clock: FrozenClock,
) -> AsyncIterator[Pair]:
    if request.param == "sqlite-no-flock":
        async with _sql_pair("sqlite", tmp_path, clock, flock=False) as p:
            yield p
    elif request.param == "memory":
        cache = MemoryReplayCache(clock)
        yield Pair(cache, cache, clock, "memory")
    elif request.param == "redis":
        async with _redis_pair(clock) as p:
            yield p
    else:
        async with _sql_pair(request.param, tmp_path, clock) as p:
            yield p


async def test_a_key_is_used_once_on_every_instance(pair: Pair) -> None:
    until = pair.clock.now() + 60
    assert await pair.a.first_use("dpop:k1", until) is True
    assert await pair.a.first_use("dpop:k1", until) is False
    assert await pair.b.first_use("dpop:k1", until) is False
    assert await pair.b.first_use("dpop:k2", until) is True


async def test_a_key_whose_time_is_over_may_be_used_again(pair: Pair) -> None:
    assert await pair.a.first_use("dpop:k", pair.clock.now() + 1) is True
    await pair.pass_time(1.2)
    assert await pair.b.first_use("dpop:k", pair.clock.now() + 60) is True
    assert await pair.a.first_use("dpop:k", pair.clock.now() + 60) is False


async def test_of_parallel_first_uses_of_one_key_exactly_one_wins(pair: Pair) -> None:
    until = pair.clock.now() + 60
    caches = (pair.a, pair.b)
    won = await asyncio.gather(*(caches[i % 2].first_use("dpop:race", until) for i in range(40)))
    assert won.count(True) == 1


async def test_parallel_first_uses_of_different_keys_all_win(pair: Pair) -> None:
    until = pair.clock.now() + 60
    caches = (pair.a, pair.b)
    won = await asyncio.gather(*(caches[i % 2].first_use(f"dpop:{i}", until) for i in range(40)))
    assert all(won)


async def test_a_large_batch_of_new_remembered_and_ended_keys_is_decided_key_by_key(
    pair: Pair,
) -> None:
    """Many keys at once, new, remembered and ended, each twice: each decided as if alone."""
    for i in range(0, 1200, 2):  # every even key remembered, a tenth of them ending soon
        until = pair.clock.now() + (1 if i % 20 == 0 else 60)
        assert await pair.a.first_use(f"dpop:big{i}", until) is True
    await pair.pass_time(1.2)
    until = pair.clock.now() + 60
    caches = (pair.a, pair.b)
    keys = [f"dpop:big{i}" for i in range(1200)] * 2  # each key twice, in one batch
    # all at once (large group-commit batches); Redis in steps of its pool's size
    step = 50 if pair.backend == "redis" else len(keys)
    won: list[bool] = []
    for start in range(0, len(keys), step):
        part = enumerate(keys[start : start + step], start)
        won += await asyncio.gather(*(caches[n % 2].first_use(k, until) for n, k in part))
    wins = {k for k, w in zip(keys, won, strict=True) if w}
    expected = {f"dpop:big{i}" for i in range(1200) if i % 2 == 1 or i % 20 == 0}
    assert wins == expected
    assert sum(won) == len(expected)  # a key won once, by one caller


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_database_forgets_keys_whose_time_is_over(
    backend: str, tmp_path: Path, clock: FrozenClock
) -> None:
    async with _sql_pair(backend, tmp_path, clock) as p:
        assert isinstance(p.a, SqlReplayCache)
        for i in range(3):
            await p.a.first_use(f"old:{i}", clock.now() + 10)
        await p.a.first_use("live", clock.now() + 100)
        clock.advance(50)
        assert await p.a.purge(clock.now()) == 3
        assert await p.b.first_use("live", clock.now() + 100) is False


@pytest.mark.parametrize("backend", BACKENDS)
async def test_writes_purge_the_table_now_and_then(
    backend: str, tmp_path: Path, clock: FrozenClock
) -> None:
    async with _sql_pair(backend, tmp_path, clock) as p:
        assert isinstance(p.a, SqlReplayCache)
        await p.a.first_use("old", clock.now() + 10)  # the first write purges, then not for 60 s
        clock.advance(30)
        await p.a.first_use("mid", clock.now() + 10)
        assert await p.a.purge(clock.now()) == 1  # "old": the write of "mid" did not purge
        await p.a.first_use("old", clock.now() + 10)
        clock.advance(31)
        await p.a.first_use("new", clock.now() + 10)
        assert await p.a.purge(clock.now()) == 0  # "old" and "mid" went with this write


async def test_an_unreachable_redis_is_temporarily_unavailable(clock: FrozenClock) -> None:
    """No local fallback: forgetting across instances would let a proof through twice."""
    import redis.asyncio as aioredis

    client = aioredis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    try:
        with pytest.raises(TemporarilyUnavailable):
            await RedisReplayCache(client, clock).first_use("dpop:k", clock.now() + 60)
    finally:
        await client.aclose()
