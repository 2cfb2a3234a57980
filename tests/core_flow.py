"""The core's partner flow (authorization code and refresh token grants) on a store,
without HTTP, and the refresh-token reuses of RFC 9700 §4.14.2 as a table, for the core's
tests (in memory) and the storage tests (each form of the rotation rule)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.partner import FAST_PASSWORDS, PASSWORD
from tokensmith.core.accounts import create_user
from tokensmith.core.admin import ClientSpec, create_client, create_merchant
from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.authorize import AuthorizationRequest, AuthorizationTarget, issue_code
from tokensmith.core.clock import FrozenClock
from tokensmith.core.families import PartnerPolicy, RefreshTokens
from tokensmith.core.grants import GrantTable
from tokensmith.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.core.keyring import KeyRing
from tokensmith.core.keys import KeySealer
from tokensmith.core.models import Client, IssuedToken, User
from tokensmith.core.ports import RevocationLookup, Store
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.requests import ClientCredentials, TokenRequest
from tokensmith.core.service import TokenService
from tokensmith.core.tokens import IssuePolicy, TokenMinter
from tokensmith.storage.cache import CachingClientStore
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.ratelimit import MemoryLimiter

ISSUER = "https://auth.example.test"
CB = "https://partner.example/cb"
POLICY = IssuePolicy("jwt", 3600)


@dataclass
class Flow:
    store: Any  # a MemoryStore unless make_flow was given another store
    service: TokenService
    clock: FrozenClock
    policy: PartnerPolicy
    app: Client
    secret: str
    user: User

    def request(
        self, grant: str, client: Client | None = None, secret: str | None = None, **p: str
    ) -> TokenRequest:
        client = client or self.app
        creds = ClientCredentials(client.client_id, secret or self.secret, "client_secret_basic")
        return TokenRequest(grant, p, creds, "198.51.100.1")

    async def code(
        self, scope: tuple[str, ...] = ("read", "write"), challenge: str | None = None
    ) -> str:
        target = AuthorizationTarget(self.app, CB, True)
        req = AuthorizationRequest(target, scope, "s", challenge)
        tag = self.service.minter.binding.tag
        return await issue_code(
            self.store, self.clock, SystemRandomness(), req, self.user, self.policy, tag
        )

    async def exchange(self, code: str, **p: str) -> IssuedToken:
        p.setdefault("redirect_uri", CB)
        _, issued = await self.service.token(
            self.request("authorization_code", code=code, **p), POLICY
        )
        return issued

    async def refresh(self, token: str | None, **p: str) -> IssuedToken:
        assert token is not None
        req = self.request("refresh_token", refresh_token=token, **p)
        _, issued = await self.service.token(req, POLICY)
        return issued

    async def active(self, token: str | None) -> bool:
        assert token is not None
        return bool((await self.service.introspect(token, self.app))["active"])


async def make_service(
    store: Any,
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


async def make_flow(clock: FrozenClock, store: Store | None = None, **policy: object) -> Flow:
    """The core on ``store`` (a new :class:`MemoryStore` by default) with a merchant, an
    admin user and a confidential client ``app`` of both partner grants."""
    store = MemoryStore() if store is None else store
    rand = SystemRandomness()
    pol = PartnerPolicy(**policy)  # type: ignore[arg-type]
    grants = {
        "authorization_code": AuthorizationCodeGrant(pol),
        "refresh_token": RefreshTokenGrant(pol),
    }
    service = await make_service(store, clock, grants, client_cache_ttl=0, hooks=True)
    merchant = await create_merchant(store, clock, rand, "Shop")
    spec = ClientSpec(
        "app", "read write", ("authorization_code", "refresh_token"), redirect_uris=(CB,)
    )
    app, secret = await create_client(store, clock, rand, spec, 86400)
    user = await create_user(
        store,
        store,
        FAST_PASSWORDS,
        clock,
        rand,
        email="a@shop.test",
        password=PASSWORD,
        role="admin",
        merchant=merchant.merchant_id,
    )
    assert secret is not None
    return Flow(store, service, clock, pol, app, secret, user)


@dataclass
class LostAnswer:
    """A client exchanged ``older`` for ``held`` and got the answer; it presents ``held``,
    the exchange commits, and its answer (``lost``) never arrives. ``held`` is the token
    the family spent last, and the only one the client has."""

    flow: Flow
    older: IssuedToken
    held: IssuedToken
    lost: IssuedToken


async def lost_answer(
    clock: FrozenClock, store: Store | None = None, **policy: object
) -> LostAnswer:
    flow = await make_flow(clock, store, **policy)
    older = await flow.exchange(await flow.code())
    held = await flow.refresh(older.refresh_token)
    clock.advance(5)
    lost = await flow.refresh(held.refresh_token)
    return LostAnswer(flow, older, held, lost)


# -- reuse: each presents a token the grace window does not cover --------------------------


async def older_than_the_last_spent(s: LostAnswer, clock: FrozenClock) -> str | None:
    clock.advance(1)
    return s.older.refresh_token


async def the_last_spent_a_second_time(s: LostAnswer, clock: FrozenClock) -> str | None:
    await s.flow.refresh(s.held.refresh_token)
    return s.held.refresh_token


async def the_last_spent_after_the_grace(s: LostAnswer, clock: FrozenClock) -> str | None:
    clock.advance(31)
    return s.held.refresh_token


async def the_last_spent_once_its_successor_was_used(
    s: LostAnswer, clock: FrozenClock
) -> str | None:
    await s.flow.refresh(s.lost.refresh_token)  # the answer had arrived after all
    return s.held.refresh_token


async def the_superseded_successor(s: LostAnswer, clock: FrozenClock) -> str | None:
    await s.flow.refresh(s.held.refresh_token)  # the retry: the lost pair is superseded
    return s.lost.refresh_token


async def the_last_spent_with_no_grace(s: LostAnswer, clock: FrozenClock) -> str | None:
    return s.held.refresh_token


Reuse = Callable[[LostAnswer, FrozenClock], Awaitable[str | None]]

#: ``(refresh_grace, reuse)``: every way of presenting a spent token again that is reuse.
REUSES: list[tuple[int, Reuse]] = [
    (30, older_than_the_last_spent),
    (30, the_last_spent_a_second_time),
    (30, the_last_spent_after_the_grace),
    (30, the_last_spent_once_its_successor_was_used),
    (30, the_superseded_successor),
    (0, the_last_spent_with_no_grace),
]
REUSE_IDS = [
    "older-than-the-last-spent",
    "last-spent-a-second-time",
    "last-spent-after-the-grace",
    "last-spent-once-its-successor-was-used",
    "superseded-successor",
    "last-spent-with-no-grace",
]
