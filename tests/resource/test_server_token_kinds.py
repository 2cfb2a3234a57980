"""The guard accepts access tokens and nothing else: every kind of token tokensmith hands
out, presented as a bearer token to an API that ``tokensmith.resource`` protects, checked
against the real server in process (RFC 6750 §3.1, RFC 7662 §2.2, RFC 9068 §4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import SECRET_KEY, Harness
from tests.partner import make_partner, pkce_pair

from tokensmith.core.keys import KeySealer, load_key
from tokensmith.resource import (
    AccessToken,
    BearerAuthMiddleware,
    InvalidToken,
    SyncTokenValidator,
    TokenValidator,
    require_scopes,
)

ISSUER = "https://auth.example.test"  # make_settings' issuer; the audience defaults to it

ACCESS_KINDS = ("access JWT", "access JWT of a partner app", "access opaque")
REFUSED_KINDS = (
    "refresh token",
    "authorization code",
    "client secret",
    "JWT of the server's key, typ JWT",
    "JWT of the server's key, no typ",
)


@dataclass
class Server:
    h: Harness
    tokens: dict[str, str]
    rs_id: str
    rs_secret: str

    def validator_kwargs(self) -> dict[str, Any]:
        return {
            "client_id": self.rs_id,
            "client_secret": self.rs_secret,
            "clock": self.h.clock.now,
        }


async def _signed_by_the_server(h: Harness, typ: str | None, claims: dict[str, object]) -> str:
    """A JWT signed with the server's own signing key, but not typed as an access token:
    what an ID token or any other JWT of the same key would look like."""
    record = (await h.ctx.store.list_signing_keys())[-1]
    key = load_key(record, KeySealer([SECRET_KEY]))
    headers: dict[str, object] = {"kid": key.kid, "typ": typ}
    if typ is None:
        del headers["typ"]
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=headers)


async def _every_kind(h: Harness) -> dict[str, str]:
    tokens: dict[str, str] = {}
    jwt_client, jwt_secret = await h.client(name="jwt key", token_format="jwt")
    r = await h.token(jwt_client.client_id, jwt_secret)
    tokens["access JWT"] = r.json()["access_token"]
    opaque_client, opaque_secret = await h.client(name="opaque key", token_format="opaque")
    r = await h.token(opaque_client.client_id, opaque_secret)
    tokens["access opaque"] = r.json()["access_token"]
    tokens["client secret"] = opaque_secret
    partner = await make_partner(h)
    pair = await partner.tokens()
    tokens["access JWT of a partner app"] = pair["access_token"]
    tokens["refresh token"] = pair["refresh_token"]
    _, challenge = pkce_pair()
    tokens["authorization code"] = await partner.code(
        code_challenge=challenge, code_challenge_method="S256"
    )
    claims = jwt.decode(tokens["access JWT"], options={"verify_signature": False})
    for name, typ in (("typ JWT", "JWT"), ("no typ", None)):
        tokens[f"JWT of the server's key, {name}"] = await _signed_by_the_server(h, typ, claims)
    return tokens


@pytest.fixture
async def server(harness: Harness) -> Server:
    rs, rs_secret = await harness.client(name="payments api", scope="introspection")
    return Server(harness, await _every_kind(harness), rs.client_id, rs_secret)


@require_scopes("read")
async def payments(request: Request) -> JSONResponse:
    token: AccessToken = request.state.access_token
    return JSONResponse({"client_id": token.client_id, "kind": token.kind})


@pytest.fixture
async def api(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """An API behind BearerAuthMiddleware whose validator asks the server in process."""
    validator = TokenValidator(
        ISSUER, ISSUER, http_client=server.h.http, **server.validator_kwargs()
    )
    app = Starlette(
        routes=[Route("/payments/", payments)],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as http:
        yield http


@pytest.mark.parametrize("kind", ACCESS_KINDS)
async def test_access_tokens_pass_the_guard(api: httpx.AsyncClient, server: Server, kind: str):
    for _ in range(2):  # the second time from the validator's caches
        r = await api.get("/payments/", headers={"Authorization": f"Bearer {server.tokens[kind]}"})
        assert r.status_code == 200, r.text
        assert r.json()["kind"] == ("opaque" if kind == "access opaque" else "jwt")


@pytest.mark.parametrize("kind", REFUSED_KINDS)
async def test_other_tokens_are_refused_by_the_guard(
    api: httpx.AsyncClient, server: Server, kind: str
):
    for _ in range(2):  # the second time from the validator's caches
        r = await api.get("/payments/", headers={"Authorization": f"Bearer {server.tokens[kind]}"})
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert r.json()["error"] == "invalid_token"


async def test_introspection_says_what_each_token_is(server: Server):
    """RFC 7662 §2.2 ``token_type``: ``Bearer`` for access tokens, ``refresh_token`` (the
    RFC 7009 §2.1 hint's word) for refresh tokens; anything else is inactive."""
    expected = dict.fromkeys(ACCESS_KINDS, "Bearer") | {"refresh token": "refresh_token"}
    for kind, token in server.tokens.items():
        r = await server.h.http.post(
            "/oauth/introspect", data={"token": token}, auth=(server.rs_id, server.rs_secret)
        )
        body = r.json()
        if kind in expected:
            assert body["active"] is True and body["token_type"] == expected[kind], kind
        else:
            assert body == {"active": False}, kind


def _sync_transport(http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> httpx.Client:
    """A blocking client whose requests the in-process server answers on ``loop``."""

    def forward(request: httpx.Request) -> httpx.Response:
        sent = http.request(
            request.method, str(request.url), headers=request.headers, content=request.content
        )
        response = asyncio.run_coroutine_threadsafe(sent, loop).result(timeout=30)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    return httpx.Client(transport=httpx.MockTransport(forward))


async def test_sync_validator_accepts_access_tokens_only(server: Server):
    http = _sync_transport(server.h.http, asyncio.get_running_loop())
    validator = SyncTokenValidator(ISSUER, ISSUER, http_client=http, **server.validator_kwargs())

    def outcome(token: str) -> str:
        try:
            return validator.validate(token).kind
        except InvalidToken:
            return "refused"

    for _ in range(2):  # the second time from the validator's caches
        for kind, token in server.tokens.items():
            got = await asyncio.to_thread(outcome, token)
            if kind in ACCESS_KINDS:
                assert got == ("opaque" if kind == "access opaque" else "jwt"), kind
            else:
                assert got == "refused", kind
    assert validator.introspections == len(server.tokens) - 4  # opaque ones, asked once each


async def test_a_deleted_clients_opaque_token_is_refused_by_the_guard(
    api: httpx.AsyncClient, server: Server
):
    """Within the validator's ``introspection_cache_ttl`` (60 s) of the deletion: the
    server answers inactive at once (its client cache is told)."""
    bearer = {"Authorization": f"Bearer {server.tokens['access opaque']}"}
    r = await api.get("/payments/", headers=bearer)
    assert r.status_code == 200, r.text
    assert await server.h.ctx.client_admin.delete(r.json()["client_id"]) is True
    server.h.clock.advance(60)
    r = await api.get("/payments/", headers=bearer)
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
