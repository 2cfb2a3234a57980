"""The pushed authorization request store (RFC 9126) and the clients' ``require_par``: one
contract for the in-memory store and SQLAlchemy on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.storage.old_schema import down_and_up, old_client_at
from tokensmith.core.models import Client, PushedRequest
from tokensmith.core.ports import Store

H = "0" * 12 + "a" * 52


def _pushed(h: str = H, **kw: object) -> PushedRequest:
    base: dict[str, object] = {
        "request_hash": h,
        "client_id": "app",
        "params": (("response_type", "code"), ("client_id", "app"), ("state", "s\x00\n\u00e9")),
        "issuer_tag": "0123456789abcdef",
        "created_at": 100.0,
        "expires_at": 160.0,
    }
    base.update(kw)
    return PushedRequest(**base)  # type: ignore[arg-type]


async def test_a_pushed_request_round_trips_with_its_parameters_in_order(store: Store) -> None:
    await store.add_pushed_request(_pushed())
    assert await store.find_pushed_request(H) == _pushed()
    assert await store.find_pushed_request("f" * 64) is None


async def test_a_pushed_request_is_used_once_by_its_client_before_it_expires(
    store: Store,
) -> None:
    await store.add_pushed_request(_pushed())
    await store.add_pushed_request(_pushed("b" * 64))
    assert await store.use_pushed_request(H, "other-app", 120.0) is False
    assert await store.use_pushed_request("c" * 64, "app", 120.0) is False
    assert await store.use_pushed_request("b" * 64, "app", 160.0) is False  # expired then
    assert await store.use_pushed_request(H, "app", 120.0) is True
    assert await store.use_pushed_request(H, "app", 121.0) is False
    found = await store.find_pushed_request(H)
    assert found is not None and found.used_at == 120.0


async def test_parallel_uses_of_one_pushed_request_succeed_once(store: Store) -> None:
    await store.add_pushed_request(_pushed())
    results = await asyncio.gather(
        *(store.use_pushed_request(H, "app", 120.0 + i) for i in range(10))
    )
    assert results.count(True) == 1


async def test_purge_deletes_expired_pushed_requests_in_batches(store: Store) -> None:
    for i in range(5):
        await store.add_pushed_request(_pushed(f"{i:064d}", expires_at=150.0 + i))
    await store.add_pushed_request(_pushed("e" * 64, expires_at=500.0))
    assert await store.purge_pushed_requests(153.0, 2) == 2
    assert await store.purge_pushed_requests(153.0, 10) == 1
    assert await store.purge_pushed_requests(1000.0, 10) == 3
    assert await store.find_pushed_request("e" * 64) is None


async def test_a_clients_require_par_round_trips(store: Store) -> None:
    app = Client("app", "App", ("read",), require_par=True, created_at=1.0)
    await store.add_client(app)
    assert (await store.get_client("app")) == app
    await store.update_client(app.evolve(require_par=False))
    found = await store.get_client("app")
    assert found is not None and found.require_par is False
    await store.add_client(Client("api", "API", ("read",), created_at=2.0))
    assert [c.require_par for c in await store.list_clients()] == [False, False]


async def test_clients_from_before_migration_0008_need_not_push(db_url: str) -> None:
    """Migration 0008 adds ``clients.require_par`` as false to every existing client, and
    downgrades cleanly."""
    from tokensmith.storage.sql import SqlStore, make_engine, migrate

    engine = make_engine(db_url)
    await old_client_at(engine, "0007")
    await migrate(engine)
    store = SqlStore(engine)
    try:
        old = await store.get_client("old")
        assert old is not None and old.require_par is False
        await down_and_up(engine, "0007")
    finally:
        await store.close()
