"""Fetching a client's jwks_uri: narrow against request forgery and slow or large answers;
every failure a JwksUnavailable (answered invalid_client), never an exception out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tokensmith.core.ports import JwksUnavailable
from tokensmith.web.jwks_fetch import HttpJwksFetcher

URI = "https://rp.example/jwks"


def fetcher(handler: object, **kw: float) -> HttpJwksFetcher:
    return HttpJwksFetcher(transport=httpx.MockTransport(handler), **kw)  # type: ignore[arg-type]


async def test_a_jwk_set_is_fetched() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b'{"keys": []}')

    f = fetcher(handler)
    assert await f.fetch(URI) == b'{"keys": []}'
    assert "jwk-set+json" in seen[0].headers["accept"]
    await f.aclose()


@pytest.mark.parametrize(
    "uri", ["http://rp.example/jwks", "file:///etc/passwd", "https://u:p@rp.example/"]
)
async def test_only_https_or_loopback_is_fetched(uri: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    with pytest.raises(JwksUnavailable):
        await fetcher(handler).fetch(uri)


async def test_a_redirect_is_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "rp.example"
        return httpx.Response(302, headers={"location": "http://169.254.169.254/"})

    with pytest.raises(JwksUnavailable, match="302"):
        await fetcher(handler).fetch(URI)


async def test_a_large_answer_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{" + b" " * 70_000 + b"}")

    with pytest.raises(JwksUnavailable, match="larger than 65536"):
        await fetcher(handler).fetch(URI)


async def test_a_large_answer_without_a_length_is_cut_off() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 4096

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks())

    with pytest.raises(JwksUnavailable, match="larger than"):
        await fetcher(handler).fetch(URI)


async def test_a_slow_answer_times_out() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, content=b"{}")

    with pytest.raises(JwksUnavailable, match=r"no answer within 0\.2 s"):
        await fetcher(handler, timeout=0.2).fetch(URI)


async def test_a_trickled_body_times_out() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(50):
            await asyncio.sleep(0.05)
            yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    with pytest.raises(JwksUnavailable, match="no answer"):
        await fetcher(handler, timeout=0.3).fetch(URI)


async def test_a_connection_failure_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(JwksUnavailable, match="ConnectError"):
        await fetcher(handler).fetch(URI)


@pytest.mark.parametrize("status", [404, 500])
async def test_an_error_status_is_unavailable(status: int) -> None:
    with pytest.raises(JwksUnavailable, match=str(status)):
        await fetcher(lambda r: httpx.Response(status)).fetch(URI)
