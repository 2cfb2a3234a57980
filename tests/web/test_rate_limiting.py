"""Throttling of failed client authentication (RFC 6749 §10.10), in memory and in Redis.

Defaults: 10 failures per client_id and source address, and 30 per source address, within
60 s. The next attempt from that address is refused with 429 and ``Retry-After`` in the
endpoint's dialect, even with the right secret, until the window (opened by the first
failure) has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, Harness, make_settings, running_app
from tokensmith.core.admin import create_api_key
from tokensmith.core.clock import FrozenClock

TBC = "/v2/tpay/access-token"
ENDPOINTS = ["/oauth/token", "/o/token/", "/oauth/auth", TBC]

skip_without_redis = pytest.mark.skipif(not REDIS_URL, reason="TOKENSMITH_TEST_REDIS_URL not set")


@dataclass
class Limited:
    h: Harness
    apikey: str

    async def attempt(
        self, endpoint: str, client_id: str, secret: str, http: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        """One token request as each seed document makes it."""
        http = http or self.h.http
        body = {"client_id": client_id, "client_secret": secret}
        if endpoint == "/oauth/token":
            return await http.post(
                endpoint, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
        if endpoint == "/o/token/":
            return await http.post(endpoint, data={"grant_type": "client_credentials", **body})
        if endpoint == TBC:
            return await http.post(endpoint, data=body, headers={"apikey": self.apikey})
        return await http.post(endpoint, data=body)  # tpay: no grant_type


async def _limited(h: Harness) -> Limited:
    _, apikey = await create_api_key(h.ctx.store, h.clock, h.ctx.rand, "rate limit tests")
    return Limited(h, apikey)


@pytest.fixture
async def lim(harness: Harness) -> Limited:
    return await _limited(harness)


def assert_rate_limited(endpoint: str, r: httpx.Response, max_wait: int = 60) -> int:
    """429 in the endpoint's dialect with a sane ``Retry-After``; returns it."""
    assert r.status_code == 429, (r.status_code, r.text)
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= max_wait
    body = r.json()
    if endpoint == TBC:
        assert r.headers["content-type"] == "application/problem+json"
        assert set(body) == {"type", "title", "status", "detail", "systemCode", "code"}
        assert body["status"] == "429" and body["systemCode"] == "tpay-access-token.429.001"
        assert body["title"] == "Too Many Requests"
    else:
        assert r.headers["content-type"] == "application/json"
        assert body["error"] == "slow_down" and set(body) <= {"error", "error_description"}
    return retry_after


def assert_auth_failure(endpoint: str, r: httpx.Response) -> None:
    # TBC answers wrong merchant credentials with 400 (the seed's note), RFC 6749 with 401
    assert r.status_code == (400 if endpoint == TBC else 401), (r.status_code, r.text)
    assert "retry-after" not in r.headers


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_eleventh_failure_in_a_minute_is_429_in_dialect(lim: Limited, endpoint: str) -> None:
    client, _ = await lim.h.client()
    for _ in range(10):
        lim.h.clock.advance(5)  # ten failures spread over 45 s, all in one window
        assert_auth_failure(endpoint, await lim.attempt(endpoint, client.client_id, "wrong"))
    retry_after = assert_rate_limited(
        endpoint, await lim.attempt(endpoint, client.client_id, "wrong")
    )
    assert retry_after == 15  # the window opened at the first failure, 45 s ago


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_correct_secret_is_refused_while_limited(lim: Limited, endpoint: str) -> None:
    client, secret = await lim.h.client()
    for _ in range(10):
        await lim.attempt(endpoint, client.client_id, "wrong")
    assert_rate_limited(endpoint, await lim.attempt(endpoint, client.client_id, secret))


@pytest.mark.parametrize("endpoint", ["/oauth/token", TBC])
async def test_limit_lifts_when_the_window_has_passed(lim: Limited, endpoint: str) -> None:
    client, secret = await lim.h.client()
    for _ in range(10):
        await lim.attempt(endpoint, client.client_id, "wrong")
    lim.h.clock.advance(30)
    assert (
        assert_rate_limited(endpoint, await lim.attempt(endpoint, client.client_id, secret)) == 30
    )
    lim.h.clock.advance(29)
    assert_rate_limited(endpoint, await lim.attempt(endpoint, client.client_id, secret))
    lim.h.clock.advance(1)
    r = await lim.attempt(endpoint, client.client_id, secret)
    assert r.status_code == 200 and "access_token" in r.json()


async def test_fewer_than_ten_failures_never_limit(lim: Limited) -> None:
    client, secret = await lim.h.client()
    for _ in range(9):
        await lim.attempt("/oauth/token", client.client_id, "wrong")
    assert (await lim.attempt("/oauth/token", client.client_id, secret)).status_code == 200


async def test_one_clients_failures_do_not_limit_another(lim: Limited) -> None:
    victim, _ = await lim.h.client()
    other, other_secret = await lim.h.client()
    for _ in range(11):
        await lim.attempt("/oauth/token", victim.client_id, "wrong")
    assert (await lim.attempt("/oauth/token", other.client_id, other_secret)).status_code == 200


