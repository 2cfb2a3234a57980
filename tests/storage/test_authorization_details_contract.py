"""RFC 9396 storage (migration 0013): the authorization_details of codes, token families
and access tokens, a client's types, and the types registered with the CLI. One contract
for the in-memory store and SQLAlchemy on SQLite and PostgreSQL (both rotation forms)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.storage.conftest import ROTATION_FORMS, store_of
from tests.storage.old_schema import down_and_up, old_client_at
from tests.storage.test_partner_contract import _code, _family, _rt, _seed
from tokensmith.core.models import AccessTokenRecord, Client
from tokensmith.core.ports import Store

#: Canonical JSON text, with what PostgreSQL's text refuses unescaped (JSON escapes NUL).
DETAILS = (
    '[{"creditorName":"B\u00e4ckerei \\u0000","instructedAmount":'
    '{"amount":"1.00","currency":"EUR"},"type":"payment_initiation"}]'
)


@pytest.fixture(params=ROTATION_FORMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_of(request.param, tmp_path) as made:
        yield made


def _access(jti: str, details: str | None, **kw: object) -> AccessTokenRecord:
    return AccessTokenRecord(
        jti, "app", "m1", "read", 200.0, 7400.0, authorization_details=details, **kw
    )  # type: ignore[arg-type]


async def test_a_codes_details_start_its_family_and_first_access_token(store: Store) -> None:
    await _seed(store)
    await store.add_code(_code(authorization_details=DETAILS))
    assert (await store.find_code("c" * 64)).authorization_details == DETAILS  # type: ignore[union-attr]
    family = _family(authorization_details=DETAILS)
    access = _access("ja", DETAILS, family_id="f1")
    assert await store.redeem_code("c" * 64, 150.0, family, _rt("r1" * 32), access)
    assert (await store.get_family("f1")).authorization_details == DETAILS  # type: ignore[union-attr]
    assert await store.find_access_token_by_jti("ja") == access
    grant = await store.find_refresh_grant("r1" * 32)
    assert grant is not None and grant.family is not None
    assert grant.family.authorization_details == DETAILS


async def test_a_rotation_stores_the_narrowed_details_of_its_access_token(store: Store) -> None:
    await _seed(store)
    await store.add_code(_code())
    assert await store.redeem_code(
        "c" * 64, 150.0, _family(authorization_details=DETAILS), _rt("r1" * 32)
    )
    narrowed = _access("j2", "[]", family_id="f1")
    assert await store.rotate_refresh_token("r1" * 32, _rt("r2" * 32), 200.0, narrowed)
    assert await store.find_access_token_by_jti("j2") == narrowed


async def test_details_absent_stay_none(store: Store) -> None:
    await _seed(store)
    await store.add_code(_code())
    assert (await store.find_code("c" * 64)).authorization_details is None  # type: ignore[union-attr]
    await store.add_access_token(_access("jo", None, token_hash="h" * 64))
    assert (await store.find_access_token("h" * 64)).authorization_details is None  # type: ignore[union-attr]


async def test_an_opaque_tokens_details_round_trip(store: Store) -> None:
    record = _access("jo", DETAILS, token_hash="h" * 64)
    await store.add_access_token(record)
    assert await store.find_access_token("h" * 64) == record


@pytest.mark.parametrize("types", [None, (), ("payment_initiation", "account_information")])
async def test_a_clients_details_types_round_trip(
    store: Store, types: tuple[str, ...] | None
) -> None:
    client = Client("app", "App", ("read",), authorization_details_types=types)
    await store.add_client(client)
    assert (await store.get_client("app")) == client
    changed = client.evolve(authorization_details_types=("account_information",))
    await store.update_client(changed)
    assert (await store.get_client("app")) == changed
    assert [c.authorization_details_types for c in await store.list_clients()] == [
        ("account_information",)
    ]


async def test_registered_types_are_saved_replaced_listed_and_removed(store: Store) -> None:
    assert await store.list_details_types() == {}
    await store.save_details_type("loyalty", '{"type":"object"}', 1.0)
    await store.save_details_type("customer_information", '{"type":"object"}', 2.0)
    await store.save_details_type("loyalty", '{"required":["type"]}', 3.0)
    assert await store.list_details_types() == {
        "customer_information": '{"type":"object"}',
        "loyalty": '{"required":["type"]}',
    }
    assert await store.remove_details_type("loyalty")
    assert not await store.remove_details_type("loyalty")
    assert list(await store.list_details_types()) == ["customer_information"]


async def test_migration_0013_keeps_old_rows_and_downgrades_cleanly(db_url: str) -> None:
    """Clients from before 0013 may request every type; 0013 goes down and up again."""
    from tokensmith.storage.sql import SqlStore, make_engine, migrate

    engine = make_engine(db_url)
    await old_client_at(engine, "0009")
    await migrate(engine)
    store = SqlStore(engine)
    try:
        old = await store.get_client("old")
        assert old is not None and old.authorization_details_types is None
        await store.save_details_type("loyalty", "{}", 1.0)
        await down_and_up(engine, "0009")
        assert await store.list_details_types() == {}
    finally:
        await store.close()
