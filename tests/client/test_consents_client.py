"""Consents from the partner app's side: ``create_consent``, ``get_consent`` and
``revoke_consent`` with the client's own client_credentials token (scope ``consents``),
DPoP-bound when the client has a key; sync and async alike."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeClock

from tokensmith.client import (
    AsyncTokenClient,
    Consent,
    InvalidAuthorizationDetails,
    MemoryRefreshTokenStore,
    ServerError,
    TokenClient,
    TokenError,
)

TOKEN_URL = ISSUER + "/oauth/token"
CONSENTS = ISSUER + "/oauth/consents"
PAYMENT = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "120.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02120300000000202051"},
}


class ConsentServer:
    """A token endpoint and a consents resource that takes only its ``consents`` tokens."""

    def __init__(self, *, dpop: bool = False) -> None:
        self.dpop = dpop
        self.tokens: dict[str, str] = {}  # access token -> scope
        self.consents: dict[str, dict[str, Any]] = {}
        self.token_forms: list[dict[str, str]] = []
        self.calls: list[httpx.Request] = []
        self.script: list[Callable[[httpx.Request], httpx.Response]] = []
        self.nonce: str | None = None  # when set, consents requests need it in the proof
        self._n = itertools.count(1)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = dict(parse_qsl(request.content.decode()))
            self.token_forms.append(form)
            token = f"at-{next(self._n)}"
            self.tokens[token] = form.get("scope", "")
            kind = "DPoP" if self.dpop and "dpop" in request.headers else "Bearer"
            body = {"access_token": token, "token_type": kind, "expires_in": 600}
            return httpx.Response(200, json={**body, "scope": form.get("scope", "")})
        # a copy: the client sends the same request object again after a refusal
        self.calls.append(
            httpx.Request(
                request.method, request.url, headers=request.headers, content=request.content
            )
        )
        if self.script:
            return self.script.pop(0)(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if self.tokens.get(token) != "consents":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.dpop and scheme != "DPoP":
            return httpx.Response(401, headers={"WWW-Authenticate": 'DPoP error="invalid_token"'})
        if self.dpop and self.nonce is not None:
            claims = jwt.decode(request.headers["dpop"], options={"verify_signature": False})
            if claims.get("nonce") != self.nonce:
                return httpx.Response(
                    401,
                    headers={
                        "WWW-Authenticate": 'DPoP error="use_dpop_nonce"',
                        "DPoP-Nonce": self.nonce,
                    },
                )
        if request.method == "POST":
            body = json.loads(request.content)
            consent_id = f"c-{next(self._n)}"
            self.consents[consent_id] = {
                "consent_id": consent_id,
                "status": "awaiting_authorization",
                "client_id": CLIENT_ID,
                "authorization_details": body["authorization_details"],
                "created_at": "2026-12-04T16:00:00Z",
                "expires_at": "2026-12-04T16:10:00Z",
                "status_updated_at": "2026-12-04T16:00:00Z",
            }
            return httpx.Response(201, json=self.consents[consent_id])
        consent_id = request.url.path.rsplit("/", 1)[1]
        if consent_id not in self.consents:
            return httpx.Response(404, json={"error": "not_found"})
        if request.method == "DELETE":
            self.consents[consent_id]["status"] = "revoked"
            return httpx.Response(204)
        return httpx.Response(200, json=self.consents[consent_id])

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.handler(request)


@pytest.fixture
def server() -> ConsentServer:
    return ConsentServer()


def client(server: ConsentServer, **kwargs: Any) -> TokenClient:
    kwargs.setdefault("clock", FakeClock())
    http = httpx.Client(transport=httpx.MockTransport(server.handler))
    return TokenClient(TOKEN_URL, CLIENT_ID, CLIENT_SECRET, http_client=http, **kwargs)


def aclient(server: ConsentServer, **kwargs: Any) -> AsyncTokenClient:
    kwargs.setdefault("clock", FakeClock())
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.async_handler))
    return AsyncTokenClient(TOKEN_URL, CLIENT_ID, CLIENT_SECRET, http_client=http, **kwargs)


def test_a_consent_is_created_and_read_with_one_consents_token(server: ConsentServer) -> None:
    tc = client(server)
    consent = tc.create_consent([PAYMENT], expires_in=600)
    assert isinstance(consent, Consent)
    assert consent.status == "awaiting_authorization" and consent.client_id == CLIENT_ID
    assert consent.authorization_details == (PAYMENT,)
    assert consent.expires_at == "2026-12-04T16:10:00Z"
    post = server.calls[0]
    assert str(post.url) == CONSENTS and post.headers["content-type"] == "application/json"
    assert json.loads(post.content) == {"authorization_details": [PAYMENT], "expires_in": 600}
    server.consents[consent.consent_id]["status"] = "authorized"
    again = tc.get_consent(consent.consent_id)
    assert again.status == "authorized" and again.consent_id == consent.consent_id
    assert str(server.calls[1].url) == f"{CONSENTS}/{consent.consent_id}"
    assert [f["scope"] for f in server.token_forms] == ["consents"]  # one token, reused
    assert server.token_forms[0]["grant_type"] == "client_credentials"


def test_expires_in_is_sent_only_when_given(server: ConsentServer) -> None:
    client(server).create_consent([PAYMENT])
    assert json.loads(server.calls[0].content) == {"authorization_details": [PAYMENT]}


def test_a_consent_is_revoked(server: ConsentServer) -> None:
    tc = client(server)
    consent = tc.create_consent([PAYMENT])
    assert tc.revoke_consent(consent.consent_id) is None
    assert server.calls[-1].method == "DELETE"
    assert tc.get_consent(consent.consent_id).status == "revoked"


def test_the_consents_token_is_apart_from_the_users_tokens(server: ConsentServer) -> None:
    """A partner app whose tokens are its user's (refresh store, its own scope) still
    creates consents with a client_credentials token of its own."""
    tc = client(server, scope="payments", refresh_store=MemoryRefreshTokenStore())
    tc.create_consent([PAYMENT])
    assert server.token_forms == [
        {"grant_type": "client_credentials", "scope": "consents"}
    ]  # client_secret_basic: the secret is in the header, not the form
    assert tc._entry is None  # get_token()'s cache is untouched


def test_a_refused_token_is_renewed_once(server: ConsentServer) -> None:
    tc = client(server)
    tc.create_consent([PAYMENT])
    server.tokens.clear()  # the server forgot every token (revoked, restarted...)
    consent = tc.create_consent([PAYMENT])
    assert consent.status == "awaiting_authorization"
    assert len(server.token_forms) == 2
    server.script = [
        lambda _r: httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    ] * 2
    with pytest.raises(TokenError) as refused:
        tc.get_consent(consent.consent_id)
    assert refused.value.error == "invalid_token" and len(server.token_forms) == 3


def _answer(status: int, **kwargs: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(status, **kwargs)


def _unreachable(_r: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused")


FAILURES = [
    ("details-refused", _answer(400, json={"error": "invalid_authorization_details",
                                           "error_description": "unknown type"}),
     InvalidAuthorizationDetails, "invalid_authorization_details"),
    ("scope-missing", _answer(403, headers={"WWW-Authenticate":
                                            'Bearer error="insufficient_scope", scope="consents"'}),
     TokenError, "insufficient_scope"),
    ("not-found", _answer(404, json={"error": "not_found"}), TokenError, "not_found"),
    ("server-error", _answer(500, text="boom"), ServerError, "server_error"),
    ("html-200", _answer(200, text="<html></html>"), TokenError, "invalid_response"),
    ("json-not-a-consent", _answer(201, json={"id": "x"}), TokenError, "invalid_response"),
    ("unreachable", _unreachable, ServerError, "temporarily_unavailable"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "raised", "code"), [pytest.param(*row[1:], id=row[0]) for row in FAILURES]
)
async def test_a_failed_consent_call_raises_a_typed_error(
    server: ConsentServer,
    answer: Callable[[httpx.Request], httpx.Response],
    raised: type[TokenError],
    code: str,
) -> None:
    server.script = [answer]
    with pytest.raises(raised) as caught:
        client(server).create_consent([PAYMENT])
    assert caught.value.error == code
    server.script = [answer]
    with pytest.raises(raised) as caught_async:
        await aclient(server).get_consent("c-1")
    assert caught_async.value.error == code


@pytest.mark.parametrize("bad", ["", "a/b"])
def test_a_consent_id_cannot_leave_the_consents_path(server: ConsentServer, bad: str) -> None:
    with pytest.raises(ValueError, match="consent id"):
        client(server).get_consent(bad)
    assert server.calls == []


def test_no_details_no_consent(server: ConsentServer) -> None:
    with pytest.raises(ValueError, match="authorization_details"):
        client(server).create_consent([])


def _ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def test_a_dpop_client_binds_its_consents_token_and_proves_each_call() -> None:
    server = ConsentServer(dpop=True)
    server.nonce = "n-1"
    tc = client(server, dpop=True)
    consent = tc.create_consent([PAYMENT])
    # first try without the nonce, refused; once more with it (RFC 9449 §9)
    first, second = server.calls
    assert second.headers["authorization"].startswith("DPoP ")
    token = second.headers["authorization"][5:]
    claims = jwt.decode(second.headers["dpop"], options={"verify_signature": False})
    assert claims["htm"] == "POST" and claims["htu"] == CONSENTS
    assert claims["ath"] == _ath(token) and claims["nonce"] == "n-1"
    assert "nonce" not in jwt.decode(first.headers["dpop"], options={"verify_signature": False})
    tc.get_consent(consent.consent_id)
    get = jwt.decode(server.calls[-1].headers["dpop"], options={"verify_signature": False})
    assert get["htm"] == "GET" and get["nonce"] == "n-1"  # the nonce is remembered


async def test_the_async_client_creates_reads_and_revokes(server: ConsentServer) -> None:
    atc = aclient(server)
    consent = await atc.create_consent([PAYMENT], expires_in=300)
    assert consent.status == "awaiting_authorization"
    assert (await atc.get_consent(consent.consent_id)).consent_id == consent.consent_id
    await atc.revoke_consent(consent.consent_id)
    assert (await atc.get_consent(consent.consent_id)).status == "revoked"
    assert len(server.token_forms) == 1


async def test_the_async_dpop_client_proves_its_calls() -> None:
    server = ConsentServer(dpop=True)
    atc = aclient(server, dpop=True)
    await atc.create_consent([PAYMENT])
    assert server.calls[0].headers["authorization"].startswith("DPoP ")
    assert "dpop" in server.calls[0].headers


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, CONSENTS, id="beside-the-token-endpoint"),
        pytest.param({"metadata": {"issuer": "https://iss.test/"}}, "https://iss.test/oauth/consents",
                     id="under-the-metadata-issuer"),
        pytest.param({"consents_endpoint": "https://c.test/x"}, "https://c.test/x", id="explicit"),
    ],
)  # fmt: skip
def test_the_consents_endpoint(server: ConsentServer, kwargs: Any, expected: str) -> None:
    assert client(server, **kwargs).consents_endpoint == expected


def test_no_consents_endpoint_follows_from_an_odd_token_url() -> None:
    tc = TokenClient("https://gw.test/v2/tpay/access-token", CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(ValueError, match="consents_endpoint"):
        tc.consents_endpoint


def test_an_error_never_shows_the_consents_token(server: ConsentServer) -> None:
    """A careless server echoing the token it got: the message has ``***`` instead."""

    def echo(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].partition(" ")[2]
        return httpx.Response(400, json={"error": "invalid_request", "error_description": token})

    server.script = [echo]
    with pytest.raises(TokenError) as caught:
        client(server).create_consent([PAYMENT])
    assert next(iter(server.tokens)) not in str(caught.value) and "***" in str(caught.value)
