"""Two workers (or instances) on the same data, each with its own caches: what one revokes
is refused by the other within the documented bound, however long the other sat idle."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.core.conftest import POLICY_JWT, Core
from tests.core_flow import make_service
from tests.twins import memory_twin
from tokensmith.core.grants.client_credentials import client_credentials
from tokensmith.core.models import Client
from tokensmith.core.service import TokenService
from tokensmith.storage.revocations import RevocationView

INTERVAL = 1.0
CLIENT_CACHE_TTL = 2.0


@dataclass
class Pair:
    here: TokenService
    there: TokenService
    client: Client
    token: str


async def _worker(core: Core) -> TokenService:
    """A second worker: its own store object, client cache, key ring and revocation view."""
    store = memory_twin(core.store)
    revocations = RevocationView(store, core.clock, INTERVAL)
    return await make_service(
        store, core.clock, {}, client_cache_ttl=CLIENT_CACHE_TTL, revocations=revocations
    )


@pytest.fixture
async def pair(core: Core) -> Pair:
    here = await make_service(
        core.store,
        core.clock,
        {"client_credentials": client_credentials},
        client_cache_ttl=CLIENT_CACHE_TTL,
        revocations=RevocationView(core.store, core.clock, INTERVAL),
    )
    there = await _worker(core)
    client, secret = await core.client()
    _, issued = await here.token(core.request(client.client_id, secret), POLICY_JWT)
    for service in (here, there):  # both warm
        assert (await service.introspect(issued.access_token, client))["active"] is True
    return Pair(here, there, client, issued.access_token)


async def _active(service: TokenService, pair: Pair) -> bool:
    return bool((await service.introspect(pair.token, pair.client))["active"])


@pytest.mark.parametrize("idle", [0.0, 10.0, 1_800.0])  # the token lives an hour
async def test_a_jwt_revoked_at_one_worker_is_inactive_at_the_other_within_the_interval(
    pair: Pair, core: Core, idle: float
) -> None:
    core.clock.advance(idle)
    await pair.here.revoke(pair.token, pair.client)
    assert not await _active(pair.here, pair)  # at once where it was revoked
    core.clock.advance(INTERVAL)
    assert not await _active(pair.there, pair)  # the first answer after the interval


@pytest.mark.parametrize("idle", [0.0, 10.0, 1_800.0])  # the token lives an hour
async def test_a_client_revoked_at_one_worker_is_refused_at_the_other_within_the_cache_ttl(
    pair: Pair, core: Core, idle: float
) -> None:
    core.clock.advance(idle)
    await pair.here.clients.revoke_client(pair.client.client_id, core.clock.now())
    assert not await _active(pair.here, pair)
    core.clock.advance(CLIENT_CACHE_TTL)
    assert not await _active(pair.there, pair)
