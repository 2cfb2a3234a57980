"""Dynamic client registration in the core, on the in-memory store: the service audits
what it does (never a secret), keeps only hashes, gives clients the initial token's
merchant, and its metadata rules hold without HTTP."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tokensmith.core.audit import Audit, MemoryAuditTrail
from tokensmith.core.client_admin import ClientAdmin
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.errors import InvalidToken, RateLimited
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.models import Merchant
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.registration import (
    InitialTokens,
    InvalidClientMetadata,
    InvalidRedirectUri,
    RegistrationPolicy,
    Registrations,
    spec_from_metadata,
)
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.ratelimit import MemoryLimiter

KEY = {"client_name": "Backend", "grant_types": ["client_credentials"]}


@dataclass
class Reg:
    store: MemoryStore
    trail: MemoryAuditTrail
    service: Registrations
    clock: FrozenClock


def _reg(mode: str = "open", per_address: int = 20) -> Reg:
    store, clock, rand = MemoryStore(), FrozenClock(), SystemRandomness()
    trail = MemoryAuditTrail()
    audit = Audit(trail, clock, rand)
    admin = ClientAdmin(store, clock, rand, max_ttl=86400, audit=audit)
    policy = RegistrationPolicy(mode=mode, scopes=("read", "write"), per_address=per_address)  # type: ignore[arg-type]
    service = Registrations(
        admin,
        InitialTokens(store, clock, rand),
        clock,
        rand,
        policy,
        audit,
        MemoryLimiter(clock),
        Fingerprints.ephemeral(),
    )
    return Reg(store, trail, service, clock)


async def test_a_registration_is_audited_without_its_secrets() -> None:
    r = _reg()
    made = await r.service.register(KEY, None, "198.51.100.4")
    [event] = r.trail.events
    assert event.type == "client.registered" and event.outcome == "success"
    assert event.subject == made.client.client_id and event.actor == "anonymous"
    assert event.source == "198.51.100.4"
    shown = repr(event)
    assert made.client_secret and made.client_secret not in shown
    assert made.access_token and made.access_token not in shown


async def test_only_hashes_are_stored() -> None:
    r = _reg()
    made = await r.service.register(KEY, None, "x")
    stored = r.store.clients[made.client.client_id]
    assert made.access_token is not None and made.client_secret is not None
    assert stored.registration_token_hash == hash_secret(made.access_token)
    assert stored.secrets[0].secret_hash == hash_secret(made.client_secret)
    assert made.access_token not in repr(made) and made.client_secret not in repr(made)


async def test_a_refused_registration_is_audited_as_a_failure() -> None:
    r = _reg()
    with pytest.raises(InvalidRedirectUri):
        await r.service.register({"client_name": "no redirect"}, None, "x")
    [event] = r.trail.events
    assert event.outcome == "failure" and event.details["reason"] == "invalid_redirect_uri"


async def test_updates_and_deletes_are_audited_as_the_client() -> None:
    r = _reg()
    made = await r.service.register(KEY, None, "x")
    cid, rat = made.client.client_id, made.access_token
    updated = await r.service.update(cid, rat, KEY | {"client_id": cid, "client_name": "B2"}, "x")
    await r.service.delete(cid, updated.access_token, "x")
    types = [(e.type, e.actor, e.source) for e in r.trail.events]
    assert types[1:] == [
        ("client.registration_updated", f"client:{cid}", "x"),
        ("client.registration_deleted", f"client:{cid}", "x"),
    ]
    assert r.trail.events[1].details["fields"] == "name"
    assert cid not in r.store.clients


async def test_the_initial_tokens_merchant_owns_the_client_and_is_audited() -> None:
    r = _reg("initial_access_token")
    await r.store.add_merchant(Merchant("m1", "Shop", 0.0))
    token, plain = await r.service.tokens.create(merchant_id="m1")
    made = await r.service.register(KEY, plain, "x")
    assert made.client.merchant_id == "m1"
    assert r.trail.events[0].actor == f"initial_access:{token.token_id}"
    assert r.trail.events[0].merchant_id == "m1"


async def test_the_initial_token_mode_refuses_without_a_token() -> None:
    r = _reg("initial_access_token")
    with pytest.raises(InvalidToken):
        await r.service.register(KEY, None, "x")


async def test_the_rate_limit_counts_per_address() -> None:
    r = _reg(per_address=1)
    await r.service.register(KEY, None, "a")
    with pytest.raises(RateLimited):
        await r.service.register(KEY, None, "a")
    await r.service.register(KEY, None, "b")
    r.clock.advance(3601)
    await r.service.register(KEY, None, "a")


@pytest.mark.parametrize(
    "metadata",
    [
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
        {"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]},
        {"grant_types": ["client_credentials"], "scope": "admin"},
    ],
)
def test_metadata_rules_hold_without_http(metadata: dict[str, object]) -> None:
    with pytest.raises(InvalidClientMetadata):
        spec_from_metadata(metadata, ("read",), None)


def test_defaults_follow_rfc_7591() -> None:
    spec = spec_from_metadata({"redirect_uris": ["https://a.example/cb"]}, ("read",), None)
    assert spec.grant_types == ("authorization_code",)
    assert spec.auth_method == "client_secret_basic"
    assert spec.scope == "read" and spec.name == "Registered client"
