"""AsyncTokenClient: the same behaviours under asyncio."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeAS

from tokensmith.client import (
    AsyncTokenClient,
    InvalidGrant,
    MemoryRefreshTokenStore,
    RateLimited,
    RetryPolicy,
)


async def test_thousand_concurrent_tasks_on_empty_cache_make_one_token_request(
    make_async_client, server
):
    server.delay = 0.05
    atc = make_async_client()
    tokens = await asyncio.gather(*(atc.get_token() for _ in range(1000)))
    assert len({t.access_token for t in tokens}) == 1
    assert len(server.token_requests) == 1


async def test_thousand_concurrent_requests_through_httpx_share_one_token(
    make_async_client, server
):
    atc = make_async_client()
    async with httpx.AsyncClient(
        transport=server.async_transport(), base_url=ISSUER, auth=atc
    ) as http:
        responses = await asyncio.gather(*(http.get("/api/x") for _ in range(1000)))
    assert {r.status_code for r in responses} == {200}
    assert len(server.token_requests) == 1


async def test_async_token_is_renewed_before_expiry_and_never_used_after(
    make_async_client, server, clock
):
    server.lifetime = 100  # margin 30 s
    atc = make_async_client()
    async with httpx.AsyncClient(
        transport=server.async_transport(), base_url=ISSUER, auth=atc
    ) as http:
        for _ in range(300):
            assert (await http.get("/api/x")).status_code == 200
            assert clock.now < server.tokens[server.api_calls[-1]]
            clock.advance(1)
    assert len(server.token_requests) == 5  # renewed at 70 s of each 100 s lifetime


async def test_async_401_invalid_token_renews_and_retries_once(make_async_client, server):
    atc = make_async_client()
    async with httpx.AsyncClient(
        transport=server.async_transport(), base_url=ISSUER, auth=atc
    ) as http:
        await http.get("/api/x")
        server.revoked.add(server.api_calls[-1])
        response = await http.get("/api/x")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert len(server.token_requests) == 2


async def test_async_retries_5xx_and_honours_retry_after(make_async_client, server, sleeps):
    server.script.extend([500, (429, 3)])
    await make_async_client().get_token()
    assert len(sleeps) == 2 and sleeps[1] == 3.0


async def test_async_long_retry_after_raises_rate_limited(make_async_client, server):
    server.script.append((429, 999))
    with pytest.raises(RateLimited):
        await make_async_client(retry=RetryPolicy(max_retry_after=30)).get_token()


async def test_async_lost_refresh_response_keeps_the_session(clock, sleeps):
    server = FakeAS(clock=clock, lifetime=300)
    store = MemoryRefreshTokenStore()

    async def nosleep(delay: float) -> None:
        sleeps.append(delay)

    atc = AsyncTokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        http_client=httpx.AsyncClient(transport=server.async_transport()),
        clock=clock,
        sleep=nosleep,
        refresh_store=store,
    )
    first = await atc.exchange_code(server.issue_code(), "https://app.test/cb")
    clock.advance(400)
    server.script.append("drop")
    second = await atc.get_token()
    sent = [r.form.get("refresh_token") for r in server.token_requests[1:]]
    assert sent == [first.refresh_token, first.refresh_token]
    assert store.load() == second.refresh_token != first.refresh_token
    await atc.aclose()


async def test_async_missing_refresh_token_raises_invalid_grant(clock):
    atc = AsyncTokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        http_client=httpx.AsyncClient(transport=FakeAS(clock=clock).async_transport()),
        refresh_store=MemoryRefreshTokenStore(),
    )
    with pytest.raises(InvalidGrant):
        await atc.get_token()


async def test_async_from_issuer_over_asgi_transport(clock):
    server = FakeAS(clock=clock)
    transport = httpx.ASGITransport(app=server.asgi_app())
    async with httpx.AsyncClient(transport=transport) as http:
        atc = await AsyncTokenClient.from_issuer(
            ISSUER, CLIENT_ID, CLIENT_SECRET, "read", http_client=http, clock=clock
        )
        token = await atc.get_token()
    assert token.scope == "read"
    assert atc.auth_method == "client_secret_basic"


async def test_async_client_refuses_to_drive_a_sync_httpx_client(make_async_client):
    atc = make_async_client()
    with httpx.Client(auth=atc) as http, pytest.raises(RuntimeError, match="TokenClient"):
        http.get("https://api.test/")


def test_async_client_works_across_event_loops(make_async_client, server, clock):
    atc = make_async_client()
    first = asyncio.run(atc.get_token())
    clock.advance(4000)
    second = asyncio.run(atc.get_token())
    assert first.access_token != second.access_token
