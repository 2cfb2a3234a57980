"""The core wired to the in-memory store: no HTTP, no SQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.core_flow import make_service
from tokensmith.core.admin import ClientSpec, create_client
from tokensmith.core.clock import FrozenClock
from tokensmith.core.grants.client_credentials import client_credentials
from tokensmith.core.keyring import KeyRing
from tokensmith.core.models import Client
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.requests import ClientCredentials, TokenRequest
from tokensmith.core.service import TokenService
from tokensmith.core.tokens import IssuePolicy
from tokensmith.storage.cache import CachingClientStore
from tokensmith.storage.memory import MemoryStore

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


@pytest.fixture
async def core(clock: FrozenClock) -> Core:
    store = MemoryStore()
    service = await make_service(store, clock, {"client_credentials": client_credentials})
    return Core(store, service.clients, service, service.keyring, clock)  # type: ignore[arg-type]


POLICY_JWT = IssuePolicy("jwt", 3600)
POLICY_OPAQUE = IssuePolicy("opaque", 7200)
