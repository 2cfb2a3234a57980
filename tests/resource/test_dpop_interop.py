"""DPoP end to end: tokensmith's client against tokensmith's guard (httpx sync and async,
requests), and the guard against proofs of an independent library, requests-oauth2client;
the client's proofs also pass that library's own checker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwskate
import jwt
import pytest
import requests
import requests_oauth2client as roc
from requests.structures import CaseInsensitiveDict
from requests_oauth2client.dpop import validate_dpop_proof
from resource_fakes import AUDIENCE, ISSUER, FakeIssuer, make_key, mint
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.client import AsyncTokenClient, DPoPKey, RequestsAuth, TokenClient
from tokensmith.resource import (
    AccessToken,
    BearerAuthMiddleware,
    DPoPVerifier,
    HmacNonceSource,
    TokenValidator,
    require_scopes,
)

NOW = 1_700_000_000.0
API = "http://testserver"
SIGNER = make_key("ES256")


def clock() -> float:
    return NOW


class AuthorizationServer:
    """Mints RFC 9068 JWTs bound (cnf.jkt) to the key of the token request's proof."""

    def __init__(self) -> None:
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        form = dict(parse_qsl(request.content.decode()))
        assert form["grant_type"] == "client_credentials"
        header = jwt.get_unverified_header(request.headers["dpop"])
        jkt = jwskate.Jwk(header["jwk"]).thumbprint()
        token = mint(SIGNER, NOW, cnf={"jkt": jkt}, scope="read")
        return httpx.Response(
            200, json={"access_token": token, "token_type": "DPoP", "expires_in": 300}
        )

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.handle(request)


@require_scopes("read")
async def read(request: Request) -> JSONResponse:
    token: AccessToken = request.state.access_token
    return JSONResponse({"client": token.client_id, "jkt": token.claims["cnf"]["jkt"]})


def guard_app(*, nonces: bool, dpop: str = "required") -> Starlette:
    verifier = DPoPVerifier(
        nonces=HmacNonceSource(b"n" * 32, clock=clock) if nonces else None, clock=clock
    )
    validator = TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=FakeIssuer([SIGNER], clock=clock).async_client(),
        clock=clock,
        dpop=dpop,  # type: ignore[arg-type]
        dpop_verifier=verifier,
    )
    return Starlette(
        routes=[Route("/read", read, methods=["GET", "POST"])],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator, required=True)],
    )


class SyncASGITransport(httpx.BaseTransport):
    """Serves an ASGI app to a synchronous httpx client, on an event loop of its own."""

    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def go() -> httpx.Response:
            copy = httpx.Request(
                request.method, request.url, headers=request.headers, content=request.read()
            )
            answer = await self._inner.handle_async_request(copy)
            content = await answer.aread()
            return httpx.Response(answer.status_code, headers=answer.headers, content=content)

        return asyncio.run_coroutine_threadsafe(go(), self._loop).result(timeout=30)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def sync_client(app: Starlette) -> httpx.Client:
    return httpx.Client(transport=SyncASGITransport(app), base_url=API)


class ASGIAdapter(requests.adapters.BaseAdapter):
    """Lets ``requests`` talk to an ASGI app."""

    def __init__(self, app: Starlette) -> None:
        super().__init__()
        self.client = sync_client(app)
        self.sent: list[dict[str, str]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(dict(request.headers))
        answer = self.client.request(
            request.method or "GET",
            request.url or "",
            headers=dict(request.headers),
            content=request.body,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.content
        response.url = request.url or ""
        response.request = request
        response.connection = self
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        self.client.close()


def session_for(app: Starlette) -> tuple[requests.Session, ASGIAdapter]:
    adapter = ASGIAdapter(app)
    session = requests.Session()
    session.mount(API, adapter)
    return session, adapter


# -- tokensmith client -> tokensmith guard -------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_the_sync_client_auth_is_accepted_by_the_guard_nonce_and_all(alg):
    server = AuthorizationServer()
    tc = TokenClient(
        ISSUER + "/o/token/",
        "merchant-7",
        "secret",
        dpop=DPoPKey.generate(alg),
        clock=clock,
        http_client=httpx.Client(transport=httpx.MockTransport(server.handle)),
    )
    with tc, sync_client(guard_app(nonces=True)) as api:
        first = api.get("/read?page=1", auth=tc)
        second = api.post("/read", json={"x": 1}, auth=tc)
    assert first.status_code == 200, first.headers.get("www-authenticate")
    assert first.json() == {"client": "merchant-7", "jkt": tc.dpop_key.thumbprint}
    assert second.status_code == 200 and server.requests == 1


async def test_the_async_client_auth_is_accepted_by_the_guard():
    server = AuthorizationServer()
    atc = AsyncTokenClient(
        ISSUER + "/o/token/",
        "merchant-7",
        "secret",
        dpop=True,
        clock=clock,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server.ahandle)),
    )
    transport = httpx.ASGITransport(app=guard_app(nonces=True))
    async with atc, httpx.AsyncClient(transport=transport, base_url=API, auth=atc) as api:
        responses = [await api.get("/read") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]


