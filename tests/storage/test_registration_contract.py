"""Dynamic client registration in every store: initial access tokens by their hash
(RFC 7591 §3) and a registered client's registration access token hash and metadata
(RFC 7592), on memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses

from tokensmith.core.models import Client, ClientSecret, InitialAccessToken, Merchant
from tokensmith.core.ports import Store


def _token(token_id: str = "rt_1", token_hash: str = "a" * 64, **kw: object) -> InitialAccessToken:
    return InitialAccessToken(token_id, token_hash, created_at=100.0, **kw)  # type: ignore[arg-type]


async def test_an_initial_token_is_found_by_its_hash_with_its_merchant(store: Store) -> None:
    await store.add_merchant(Merchant("m1", "Shop", 1.0))
    token = _token(merchant_id="m1", expires_at=200.0)
    await store.add_initial_token(token)
    assert await store.find_initial_token("a" * 64) == token
    assert await store.find_initial_token("b" * 64) is None
    assert await store.list_initial_tokens() == [token]


async def test_an_initial_token_is_revoked_once(store: Store) -> None:
    await store.add_initial_token(_token())
    assert await store.revoke_initial_token("rt_1", 150.0)
    assert not await store.revoke_initial_token("rt_1", 160.0)
    assert not await store.revoke_initial_token("rt_unknown", 160.0)
    found = await store.find_initial_token("a" * 64)
    assert found is not None and found.revoked_at == 150.0
    assert not found.usable_at(151.0)


async def test_tokens_are_listed_oldest_first(store: Store) -> None:
    await store.add_initial_token(dataclasses.replace(_token("rt_b", "b" * 64), created_at=5.0))
    await store.add_initial_token(_token("rt_a", "a" * 64))
    assert [t.token_id for t in await store.list_initial_tokens()] == ["rt_b", "rt_a"]


async def test_a_registered_clients_token_hash_and_metadata_are_kept_and_replaced(
    store: Store,
) -> None:
    client = Client(
        "c1",
        "Registered",
        ("read",),
        secrets=(ClientSecret("s" * 64, 1.0),),
        registration_token_hash="r" * 64,
        registration_metadata='{"contacts":["a@example.com"]}',
    )
    await store.add_client(client)
    got = await store.get_client("c1")
    assert got is not None and got.registered
    assert got.registration_token_hash == "r" * 64
    assert got.registration_metadata == '{"contacts":["a@example.com"]}'
    await store.update_client(client.evolve(registration_token_hash="n" * 64))
    again = await store.get_client("c1")
    assert again is not None and again.registration_token_hash == "n" * 64
    assert again.secrets == client.secrets


async def test_a_client_made_otherwise_is_not_registered(store: Store) -> None:
    await store.add_client(Client("c2", "CLI", ("read",)))
    got = await store.get_client("c2")
    assert got is not None and not got.registered and got.registration_metadata is None
