"""Pushed authorization requests (RFC 9126) in the core, on the in-memory store: the push
(§2.1-§2.3), the authorization endpoint's resolution of a ``request_uri`` (§4), the
single use, the PAR requirement (§4-§6) and the refusal of unsupported extensions."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from tests.partner import pkce_pair
from tokensmith.core import errors
from tokensmith.core.admin import ClientSpec, create_client
from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.authorize import AuthorizationRequest, resolve_target
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import token_key
from tokensmith.core.extensions import refuse_unsupported
from tokensmith.core.families import PartnerPolicy
from tokensmith.core.models import Client
from tokensmith.core.par import REQUEST_URI_PREFIX, ParPolicy, PushedRequests
from tokensmith.core.randomness import SystemRandomness
from tokensmith.core.requests import ClientCredentials
from tokensmith.storage.cache import CachingClientStore
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.ratelimit import MemoryLimiter

CB = "https://partner.example/cb"
TAG = "0123456789abcdef"


@dataclass
class Par:
    store: MemoryStore
    clients: CachingClientStore
    auth: ClientAuthenticator
    par: PushedRequests
    clock: FrozenClock
    app: Client
    secret: str

    def creds(self, client: Client | None = None, secret: str | None = None) -> ClientCredentials:
        client = client or self.app
        if client.public:
            return ClientCredentials(client.client_id, None, "none")
        return ClientCredentials(client.client_id, secret or self.secret, "client_secret_basic")

    def form(self, **extra: str | None) -> dict[str, str]:
        base: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": CB,
            "scope": "read",
            "state": "st",
        }
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    async def push(self, **extra: str | None) -> str:
        pushed = await self.par.push(self.form(**extra), self.creds(), "198.51.100.1")
        return pushed.request_uri

    async def request(self, params: dict[str, list[str]]) -> AuthorizationRequest:
        resolved = await self.par.resolve(params)
        target = await resolve_target(self.clients, resolved.params)
        return await self.par.validate(target, resolved)

    async def pushed(self, **extra: str | None) -> AuthorizationRequest:
        uri = await self.push(**extra)
        return await self.request({"client_id": [self.app.client_id], "request_uri": [uri]})


async def make_par(clock: FrozenClock, *, required: bool = False, **spec: Any) -> Par:
    store = MemoryStore()
    rand = SystemRandomness()
    clients = CachingClientStore(store, clock, 0)
    auth = ClientAuthenticator(clients, clock, MemoryLimiter(clock), FailureLimits())
    policy = ParPolicy(lifetime=60, required=required)
    par = PushedRequests(store, clients, auth, clock, rand, PartnerPolicy(), policy, TAG)
    spec.setdefault("name", "app")
    spec.setdefault("scope", "read write")
    spec.setdefault("grant_types", ("authorization_code",))
    spec.setdefault("redirect_uris", (CB,))
    app, secret = await create_client(store, clock, rand, ClientSpec(**spec), 86400)
    return Par(store, clients, auth, par, clock, app, secret or "")


@pytest.fixture
async def p(clock: FrozenClock) -> Par:
    return await make_par(clock)


# -- the push ---------------------------------------------------------------------------------


async def test_push_answers_a_urn_with_256_random_bits_and_stores_only_its_hash(p: Par) -> None:
    pushed = await p.par.push(p.form(), p.creds(), "198.51.100.1")
    assert pushed.expires_in == 60
    assert pushed.request_uri.startswith(REQUEST_URI_PREFIX)
    reference = pushed.request_uri.removeprefix(REQUEST_URI_PREFIX)
    assert len(reference) >= 43  # a millisecond prefix, then 256 random bits in base64url
    [(key, stored)] = p.store.pushed_requests.items()
    assert key == token_key(reference) and key == stored.request_hash
    assert reference not in repr(p.store.pushed_requests) and reference not in str(stored)
    assert stored.client_id == p.app.client_id and stored.issuer_tag == TAG
    assert stored.expires_at == p.clock.now() + 60 and stored.used_at is None


async def test_two_pushes_get_different_request_uris(p: Par) -> None:
    assert await p.push() != await p.push()


async def test_the_client_secret_of_a_post_push_is_not_stored(p: Par) -> None:
    creds = ClientCredentials(p.app.client_id, p.secret, "client_secret_post")
    await p.par.push(p.form(client_secret=p.secret), creds, "198.51.100.1")
    [stored] = p.store.pushed_requests.values()
    assert "client_secret" not in dict(stored.params)
    assert p.secret not in repr(stored.params)


@pytest.mark.parametrize(
    ("extra", "error", "text"),
    [
        ({"request_uri": REQUEST_URI_PREFIX + "x"}, errors.InvalidRequest, "request_uri"),
        ({"client_id": None}, errors.InvalidRequest, "client_id is missing"),
        ({"client_id": "someone-else"}, errors.InvalidRequest, "authenticated client"),
        ({"redirect_uri": "https://evil.example/cb"}, errors.InvalidRequest, "not registered"),
        ({"response_type": "token"}, errors.UnsupportedResponseType, "response_type"),
        ({"response_type": None}, errors.InvalidRequest, "response_type"),
        ({"scope": "read admin"}, errors.InvalidScope, "admin"),
        ({"code_challenge_method": "S256"}, errors.InvalidRequest, "code_challenge"),
        ({"resource": "https://api.example"}, errors.InvalidTarget, "resource"),
        ({"request": "eyJhbGciOi.x.y"}, errors.RequestNotSupported, "not supported"),
        ({"authorization_details": "[]"}, errors.InvalidAuthorizationDetails, "non-empty"),
    ],
    ids=[
        "request-uri-pushed",
        "no-client-id",
        "other-client-id",
        "foreign-redirect",
        "implicit",
        "no-response-type",
        "scope",
        "method-without-challenge",
        "resource",
        "request-object",
        "authorization-details",
    ],
)
async def test_a_bad_push_is_refused_and_nothing_is_stored(
    p: Par, extra: dict[str, str | None], error: type[errors.OAuthError], text: str
) -> None:
    with pytest.raises(error) as info:
        await p.push(**extra)
    assert text in info.value.description
    assert info.value.client_id == p.app.client_id
    assert p.store.pushed_requests == {}


@pytest.mark.parametrize(
    "creds",
    [None, "wrong-secret", "no-secret", "unknown-client"],
)
async def test_a_push_without_valid_client_authentication_is_invalid_client(
    p: Par, creds: str | None
) -> None:
    presented = {
        None: None,
        "wrong-secret": ClientCredentials(p.app.client_id, "nope", "client_secret_basic"),
        "no-secret": ClientCredentials(p.app.client_id, None, "none"),
        "unknown-client": ClientCredentials("nobody", "nope", "client_secret_post"),
    }[creds]
    with pytest.raises(errors.InvalidClient):
        await p.par.push(p.form(), presented, "198.51.100.1")
    assert p.store.pushed_requests == {}


async def test_a_client_without_the_code_grant_is_unauthorized_client(clock: FrozenClock) -> None:
    p = await make_par(clock, grant_types=("client_credentials",))
    with pytest.raises(errors.UnauthorizedClient):
        await p.push()


async def test_a_public_client_pushes_with_its_client_id_and_pkce(clock: FrozenClock) -> None:
    p = await make_par(clock, public=True)
    with pytest.raises(errors.InvalidRequest, match="PKCE"):
        await p.push()
    _, challenge = pkce_pair()
    req = await p.pushed(code_challenge=challenge, code_challenge_method="S256")
    assert req.code_challenge == challenge


async def test_require_pkce_holds_at_the_push_for_confidential_clients(clock: FrozenClock) -> None:
    p = await make_par(clock)
    strict = PushedRequests(
        p.store,
        p.clients,
        p.auth,
        clock,
        SystemRandomness(),
        PartnerPolicy(require_pkce=True),
        ParPolicy(),
        TAG,
    )
    with pytest.raises(errors.InvalidRequest, match="PKCE"):
        await strict.push(p.form(), p.creds(), "198.51.100.1")


# -- the authorization endpoint ----------------------------------------------------------------


async def test_the_pushed_request_is_the_request_and_the_query_is_ignored(p: Par) -> None:
    _, challenge = pkce_pair()
    uri = await p.push(
        scope="read", state="pushed", code_challenge=challenge, code_challenge_method="S256"
    )
    query = {
        "client_id": [p.app.client_id],
        "request_uri": [uri],
        "scope": ["read write"],
        "state": ["from-the-query"],
        "redirect_uri": ["https://evil.example/cb"],
        "resource": ["https://api.example"],
    }
    req = await p.request(query)
    assert req.scopes == ("read",) and req.state == "pushed"
    assert req.target.redirect_uri == CB and req.code_challenge == challenge
    assert req.request_uri == uri


async def test_a_request_without_request_uri_is_its_own(p: Par) -> None:
    req = await p.request({k: [v] for k, v in p.form(scope="write").items()})
    assert req.scopes == ("write",) and req.request_uri is None


@pytest.mark.parametrize(
    "case", ["unknown", "not-ours", "other-client", "expired", "used", "other-issuer", "empty-ref"]
)
async def test_an_unusable_request_uri_is_invalid_request_uri(
    clock: FrozenClock, p: Par, case: str
) -> None:
    uri = await p.push()
    client_id = p.app.client_id
    if case == "unknown":
        uri = REQUEST_URI_PREFIX + "0" * 55
    elif case == "not-ours":
        uri = "https://client.example/request.jwt"
    elif case == "other-client":
        other, _ = await create_client(
            p.store,
            clock,
            SystemRandomness(),
            ClientSpec("other", grant_types=("authorization_code",), redirect_uris=(CB,)),
            86400,
        )
        client_id = other.client_id
    elif case == "expired":
        clock.advance(60)
    elif case == "used":
        await p.par.spend(await p.request({"client_id": [client_id], "request_uri": [uri]}))
    elif case == "other-issuer":
        [(key, stored)] = p.store.pushed_requests.items()
        p.store.pushed_requests[key] = dataclasses.replace(stored, issuer_tag="f" * 16)
    elif case == "empty-ref":
        uri = REQUEST_URI_PREFIX
    with pytest.raises(errors.InvalidRequestUri):
        await p.par.resolve({"client_id": [client_id], "request_uri": [uri]})


async def test_a_request_uri_without_client_id_is_invalid_request(p: Par) -> None:
    uri = await p.push()
    with pytest.raises(errors.InvalidRequest, match="client_id"):
        await p.par.resolve({"request_uri": [uri]})


async def test_the_request_uri_stays_usable_until_it_is_spent(p: Par) -> None:
    uri = await p.push()
    query = {"client_id": [p.app.client_id], "request_uri": [uri]}
    for _ in range(3):  # the login page, a reload, the consent form
        req = await p.request(query)
    await p.par.spend(req)
    with pytest.raises(errors.InvalidRequestUri, match="already used"):
        await p.par.spend(req)
    with pytest.raises(errors.InvalidRequestUri, match="already used"):
        await p.request(query)


async def test_of_parallel_spends_exactly_one_wins(p: Par) -> None:
    req = await p.pushed()
    results = await asyncio.gather(*(p.par.spend(req) for _ in range(10)), return_exceptions=True)
    assert results.count(None) == 1
    assert all(isinstance(r, errors.InvalidRequestUri) for r in results if r is not None)


async def test_a_request_uri_expiring_before_the_decision_cannot_be_spent(p: Par) -> None:
    req = await p.pushed()
    p.clock.advance(60)
    with pytest.raises(errors.InvalidRequestUri):
        await p.par.spend(req)


async def test_a_request_sent_in_the_query_spends_nothing(p: Par) -> None:
    req = await p.request({k: [v] for k, v in p.form().items()})
    await p.par.spend(req)
    assert p.store.pushed_requests == {}


async def test_the_push_is_validated_again_at_the_authorization_endpoint(p: Par) -> None:
    uri = await p.push(scope="read write")
    narrower = p.app.evolve(scopes=("read",))
    await p.store.update_client(narrower)
    with pytest.raises(errors.InvalidScope):
        await p.request({"client_id": [p.app.client_id], "request_uri": [uri]})


# -- requiring PAR -----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["server", "client"])
async def test_a_client_that_must_push_is_refused_in_the_query(
    clock: FrozenClock, where: str
) -> None:
    p = await make_par(clock, required=where == "server", require_par=where == "client")
    with pytest.raises(errors.InvalidRequest, match="PAR"):
        await p.request({k: [v] for k, v in p.form().items()})
    assert (await p.pushed()).request_uri is not None


async def test_require_par_applies_to_that_client_only(clock: FrozenClock) -> None:
    p = await make_par(clock, require_par=True)
    assert p.par.required_for(p.app)
    assert not p.par.required_for(p.app.evolve(require_par=False))


# -- purge -------------------------------------------------------------------------------------


async def test_purge_deletes_expired_pushed_requests(p: Par) -> None:
    from tokensmith.core.purge import purge_once

    await p.push()
    assert (await purge_once(p.store, p.clock, 10, 1800)).pushed_requests == 0
    p.clock.advance(61)
    assert (await purge_once(p.store, p.clock, 10, 1800)).pushed_requests == 1
    assert p.store.pushed_requests == {}


# -- unsupported extensions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "authorization", "error"),
    [
        (["request"], True, errors.RequestNotSupported),
    ],
)
def test_unsupported_extensions_are_refused(
    names: list[str], authorization: bool, error: type[errors.OAuthError]
) -> None:
    with pytest.raises(error) as info:
        refuse_unsupported(names, authorization=authorization)
    assert "not supported" in info.value.description


def test_request_means_nothing_at_the_token_endpoint() -> None:
    refuse_unsupported(["request", "grant_type", "scope"], authorization=False)
