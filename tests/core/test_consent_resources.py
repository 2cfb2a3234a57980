"""The consent resource's rules against the in-memory store: its state machine, expiry by
the injected clock, the refusals, and what it records in the audit trail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tokensmith.core.audit import Audit, By, MemoryAuditTrail
from tokensmith.core.clock import FrozenClock
from tokensmith.core.consent_resources import (
    ConsentNotActive,
    ConsentPolicy,
    ConsentResources,
    consent_json,
    single_use,
    summary,
)
from tokensmith.core.errors import InvalidAuthorizationDetails, InvalidRequest, InvalidToken
from tokensmith.core.models import Client, TokenFamily, User
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore

PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "10.00"},
    "creditorName": "Shop",
    "creditorAccount": {"iban": "DE02120300000000202051"},
}
ACCOUNTS: dict[str, Any] = {"type": "account_information", "actions": ["read_balances"]}
APP = Client("app", "Ledger", ("read",), merchant_id="m_partner")
USER = User("u1", "a@shop.example", "x", "admin", "m1", 0.0)


@dataclass
class World:
    consents: ConsentResources
    store: MemoryStore
    clock: FrozenClock
    trail: MemoryAuditTrail

    async def lodge(self, details: list[dict[str, Any]], **kw: Any) -> str:
        return (await self.consents.lodge(APP, details, **kw)).consent_id

    async def status(self, consent_id: str) -> str:
        found = await self.consents.get(consent_id)
        assert found is not None
        return found.status_at(self.clock.now())

    def events(self) -> list[tuple[str, str | None, str | None]]:
        return [(e.type, e.actor, e.merchant_id) for e in self.trail.events]


@pytest.fixture
def world() -> World:
    store = MemoryStore()
    clock = FrozenClock(1000.0)
    rand = SystemRandomness()
    trail = MemoryAuditTrail()
    consents = ConsentResources(
        store, store, clock, rand, policy=ConsentPolicy(600, 5000), audit=Audit(trail, clock, rand)
    )
    return World(consents, store, clock, trail)


async def test_a_consent_awaits_for_its_lifetime_then_reads_expired(world: World) -> None:
    consent_id = await world.lodge([PAYMENT])
    assert await world.status(consent_id) == "awaiting_authorization"
    world.clock.advance(599)
    assert await world.status(consent_id) == "awaiting_authorization"
    world.clock.advance(1)
    assert await world.status(consent_id) == "expired"
    with pytest.raises(InvalidRequest, match="not awaiting authorization"):
        await world.consents.awaiting("app", consent_id)


async def test_expires_in_only_shortens_the_lifetime(world: World) -> None:
    short = await world.consents.lodge(APP, [PAYMENT], 30)
    long = await world.consents.lodge(APP, [PAYMENT], 10_000)
    assert (short.expires_at, long.expires_at) == (1030.0, 1600.0)


@pytest.mark.parametrize(
    ("why", "details", "expires_in", "error"),
    [
        ("absent", None, None, InvalidRequest),
        ("an object", PAYMENT, None, InvalidAuthorizationDetails),
        ("empty", [], None, InvalidAuthorizationDetails),
        ("unknown type", [{"type": "nope"}], None, InvalidAuthorizationDetails),
        ("missing payee", [{**PAYMENT, "creditorName": ""}], None, InvalidAuthorizationDetails),
        ("zero seconds", [PAYMENT], 0, InvalidRequest),
        ("negative seconds", [PAYMENT], -5, InvalidRequest),
        ("a boolean", [PAYMENT], True, InvalidRequest),
        ("a float", [PAYMENT], 1.5, InvalidRequest),
    ],
)
async def test_a_bad_consent_is_refused(
    world: World, why: str, details: Any, expires_in: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await world.consents.lodge(APP, details, expires_in)
    assert world.store.consent_resources == {}, why


async def test_the_app_is_held_to_its_types(world: World) -> None:
    held = Client("held", "Held", ("read",), authorization_details_types=("account_information",))
    with pytest.raises(InvalidAuthorizationDetails, match="may not request"):
        await world.consents.lodge(held, [PAYMENT])


async def test_approval_authorizes_it_once_for_the_users_merchant(world: World) -> None:
    consent_id = await world.lodge([PAYMENT])
    await world.consents.authorize(consent_id, "app", USER, "f_1", by=By.user("u1"))
    found = await world.consents.get(consent_id)
    assert found is not None
    assert (found.status, found.user_id, found.merchant_id, found.family_id) == (
        "authorized",
        "u1",
        "m1",
        "f_1",
    )
    assert (found.approved_at, found.expires_at) == (1000.0, 6000.0)
    with pytest.raises(InvalidRequest, match="not awaiting authorization"):
        await world.consents.authorize(consent_id, "app", USER, "f_2")
    with pytest.raises(InvalidRequest, match="not awaiting authorization"):
        await world.consents.awaiting("app", consent_id)


async def test_rejection_ends_it(world: World) -> None:
    consent_id = await world.lodge([PAYMENT])
    assert await world.consents.reject(consent_id, "app", USER) is True
    assert await world.status(consent_id) == "rejected"
    assert await world.consents.reject(consent_id, "app", USER) is False
    with pytest.raises(InvalidRequest):
        await world.consents.authorize(consent_id, "app", USER, "f_1")


async def test_a_consent_is_only_its_clients(world: World) -> None:
    consent_id = await world.lodge([PAYMENT])
    assert await world.consents.of_client("other", consent_id) is None
    with pytest.raises(InvalidRequest, match="not a consent of this app"):
        await world.consents.awaiting("other", consent_id)
    with pytest.raises(InvalidRequest):
        await world.consents.authorize(consent_id, "other", USER, "f_1")


async def test_consumption_ends_a_payment_consent_and_revokes_its_family(world: World) -> None:
    world.store.families["f_1"] = TokenFamily("f_1", "app", "m1", "u1", "read", 1000.0, 9e9, 9e9)
    consent_id = await world.lodge([PAYMENT])
    await world.consents.authorize(consent_id, "app", USER, "f_1")
    assert await world.consents.active(consent_id) is True
    done = await world.consents.consume(consent_id, False)
    assert done.status == "consumed"
    assert await world.consents.active(consent_id) is False
    assert world.store.families["f_1"].revoked_at == 1000.0
    with pytest.raises(ConsentNotActive) as exc:
        await world.consents.consume(consent_id, False)
    assert exc.value.current == "consumed" and exc.value.status == 409


@pytest.mark.parametrize(
    ("why", "prepare", "error"),
    [
        ("no consent", lambda w: None, InvalidRequest),
        ("unknown consent", lambda w: "cns_unknown", InvalidRequest),
    ],
)
async def test_consume_refuses_a_token_without_a_consent(
    world: World, why: str, prepare: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await world.consents.consume(prepare(world), False)


async def test_consume_refuses_what_is_not_authorized_single_use(world: World) -> None:
    accounts = await world.lodge([ACCOUNTS])
    await world.consents.authorize(accounts, "app", USER, "f_a")
    with pytest.raises(InvalidRequest, match="not a single-use consent"):
        await world.consents.consume(accounts, False)
    awaiting = await world.lodge([PAYMENT])
    with pytest.raises(ConsentNotActive) as exc:
        await world.consents.consume(awaiting, False)
    assert exc.value.current == "awaiting_authorization"
    authorized = await world.lodge([PAYMENT])
    await world.consents.authorize(authorized, "app", USER, "f_p")
    with pytest.raises(InvalidToken):
        await world.consents.consume(authorized, True)  # the token itself was revoked
    world.clock.advance(5000)
    with pytest.raises(ConsentNotActive) as exc:
        await world.consents.consume(authorized, False)
    assert exc.value.current == "expired"


async def test_revocation_ends_awaiting_and_authorized_consents_only(world: World) -> None:
    awaiting = await world.lodge([PAYMENT])
    assert (await world.consents.cancel(APP, awaiting)) is not None
    assert await world.status(awaiting) == "revoked"
    assert (await world.consents.cancel(APP, awaiting)) is not None  # again: still revoked
    world.store.families["f_1"] = TokenFamily("f_1", "app", "m1", "u1", "read", 1000.0, 9e9, 9e9)
    authorized = await world.lodge([ACCOUNTS])
    await world.consents.authorize(authorized, "app", USER, "f_1")
    revoked = await world.consents.revoke(authorized)
    assert revoked is not None and revoked.status == "revoked"
    assert world.store.families["f_1"].revoked_at == 1000.0
    rejected = await world.lodge([PAYMENT])
    await world.consents.reject(rejected, "app", USER)
    with pytest.raises(ConsentNotActive):
        await world.consents.revoke(rejected)
    assert await world.consents.revoke("cns_missing") is None
    assert await world.consents.cancel(APP, "bad id!") is None


async def test_each_change_is_audited_with_actor_and_merchant_and_no_token(world: World) -> None:
    world.store.families["f_1"] = TokenFamily("f_1", "app", "m1", "u1", "read", 1000.0, 9e9, 9e9)
    consent_id = await world.lodge([PAYMENT])
    await world.consents.authorize(consent_id, "app", USER, "f_1", by=By.user("u1"))
    await world.consents.consume(consent_id, False, by=By("client:api"))
    rejected = await world.lodge([PAYMENT])
    await world.consents.reject(rejected, "app", USER, by=By.user("u1"))
    revoked = await world.lodge([PAYMENT])
    await world.consents.revoke(revoked, by=By.user("op"))
    assert world.events() == [
        ("consent.created", "client:app", "m_partner"),
        ("consent.authorized", "user:u1", "m1"),
        ("consent.consumed", "client:api", "m1"),
        ("consent.created", "client:app", "m_partner"),
        ("consent.rejected", "user:u1", "m1"),
        ("consent.created", "client:app", "m_partner"),
        ("consent.revoked", "user:op", None),
    ]
    assert all(e.subject and e.subject.startswith("cns_") for e in world.trail.events)


async def test_listing_filters_by_status_as_read_now(world: World) -> None:
    a = await world.lodge([PAYMENT])
    b = await world.lodge([ACCOUNTS])
    await world.consents.authorize(b, "app", USER, "f_1")
    world.clock.advance(700)
    assert [c.consent_id for c in await world.consents.listing(status="expired")] == [a]
    assert [c.consent_id for c in await world.consents.listing(status="authorized")] == [b]
    assert [c.consent_id for c in await world.consents.listing(merchant_id="m1")] == [b]
    assert len(await world.consents.listing(client_id="app")) == 2


def test_only_a_payment_is_single_use() -> None:
    assert single_use(json.dumps([PAYMENT])) and single_use(json.dumps([ACCOUNTS, PAYMENT]))
    assert not single_use(json.dumps([ACCOUNTS])) and not single_use(None)


def test_the_summary_says_what_the_consent_is_for_in_a_line() -> None:
    line = summary(json.dumps([PAYMENT, ACCOUNTS]))
    assert line == "Payment of 10.00 EUR to Shop; Account access: read balances"


async def test_the_json_of_a_consent_shows_its_status_now(world: World) -> None:
    consent = await world.consents.lodge(APP, [PAYMENT])
    assert consent_json(consent, 1000.0)["status"] == "awaiting_authorization"
    assert consent_json(consent, 1600.0)["status"] == "expired"
    assert set(consent_json(consent, 0)) == {
        "consent_id",
        "status",
        "client_id",
        "authorization_details",
        "created_at",
        "expires_at",
        "status_updated_at",
    }


async def test_purge_drops_consents_once_expired(world: World) -> None:
    from tokensmith.core.purge import purge_once

    await world.lodge([PAYMENT])
    kept = await world.lodge([ACCOUNTS])
    await world.consents.authorize(kept, "app", USER, "f_1")  # now lasts 5000 s
    assert (await purge_once(world.store, world.clock, 10, 1800)).consents == 0
    world.clock.advance(601)
    assert (await purge_once(world.store, world.clock, 10, 1800)).consents == 1
    assert list(world.store.consent_resources) == [kept]