@contextlib.asynccontextmanager
async def client_from(h: Harness, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(h.asgi, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://auth.example.test") as c:
        yield c


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/auth", TBC])
async def test_thirty_failures_from_one_address_limit_every_client_from_it(
    lim: Limited, endpoint: str
) -> None:
    client, secret = await lim.h.client()
    for _ in range(30):  # thirty unknown client_ids: no single client reaches its limit
        r = await lim.attempt(endpoint, "unknown" + secrets.token_hex(4), "wrong")
        assert_auth_failure(endpoint, r)
    assert_rate_limited(endpoint, await lim.attempt(endpoint, client.client_id, secret))
    async with client_from(lim.h, "198.51.100.9") as elsewhere:
        r = await lim.attempt(endpoint, client.client_id, secret, http=elsewhere)
    assert r.status_code == 200
    lim.h.clock.advance(60)
    assert (await lim.attempt(endpoint, client.client_id, secret)).status_code == 200


async def test_introspection_client_authentication_is_limited_too(lim: Limited) -> None:
    client, _ = await lim.h.client()
    for _ in range(10):
        r = await lim.h.http.post(
            "/oauth/introspect", data={"token": "x"}, auth=(client.client_id, "wrong")
        )
        assert r.status_code == 401
    r = await lim.h.http.post(
        "/oauth/introspect", data={"token": "x"}, auth=(client.client_id, "wrong")
    )
    assert_rate_limited("/oauth/introspect", r)


# -- Redis: counts shared by every instance ----------------------------------------------


@contextlib.asynccontextmanager
async def redis_apps(
    tmp_path: Path, clock: FrozenClock, count: int, **overrides: Any
) -> AsyncIterator[list[Limited]]:
    """``count`` app instances on one database and one Redis key prefix (unique to the test),
    whose keys are deleted afterwards."""
    import redis.asyncio as aioredis

    assert REDIS_URL is not None
    prefix = f"tokensmith-test:{secrets.token_hex(6)}:"
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'shared.db'}",
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        **overrides,
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            apps = [
                await _limited(await stack.enter_async_context(running_app(settings, clock)))
                for _ in range(count)
            ]
            yield apps
    finally:
        r = aioredis.from_url(REDIS_URL)
        try:
            keys = [k async for k in r.scan_iter(match=prefix + "*")]
            if keys:
                await r.delete(*keys)
        finally:
            await r.aclose()


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/o/token/", "/oauth/auth", TBC])
@pytest.mark.redis
@skip_without_redis
async def test_redis_limiter_refuses_the_eleventh_failure_in_dialect(
    tmp_path: Path, clock: FrozenClock, endpoint: str
) -> None:
    async with redis_apps(tmp_path, clock, 1) as [app]:
        client, secret = await app.h.client()
        for _ in range(10):
            assert_auth_failure(endpoint, await app.attempt(endpoint, client.client_id, "wrong"))
        assert_rate_limited(endpoint, await app.attempt(endpoint, client.client_id, secret))


@pytest.mark.redis
@skip_without_redis
async def test_two_instances_sharing_redis_see_each_others_failures(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with redis_apps(tmp_path, clock, 2) as [a, b]:
        client, secret = await a.h.client()
        for _ in range(5):
            assert_auth_failure(
                "/oauth/token", await a.attempt("/oauth/token", client.client_id, "x")
            )
            assert_auth_failure(
                "/oauth/token", await b.attempt("/oauth/token", client.client_id, "x")
            )
        # ten failures in all, five on each: both instances now refuse
        assert_rate_limited(
            "/oauth/token", await a.attempt("/oauth/token", client.client_id, secret)
        )
        assert_rate_limited(TBC, await b.attempt(TBC, client.client_id, secret))


@pytest.mark.redis
@skip_without_redis
async def test_two_instances_share_the_per_address_count(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with redis_apps(tmp_path, clock, 2) as [a, b]:
        client, secret = await a.h.client()
        for i in range(30):
            app = a if i % 2 else b
            await app.attempt("/oauth/token", "unknown" + secrets.token_hex(4), "wrong")
        assert_rate_limited(
            "/oauth/token", await a.attempt("/oauth/token", client.client_id, secret)
        )
        assert_rate_limited(
            "/oauth/token", await b.attempt("/oauth/token", client.client_id, secret)
        )


@pytest.mark.redis
@skip_without_redis
async def test_redis_window_expires(tmp_path: Path, clock: FrozenClock) -> None:
    """Redis counts in real time (key TTL), so this window is one second long."""
    async with redis_apps(tmp_path, clock, 2, failure_window=1) as [a, b]:
        client, secret = await a.h.client()
        for _ in range(10):
            await a.attempt("/oauth/token", client.client_id, "wrong")
        assert_rate_limited(
            "/oauth/token", await b.attempt("/oauth/token", client.client_id, secret), 1
        )
        await asyncio.sleep(1.2)
        assert (await b.attempt("/oauth/token", client.client_id, secret)).status_code == 200


async def test_unreachable_redis_falls_back_to_local_counts(clock: FrozenClock) -> None:
    """An outage of the counter store neither stops issuance nor lifts the limit."""
    import redis.asyncio as aioredis

    from tokensmith.core.limits import Limit
    from tokensmith.storage.ratelimit import MemoryLimiter, RedisLimiter

    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RedisLimiter(dead, fallback=MemoryLimiter(clock))
    keys = [("client:x", Limit(failures=3, window=60))]
    assert await limiter.check(keys) is None
    assert [await limiter.fail(keys) for _ in range(4)] == [None, None, None, 60]
    assert await limiter.check(keys) == 60
    assert await limiter.reserve(keys) == 60
    await dead.aclose()
