"""Authorizations in the core (:class:`tokensmith.core.authorizations.Authorizations`):
codes, remembered consents, what a user or a merchant has authorized, and withdrawing it.
RFC 6749 §4.1, RFC 8252 §8.6 (public clients are never approved silently)."""

from __future__ import annotations

import dataclasses

import pytest

from tokensmith.core.authorizations import Authorizations
from tokensmith.core.authorize import AuthorizationRequest, AuthorizationTarget
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import token_key
from tokensmith.core.families import PartnerPolicy
from tokensmith.core.models import (
    AccessTokenRecord,
    Client,
    Grantor,
    Merchant,
    RefreshTokenRecord,
    TokenFamily,
    User,
    Withdrawal,
)
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore

CB = "https://partner.example/cb"
GRANTS = ("authorization_code", "refresh_token")
ANN = User("u1", "ann@shop.test", "$argon2id$x", "admin", "m1", 1.0)
BOB = User("u2", "bob@shop.test", "$argon2id$x", "member", "m1", 1.0)
EVE = User("u3", "eve@other.test", "$argon2id$x", "admin", "m2", 1.0)
OPS = User("op", "op@ts.test", "$argon2id$x", "operator", None, 1.0)


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    for m in ("m1", "m2"):
        await s.add_merchant(Merchant(m, f"Shop {m}", 1.0))
    for user in (ANN, BOB, EVE, OPS):
        await s.add_user(user)
    await s.add_client(Client("app", "Ledger Sync", ("read", "write"), grant_types=GRANTS))
    await s.add_client(
        Client("pub", "Phone", ("read",), grant_types=GRANTS, auth_methods=("none",))
    )
    return s


@pytest.fixture
def authz(store: MemoryStore, clock: FrozenClock) -> Authorizations:
    return Authorizations(
        store, store, store, store, store, store, clock, SystemRandomness(),
        PartnerPolicy(code_ttl=60), "tag-1",
    )  # fmt: skip


async def _request(
    store: MemoryStore, client_id: str = "app", scopes: tuple[str, ...] = ("read",), **kw: str
) -> AuthorizationRequest:
    client = await store.get_client(client_id)
    assert client is not None
    return AuthorizationRequest(AuthorizationTarget(client, CB, True), scopes, "st", None, **kw)


async def _family(store: MemoryStore, fid: str, user: User, expires_at: float) -> None:
    """A family (as a redeemed code leaves it) with an access token."""
    assert user.merchant_id is not None
    family = TokenFamily(fid, "app", user.merchant_id, user.user_id, "write", 10.0, expires_at, 9e9)
    store.families[fid] = family
    store.refresh_tokens[fid * 8] = RefreshTokenRecord(fid * 8, fid, "app", "write", 10.0, 9e9)
    store.tokens[fid] = AccessTokenRecord(fid, "app", "m1", "write", 10.0, 9e9, family_id=fid)


async def test_a_code_is_stored_as_a_hash_bound_to_the_user_and_issuer(
    authz: Authorizations, store: MemoryStore, clock: FrozenClock
) -> None:
    code = await authz.issue_code(await _request(store), ANN)
    stored = await store.find_code(token_key(code))
    assert stored is not None and code not in store.codes
    assert (stored.user_id, stored.merchant_id, stored.client_id) == ("u1", "m1", "app")
    assert (stored.issuer_tag, stored.expires_at) == ("tag-1", clock.now() + 60)


@pytest.mark.parametrize(("user", "refused"), [(ANN, False), (OPS, True)])
def test_only_a_merchants_user_may_authorize_an_app(user: User, refused: bool) -> None:
    assert (Authorizations.refusal(user) is not None) is refused


