from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # helpers, whatever pytest's import mode

from client_fakes import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeAS, FakeClock

from tokensmith.client import AsyncTokenClient, TokenClient


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> FakeAS:
    return FakeAS(clock=clock)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    server: FakeAS, clock: FakeClock, sleeps: list[float]
) -> Iterator[Callable[..., TokenClient]]:
    made: list[TokenClient] = []

    def make(**kwargs: Any) -> TokenClient:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", sleeps.append)
        kwargs.setdefault("http_client", httpx.Client(transport=server.transport()))
        tc = TokenClient(ISSUER + "/o/token/", CLIENT_ID, CLIENT_SECRET, **kwargs)
        made.append(tc)
        return tc

    yield make
    for tc in made:
        tc.close()


@pytest.fixture
def make_async_client(
    server: FakeAS, clock: FakeClock, sleeps: list[float]
) -> Callable[..., AsyncTokenClient]:
    async def record_sleep(delay: float) -> None:
        sleeps.append(delay)

    def make(**kwargs: Any) -> AsyncTokenClient:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", record_sleep)
        kwargs.setdefault("http_client", httpx.AsyncClient(transport=server.async_transport()))
        return AsyncTokenClient(ISSUER + "/o/token/", CLIENT_ID, CLIENT_SECRET, **kwargs)

    return make


@pytest.fixture
def api(server: FakeAS) -> Callable[[TokenClient], httpx.Client]:
    """An httpx client for the fake API, authenticated by the given token client."""

    def make(tc: TokenClient) -> httpx.Client:
        return httpx.Client(transport=server.transport(), base_url=ISSUER, auth=tc)

    return make
