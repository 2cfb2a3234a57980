"""The consent resource store: one contract for the in-memory store and SQLAlchemy on
SQLite and PostgreSQL. Every change of status is conditional, so parallel callers win once."""

from __future__ import annotations

import asyncio

import pytest

from tokensmith.core.models import AuthorizationCode, ConsentResource, TokenFamily
from tokensmith.core.ports import Store

DETAILS = '[{"type":"account_information","actions":["read_balances"]}]'


def _consent(consent_id: str = "cns_1", **kw: object) -> ConsentResource:
    base: dict[str, object] = {
        "consent_id": consent_id,
        "client_id": "app",
        "status": "awaiting_authorization",
        "authorization_details": DETAILS,
        "created_at": 100.0,
        "expires_at": 700.0,
        "status_updated_at": 100.0,
    }
    base.update(kw)
    return ConsentResource(**base)  # type: ignore[arg-type]


async def _authorize(store: Store, consent_id: str = "cns_1", at: float = 200.0) -> bool:
    return await store.authorize_consent_resource(
        consent_id,
        "app",
        user_id="u1",
        merchant_id="m1",
        family_id="f_1",
        at=at,
        expires_at=10_000.0,
    )


async def test_a_consent_round_trips(store: Store) -> None:
    await store.add_consent_resource(_consent())
    assert await store.get_consent_resource("cns_1") == _consent()
    assert await store.get_consent_resource("cns_2") is None


async def test_authorizing_records_who_and_the_family_and_happens_once(store: Store) -> None:
    await store.add_consent_resource(_consent())
    assert await _authorize(store) is True
    assert await _authorize(store, at=201.0) is False
    found = await store.get_consent_resource("cns_1")
    assert found == _consent(
        status="authorized",
        status_updated_at=200.0,
        user_id="u1",
        merchant_id="m1",
        family_id="f_1",
        approved_at=200.0,
        expires_at=10_000.0,
    )


@pytest.mark.parametrize(
    ("why", "consent", "client_id", "at"),
    [
        ("another client's", _consent(), "other", 200.0),
        ("expired", _consent(), "app", 700.0),
        ("rejected", _consent(status="rejected"), "app", 200.0),
        ("revoked", _consent(status="revoked"), "app", 200.0),
    ],
)
async def test_a_consent_not_awaiting_is_not_authorized(
    store: Store, why: str, consent: ConsentResource, client_id: str, at: float
) -> None:
    await store.add_consent_resource(consent)
    won = await store.authorize_consent_resource(
        "cns_1", client_id, user_id="u", merchant_id="m", family_id="f", at=at, expires_at=9e9
    )
    assert won is False, why
    assert await store.get_consent_resource("cns_1") == consent


async def test_a_status_changes_only_from_the_statuses_named_and_before_expiry(
    store: Store,
) -> None:
    await store.add_consent_resource(_consent())
    await store.add_consent_resource(_consent("cns_2"))
    assert await store.change_consent_resource("cns_1", ["authorized"], "consumed", 150.0) is False
    assert (
        await store.change_consent_resource("cns_2", ["awaiting_authorization"], "rejected", 700.0)
        is False
    )
    assert (
        await store.change_consent_resource(
            "cns_1", ["awaiting_authorization"], "rejected", 150.0, user_id="u", merchant_id="m"
        )
        is True
    )
    found = await store.get_consent_resource("cns_1")
    assert found is not None
    assert (found.status, found.status_updated_at, found.user_id, found.merchant_id) == (
        "rejected",
        150.0,
        "u",
        "m",
    )


async def test_parallel_consumptions_of_one_consent_succeed_once(store: Store) -> None:
    await store.add_consent_resource(_consent())
    assert await _authorize(store)
    results = await asyncio.gather(
        *(
            store.change_consent_resource("cns_1", ["authorized"], "consumed", 300.0 + i)
            for i in range(10)
        )
    )
    assert results.count(True) == 1
    found = await store.get_consent_resource("cns_1")
    assert found is not None and found.status == "consumed"


async def test_parallel_authorizations_of_one_consent_succeed_once(store: Store) -> None:
    await store.add_consent_resource(_consent())
    results = await asyncio.gather(*(_authorize(store, at=200.0 + i) for i in range(10)))
    assert results.count(True) == 1


async def test_consents_are_listed_by_client_and_by_merchant(store: Store) -> None:
    await store.add_consent_resource(_consent("cns_1"))
    await store.add_consent_resource(_consent("cns_2", client_id="other", created_at=90.0))
    await store.add_consent_resource(_consent("cns_3", created_at=110.0))
    assert await _authorize(store, "cns_3")
    assert [c.consent_id for c in await store.list_consent_resources()] == [
        "cns_2",
        "cns_1",
        "cns_3",
    ]
    mine = await store.list_consent_resources(client_id="app")
    assert [c.consent_id for c in mine] == ["cns_1", "cns_3"]
    merchant = await store.list_consent_resources(merchant_id="m1")
    assert [c.consent_id for c in merchant] == ["cns_3"]


async def test_purge_deletes_consents_expired_before_in_batches(store: Store) -> None:
    for i in range(4):
        await store.add_consent_resource(_consent(f"cns_{i}", expires_at=150.0 + i))
    await store.add_consent_resource(_consent("cns_late", expires_at=900.0))
    assert await store.purge_consent_resources(200.0, 3) == 3
    assert await store.purge_consent_resources(200.0, 3) == 1
    assert [c.consent_id for c in await store.list_consent_resources()] == ["cns_late"]


async def test_codes_and_families_carry_their_consent_id(store: Store) -> None:
    code = AuthorizationCode(
        code_hash="c" * 64,
        client_id="app",
        redirect_uri="https://app.example/cb",
        redirect_uri_sent=True,
        code_challenge=None,
        merchant_id="m1",
        user_id="u1",
        scope="read",
        family_id="f_1",
        issued_at=100.0,
        expires_at=160.0,
        consent_id="cns_1",
    )
    await store.add_code(code)
    found = await store.find_code("c" * 64)
    assert found is not None and found.consent_id == "cns_1"
    family = TokenFamily(
        family_id="f_1",
        client_id="app",
        merchant_id="m1",
        user_id="u1",
        scope="read",
        created_at=120.0,
        expires_at=1000.0,
        absolute_expires_at=2000.0,
        consent_id="cns_1",
    )
    assert await store.redeem_code("c" * 64, 120.0, family, None)
    stored = await store.get_family("f_1")
    assert stored is not None and stored.consent_id == "cns_1"
