"""require_authorization_details: the RFC 9396 details of a token, checked and handed to
the endpoint; JWT and introspected tokens, sync and async endpoints and checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from resource_fakes import AUDIENCE, ISSUER, RS_CLIENT_ID, RS_SECRET, FakeIssuer, make_key, mint
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.resource import (
    BearerAuthMiddleware,
    DetailsToken,
    TokenValidator,
    require_authorization_details,
)

NOW = 1_700_000_000.0
KEY = make_key("ES256")
PAYMENT = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "12.50"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02120300000000202051"},
}
ACCOUNTS = {"type": "account_information", "actions": ["read_balances"]}


def clock() -> float:
    return NOW


def small_enough(detail: Mapping[str, Any], request: HTTPConnection) -> bool:
    """The payment the request makes is the one approved, at most its amount."""
    wanted = request.query_params.get("amount", "0")
    return float(detail["instructedAmount"]["amount"]) >= float(wanted)


async def reads_balances(detail: Mapping[str, Any], request: HTTPConnection) -> bool:
    return "read_balances" in detail.get("actions", ())


@require_authorization_details("payment_initiation", check=small_enough, scopes=["write"])
async def pay(request: Request) -> JSONResponse:
    approved = request.state.authorization_details
    return JSONResponse({"payee": approved[0]["creditorName"], "n": len(approved)})


@require_authorization_details("account_information", check=reads_balances)
def balances(request: Request) -> JSONResponse:  # a sync endpoint, an async check
    return JSONResponse({"accounts": len(request.state.authorization_details)})


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer([KEY], clock=clock)


@pytest.fixture
def validator(issuer: FakeIssuer) -> TokenValidator:
    return TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.async_client(),
        clock=clock,
        realm="payments",
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
    )


@pytest.fixture
def http(validator: TokenValidator) -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/pay", pay, methods=["POST"]), Route("/balances", balances)],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rs")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("details", "path", "status"),
    [
        pytest.param([PAYMENT], "/pay?amount=12.50", 200, id="payment-approved"),
        pytest.param([ACCOUNTS, PAYMENT], "/pay?amount=10", 200, id="among-others"),
        pytest.param([PAYMENT], "/pay?amount=99", 403, id="check-refuses"),
        pytest.param([ACCOUNTS], "/pay", 403, id="other-type"),
        pytest.param(None, "/pay", 403, id="no-details"),
        pytest.param("not a list", "/pay", 403, id="malformed-claim"),
        pytest.param([ACCOUNTS], "/balances", 200, id="sync-endpoint-async-check"),
        pytest.param(
            [dict(ACCOUNTS, actions=["read_transactions"])], "/balances", 403, id="async-refuses"
        ),
    ],
)
async def test_a_jwts_details_decide(
    http: httpx.AsyncClient, details: Any, path: str, status: int
) -> None:
    token = mint(KEY, NOW, authorization_details=details)
    method = "POST" if path.startswith("/pay") else "GET"
    r = await http.request(method, path, headers=bearer(token))
    assert r.status_code == status, r.text
    if status == 403:
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="payments", error="insufficient_scope"')
        assert "authorization_details" in challenge and "scope=" not in challenge
        assert r.json()["error"] == "insufficient_scope"


async def test_the_endpoint_gets_only_the_approved_objects(http: httpx.AsyncClient) -> None:
    other = dict(PAYMENT, creditorName="Small", instructedAmount={"currency": "EUR", "amount": "1"})
    token = mint(KEY, NOW, authorization_details=[other, PAYMENT, ACCOUNTS])
    r = await http.post("/pay?amount=5", headers=bearer(token))
    assert r.json() == {"payee": "Merchant A", "n": 1}


async def test_scopes_are_checked_first(http: httpx.AsyncClient) -> None:
    token = mint(KEY, NOW, scope="read", authorization_details=[PAYMENT])
    r = await http.post("/pay", headers=bearer(token))
    assert r.status_code == 403 and 'scope="write"' in r.headers["www-authenticate"]


async def test_an_introspected_tokens_details_decide(
    http: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    issuer.introspection["opaque-1"] = {
        "active": True,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "scope": "read write",
        "client_id": "app",
        "token_type": "Bearer",
        "exp": int(NOW) + 60,
        "authorization_details": [PAYMENT],
    }
    assert (await http.post("/pay?amount=12", headers=bearer("opaque-1"))).status_code == 200
    issuer.introspection["opaque-2"] = dict(issuer.introspection["opaque-1"])
    del issuer.introspection["opaque-2"]["authorization_details"]
    assert (await http.post("/pay", headers=bearer("opaque-2"))).status_code == 403


async def test_fastapi_style_use_returns_a_details_token(validator: TokenValidator) -> None:
    guard = require_authorization_details("payment_initiation", validator=validator)
    token = mint(KEY, NOW, authorization_details=[PAYMENT])
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "query_string": b"",
    }
    got = await guard(Request(scope))
    assert isinstance(got, DetailsToken)
    assert got.details == (PAYMENT,) and got.sub == "user-42"
    assert guard.__signature__.return_annotation is DetailsToken  # type: ignore[attr-defined]


async def test_fastapi_depends_hands_the_approved_details_to_the_endpoint(
    validator: TokenValidator,
) -> None:
    """docs/consents.md's FastAPI use, in a real FastAPI app."""
    from fastapi import Depends, FastAPI

    app = FastAPI()
    guard = require_authorization_details(
        "payment_initiation", check=small_enough, validator=validator
    )

    @app.post("/payments/")
    async def create(token: DetailsToken = Depends(guard)) -> dict[str, Any]:
        return {"payee": token.details[0]["creditorName"], "sub": token.sub}

    paid = mint(KEY, NOW, authorization_details=[PAYMENT])
    other = mint(KEY, NOW, authorization_details=[ACCOUNTS])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        ok = await c.post("/payments/?amount=12", headers=bearer(paid))
        too_much = await c.post("/payments/?amount=13", headers=bearer(paid))
        wrong_type = await c.post("/payments/", headers=bearer(other))
        anonymous = await c.post("/payments/")
    assert ok.status_code == 200 and ok.json() == {"payee": "Merchant A", "sub": "user-42"}
    assert too_much.status_code == 403 and wrong_type.status_code == 403
    assert "insufficient_scope" in too_much.headers["www-authenticate"]
    assert anonymous.status_code == 401
