"""The core wired to the in-memory store: no HTTP, no SQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tokensmith.core.admin import ClientSpec, create_client
from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.clock import FrozenClock
from tokensmith.core.families import RefreshTokens
from tokensmith.core.grants import GrantTable
from tokensmith.core.grants.client_credentials import client_credentials
from tokensmith.core.keyring import KeyRing
from tokensmith.core.keys import KeySealer
from tokensmith.core.models import Client
from tokensmith.core.ports import RevocationLookup
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.requests import ClientCredentials, TokenRequest
from tokensmith.core.service import TokenService
from tokensmith.core.tokens import IssuePolicy, TokenMinter
from tokensmith.storage.cache import CachingClientStore
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.ratelimit import MemoryLimiter

ISSUER = "https://auth.example.test"


@dataclass
class Core:
    store: MemoryStore
    clients: CachingClientStore
    service: TokenService
    keyring: KeyRing
    clock: FrozenClock

    async def client(self, **spec: object) -> tuple[Client, str]:
        spec.setdefault("name", "c")
        spec.setdefault("scope", "read write")
        client, secret = await create_client(
            self.store,
            self.clock,
            SystemRandomness(),
            ClientSpec(**spec),
            86400,  # type: ignore[arg-type]
        )
        return client, secret or ""

    def request(self, client_id: str, secret: str | None, **params: str) -> TokenRequest:
        method = "client_secret_basic" if secret is not None else "none"
        return TokenRequest(
            params.pop("grant_type", "client_credentials"),
            params,
            ClientCredentials(client_id, secret, method),  # type: ignore[arg-type]
            "198.51.100.1",
        )


async def make_service(
    store: MemoryStore,
    clock: FrozenClock,
    grants: GrantTable,
    *,
    client_cache_ttl: float = 2.0,
    hooks: bool = False,
    revocations: RevocationLookup | None = None,
) -> TokenService:
    """A token service over ``store``, as ``build_context`` wires one; ``hooks`` adds the
    refresh-token introspection and revocation."""
    rand = SystemRandomness()
    clients = CachingClientStore(store, clock, client_cache_ttl)
    keyring = KeyRing(store, KeySealer(["k" * 32]), clock, rand, ISSUER)
    await keyring.ensure("ES256")
    minter = TokenMinter(keyring, store, clock, rand, ISSUER, ISSUER)
    auth = ClientAuthenticator(clients, clock, MemoryLimiter(clock), FailureLimits())
    refresh = RefreshTokens(store, clients, clock, minter.binding)
    return TokenService(
        store,
        clients,
        auth,
        minter,
        keyring,
        clock,
        rand,
        grants,
        revocations=revocations,
        introspectors=(refresh.introspect,) if hooks else (),
        revokers=(refresh.revoke,) if hooks else (),
    )


@pytest.fixture
async def core(clock: FrozenClock) -> Core:
    store = MemoryStore()
    service = await make_service(store, clock, {"client_credentials": client_credentials})
    return Core(store, service.clients, service, service.keyring, clock)  # type: ignore[arg-type]


POLICY_JWT = IssuePolicy("jwt", 3600)
POLICY_OPAQUE = IssuePolicy("opaque", 7200)
