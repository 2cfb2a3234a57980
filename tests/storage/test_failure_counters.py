"""The failure counters' contract, in memory and in Redis (two limiters sharing it stand
for two instances): every operation is atomic, so parallel callers never get past a
limit together."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.conftest import REDIS_URL
from tokensmith.core.clock import FrozenClock
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.storage.ratelimit import MemoryLimiter, RedisLimiter

LIMIT = Limit(failures=5, window=60)
WIDE = Limit(failures=100, window=60)


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param(
            "redis",
            id="redis",
            marks=[
                pytest.mark.redis,
                pytest.mark.skipif(not REDIS_URL, reason="TOKENSMITH_TEST_REDIS_URL not set"),
            ],
        ),
    ]
)
async def pair(
    request: pytest.FixtureRequest, clock: FrozenClock
) -> AsyncIterator[tuple[FailureLimiter, FailureLimiter]]:
    """Two limiters that share their counts (in memory: one limiter twice)."""
    if request.param == "memory":
        limiter = MemoryLimiter(clock)
        yield limiter, limiter
        return
    import redis.asyncio as aioredis

    assert REDIS_URL is not None
    prefix = f"tokensmith-test:{secrets.token_hex(6)}:"
    a, b = aioredis.from_url(REDIS_URL), aioredis.from_url(REDIS_URL)
    try:
        yield RedisLimiter(a, prefix), RedisLimiter(b, prefix)
    finally:
        keys = [k async for k in a.scan_iter(match=prefix + "*")]
        if keys:
            await a.delete(*keys)
        await a.aclose()
        await b.aclose()


def _keys(name: str) -> list[tuple[str, Limit]]:
    return [(f"acct:{name}", LIMIT), ("addr:192.0.2.1", WIDE)]


async def test_parallel_reservations_get_exactly_the_limit(
    pair: tuple[FailureLimiter, FailureLimiter],
) -> None:
    a, b = pair
    keys = _keys("r")
    waits = await asyncio.gather(*((a, b)[i % 2].reserve(keys) for i in range(40)))
    assert waits.count(None) == LIMIT.failures
    assert all(w is not None and 1 <= w <= 60 for w in waits if w is not None)
    # a refused reservation counted nothing, not even on the key under its limit
    assert await a.check([("addr:192.0.2.1", Limit(failures=6, window=60))]) is None


async def test_released_reservations_make_room_again(
    pair: tuple[FailureLimiter, FailureLimiter],
) -> None:
    a, b = pair
    keys = _keys("s")
    for _ in range(LIMIT.failures):
        assert await a.reserve(keys) is None
    assert await b.reserve(keys) is not None
    await b.release(keys)
    assert await a.reserve(keys) is None
    assert await b.check(keys) is not None


async def test_parallel_failures_answer_exactly_the_limit(
    pair: tuple[FailureLimiter, FailureLimiter],
) -> None:
    a, b = pair
    keys = _keys("f")
    waits = await asyncio.gather(*((a, b)[i % 2].fail(keys) for i in range(40)))
    assert waits.count(None) == LIMIT.failures
    assert await a.check(keys) is not None and await b.check(keys) is not None
    assert await a.check(_keys("other")) is None


async def test_a_release_without_a_count_adds_no_attempt(
    pair: tuple[FailureLimiter, FailureLimiter],
) -> None:
    a, _ = pair
    keys = _keys("g")
    await a.release(keys)
    waits = [await a.fail(keys) for _ in range(LIMIT.failures + 1)]
    assert waits[:-1] == [None] * LIMIT.failures and waits[-1] is not None