async def test_a_remembered_consent_covers_what_it_approved_and_grows(
    authz: Authorizations, store: MemoryStore
) -> None:
    read, both = await _request(store), await _request(store, scopes=("read", "write"))
    assert not await authz.covered(ANN, read)
    await authz.remember(ANN, read)
    assert await authz.covered(ANN, read) and not await authz.covered(ANN, both)
    await authz.remember(ANN, await _request(store, scopes=("write",)))
    assert await authz.covered(ANN, both)
    assert not await authz.covered(ANN, await _request(store, prompt="consent"))
    assert not await authz.covered(BOB, read)


async def test_a_public_clients_approval_is_never_remembered(
    authz: Authorizations, store: MemoryStore
) -> None:
    request = await _request(store, "pub")
    await authz.remember(ANN, request)
    assert await store.get_consent("u1", "pub") is None
    assert not await authz.covered(ANN, request)


async def test_a_user_sees_the_apps_they_approved_by_name(
    authz: Authorizations, store: MemoryStore
) -> None:
    await authz.remember(ANN, await _request(store, scopes=("read", "write")))
    [app] = await authz.of_user(ANN)
    assert (app.client_id, app.name, app.remembered) == ("app", "Ledger Sync", True)
    assert list(app.scopes) == ["read", "write"] and "orders" in app.scopes["read"]
    assert await authz.of_user(BOB) == []


async def test_a_merchant_sees_its_users_consents_and_live_families_only(
    authz: Authorizations, store: MemoryStore, clock: FrozenClock
) -> None:
    await authz.remember(ANN, await _request(store))
    await _family(store, "f1", BOB, clock.now() + 60)
    await _family(store, "f2", BOB, clock.now() - 1)  # expired: not an authorization
    await _family(store, "f3", EVE, clock.now() + 60)  # another merchant's
    found = await authz.of_merchant("m1")
    assert list(found) == ["app"]
    app = found["app"]
    assert app.users == {ANN.email, BOB.email} and app.remembered and app.live_grants == 1
    assert set(app.scopes) == {"read", "write"} and app.name == "Ledger Sync"
    assert list(await authz.of_merchant("m2")) == ["app"]


async def test_a_user_withdraws_for_themself_only(
    authz: Authorizations, store: MemoryStore, clock: FrozenClock
) -> None:
    await authz.remember(ANN, await _request(store))
    await authz.remember(BOB, await _request(store))
    await _family(store, "f1", ANN, clock.now() + 60)
    await _family(store, "f2", BOB, clock.now() + 60)
    done = await authz.withdraw(Grantor(user_id="u1"), "app")
    assert done == Withdrawal(consents=1, families=1)
    assert store.families["f1"].revoked_at == clock.now() and store.tokens["f1"].revoked_at
    assert store.families["f2"].revoked_at is None
    assert [a.client_id for a in await authz.of_user(BOB)] == ["app"]


async def test_a_merchant_withdraws_for_all_its_users_and_finds_nothing_the_second_time(
    authz: Authorizations, store: MemoryStore, clock: FrozenClock
) -> None:
    await authz.remember(ANN, await _request(store))
    await _family(store, "f1", BOB, clock.now() + 60)
    await _family(store, "f3", EVE, clock.now() + 60)
    assert await authz.withdraw(Grantor(merchant_id="m1"), "app") == Withdrawal(1, 1)
    assert await authz.of_merchant("m1") == {}
    assert store.families["f3"].revoked_at is None
    assert not await authz.withdraw(Grantor(merchant_id="m1"), "app")
    assert not await authz.withdraw(Grantor(merchant_id="m1"), "unknown-app")


@pytest.mark.parametrize(
    "fields", [{}, {"user_id": "u1", "merchant_id": "m1"}], ids=["neither", "both"]
)
def test_a_grantor_is_exactly_one_of_a_user_and_a_merchant(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="a user or a merchant"):
        Grantor(**fields)


def test_a_withdrawal_is_true_when_it_ended_anything() -> None:
    assert not Withdrawal() and Withdrawal(consents=1) and Withdrawal(families=1)
    assert dataclasses.asdict(Withdrawal(1, 2)) == {"consents": 1, "families": 2}