def test_requests_auth_with_a_dpop_client_is_accepted_by_the_guard():
    server = AuthorizationServer()
    tc = TokenClient(
        ISSUER + "/o/token/",
        "merchant-7",
        "secret",
        dpop=True,
        clock=clock,
        http_client=httpx.Client(transport=httpx.MockTransport(server.handle)),
    )
    session, adapter = session_for(guard_app(nonces=True))
    with tc, session:
        first = session.get(API + "/read?x=1", auth=RequestsAuth(tc))
        second = session.post(API + "/read", data=b"{}", auth=RequestsAuth(tc))
    assert first.status_code == 200 and second.status_code == 200
    # one use_dpop_nonce round trip, then the nonce goes along at once
    assert [
        ("nonce" in jwt.decode(h["DPoP"], options={"verify_signature": False}))
        for h in adapter.sent
    ] == [
        False,
        True,
        True,
    ]


# -- requests-oauth2client -> tokensmith guard ----------------------------------------------------


def their_token(alg: str) -> roc.DPoPToken:
    key = roc.DPoPKey.generate(alg=alg, iat_generator=lambda: int(NOW))
    access = mint(SIGNER, NOW, cnf={"jkt": key.dpop_jkt}, scope="read")
    return roc.DPoPToken(access_token=access, _dpop_key=key)


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "PS256", "RS256"])
def test_proofs_of_requests_oauth2client_are_accepted(alg):
    token = their_token(alg)
    session, _ = session_for(guard_app(nonces=False, dpop="allowed"))
    with session:
        response = session.get(API + "/read?q=1", auth=token)
    assert response.status_code == 200, response.headers.get("www-authenticate")
    assert response.json()["jkt"] == token.dpop_key.dpop_jkt


def test_requests_oauth2client_follows_the_guards_use_dpop_nonce():
    token = their_token("ES256")
    session, adapter = session_for(guard_app(nonces=True))
    with session:
        response = session.get(API + "/read", auth=token)
    assert response.status_code == 200
    assert len(adapter.sent) == 2 and token.dpop_key.rs_nonce


def test_a_requests_oauth2client_proof_for_another_token_is_refused():
    token, other = their_token("ES256"), their_token("ES256")
    request = requests.Request("GET", API + "/read").prepare()
    other(request)  # Authorization and proof for the other key's token ...
    request.headers["Authorization"] = f"DPoP {token.access_token}"  # ... with this token
    with sync_client(guard_app(nonces=False)) as api:
        response = api.get("/read", headers=dict(request.headers))
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in response.headers["www-authenticate"]


# -- tokensmith proofs -> requests-oauth2client's checker ------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_our_proofs_pass_requests_oauth2clients_checker(alg):
    key = DPoPKey.generate(alg)
    proof = key.proof(
        "PATCH", "https://api.test/items/9?x=1#f", iat=time.time(), access_token="at", nonce="n1"
    )
    checked = validate_dpop_proof(
        proof,
        htm="PATCH",
        htu="https://api.test/items/9",
        ath=base64.urlsafe_b64encode(hashlib.sha256(b"at").digest()).rstrip(b"=").decode(),
        nonce="n1",
        algs=[alg],
    )
    assert checked.headers["jwk"] == dict(key.public_jwk)
