"""Registered resources (RFC 8707) and the resources kept with codes, families and access
tokens: one contract for the in-memory store and SQLAlchemy on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import (
    AccessTokenRecord,
    AuthorizationCode,
    Resource,
    TokenFamily,
)
from tokensmith.core.ports import Store
from tokensmith.storage.cache import CachingResourceStore

API = Resource(
    "https://payments.example/api",
    "Payments API",
    ("payments:read", "payments:write"),
    access_token_ttl=300,
    token_format="opaque",
    created_at=100.0,
)
URN = Resource("urn:example:reports", "Reports", ("read",), created_at=101.0)


async def test_a_resource_round_trips_and_lists_in_order(store: Store) -> None:
    await store.add_resource(URN)
    await store.add_resource(API)
    assert await store.get_resource(API.identifier) == API
    assert await store.get_resource(URN.identifier) == URN
    assert await store.get_resource("https://unknown.example/") is None
    assert await store.list_resources() == [API, URN]


async def test_a_resource_is_registered_once(store: Store) -> None:
    await store.add_resource(API)
    with pytest.raises(KeyError):
        await store.add_resource(Resource(API.identifier, "Again", ("x",)))
    assert (await store.get_resource(API.identifier)) == API


async def test_a_removed_resource_is_gone(store: Store) -> None:
    await store.add_resource(API)
    assert await store.remove_resource(API.identifier) is True
    assert await store.remove_resource(API.identifier) is False
    assert await store.get_resource(API.identifier) is None
    assert await store.list_resources() == []


async def test_codes_families_and_access_tokens_keep_their_resources(store: Store) -> None:
    both = f"{API.identifier} {URN.identifier}"
    code = AuthorizationCode(
        code_hash="c" * 64,
        client_id="app",
        redirect_uri="https://partner.example/cb",
        redirect_uri_sent=True,
        code_challenge=None,
        merchant_id="m",
        user_id="u",
        scope="read",
        family_id="f" * 32,
        issued_at=100.0,
        expires_at=160.0,
        resources=both,
    )
    await store.add_code(code)
    assert await store.find_code("c" * 64) == code
    family = TokenFamily("f" * 32, "app", "m", "u", "read", 100.0, 900.0, 9000.0, resources=both)
    access = AccessTokenRecord(
        jti="j" * 32,
        client_id="app",
        subject="m",
        scope="read",
        issued_at=100.0,
        expires_at=400.0,
        token_hash="h" * 64,
        family_id=family.family_id,
        audience=API.identifier,
    )
    assert await store.redeem_code(code.code_hash, 120.0, family, None, access)
    assert await store.get_family(family.family_id) == family
    assert await store.find_access_token("h" * 64) == access
    alone = AccessTokenRecord("k" * 32, "app", "app", "read", 100.0, 400.0, "i" * 64)
    await store.add_access_token(dataclasses.replace(alone, audience=URN.identifier))
    found = await store.find_access_token("i" * 64)
    assert found is not None and found.audience == URN.identifier


async def test_the_cache_reads_a_resource_once_and_forgets_it_when_it_changes(
    store: Store, clock: FrozenClock
) -> None:
    reads: list[str] = []
    real = store.get_resource

    async def counting(identifier: str) -> Resource | None:
        reads.append(identifier)
        return await real(identifier)

    store.get_resource = counting  # type: ignore[method-assign]
    cache = CachingResourceStore(store, clock, ttl=5.0)
    assert await cache.get_resource(API.identifier) is None
    await cache.add_resource(API)
    assert await cache.get_resource(API.identifier) == API
    assert await cache.get_resource(API.identifier) == API
    assert reads == [API.identifier, API.identifier]  # the miss, then once after the add
    assert await cache.remove_resource(API.identifier) is True
    assert await cache.get_resource(API.identifier) is None
    await cache.aclose()
