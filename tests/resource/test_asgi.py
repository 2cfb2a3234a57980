"""BearerAuthMiddleware and require_scopes in Starlette (and FastAPI when installed)."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from resource_fakes import AUDIENCE, ISSUER, FakeIssuer, make_key, mint
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.resource import (
    AccessToken,
    BearerAuthMiddleware,
    InvalidToken,
    TokenValidator,
    ValidationUnavailable,
    require_scopes,
)

NOW = 1_700_000_000.0
KEY = make_key("ES256")


def clock() -> float:
    return NOW


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer([KEY], clock=clock)


@pytest.fixture
def validator(issuer) -> TokenValidator:
    return TokenValidator(
        ISSUER, AUDIENCE, http_client=issuer.async_client(), clock=clock, realm="payments"
    )


@require_scopes("read")
async def read_endpoint(request: Request) -> JSONResponse:
    token: AccessToken = request.state.access_token
    return JSONResponse({"sub": token.sub, "scope": token.scope})


@require_scopes("admin")
async def admin_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def public_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"anonymous": request.state.access_token is None})


class Thing(HTTPEndpoint):
    @require_scopes("write")
    async def post(self, request: Request) -> JSONResponse:
        return JSONResponse({"written": True})


@require_scopes("read")
def sync_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"sync": True})


def make_app(validator: TokenValidator) -> Starlette:
    return Starlette(
        routes=[
            Route("/read", read_endpoint),
            Route("/admin", admin_endpoint),
            Route("/public", public_endpoint),
            Route("/thing", Thing),
            Route("/sync", sync_endpoint),
        ],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
    )


@pytest.fixture
def client(validator):
    transport = httpx.ASGITransport(app=make_app(validator))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


GOOD = mint(KEY, NOW)
CASES = [
    ("valid token, enough scope", "/read", [f"Bearer {GOOD}"], 200, None),
    ("scheme is case-insensitive", "/read", [f"bearer {GOOD}"], 200, None),
    ("no token", "/read", [], 401, 'Bearer realm="payments"'),
    (
        "other scheme counts as no token",
        "/read",
        ["Basic dXNlcjpwYXNz"],
        401,
        'Bearer realm="payments"',
    ),
    ("empty bearer", "/read", ["Bearer "], 400, 'error="invalid_request"'),
    ("two tokens", "/read", ["Bearer a b"], 400, 'error="invalid_request"'),
    ("bad characters", "/read", ['Bearer a"b'], 400, 'error="invalid_request"'),
    ("two headers", "/read", [f"Bearer {GOOD}", f"Bearer {GOOD}"], 400, "invalid_request"),
    (
        "expired",
        "/read",
        [f"Bearer {mint(KEY, NOW, exp=int(NOW) - 600)}"],
        401,
        'Bearer realm="payments", error="invalid_token", error_description="token expired"',
    ),
    ("garbage", "/read", ["Bearer x.y.z"], 401, 'error="invalid_token"'),
    (
        "missing scope",
        "/admin",
        [f"Bearer {GOOD}"],
        403,
        'error="insufficient_scope", error_description="the token lacks a required scope", '
        'scope="admin"',
    ),
    ("public route, anonymous", "/public", [], 200, None),
    ("public route, bad token still refused", "/public", ["Bearer x.y.z"], 401, "invalid_token"),
    ("method guard", "/thing", [f"Bearer {GOOD}"], 200, None),
    ("sync endpoint guard", "/sync", [], 401, 'Bearer realm="payments"'),
]


@pytest.mark.parametrize(
    ("case", "path", "headers", "status", "challenge"), CASES, ids=[c[0] for c in CASES]
)
async def test_rfc6750_responses(client, case, path, headers, status, challenge):
    method = "POST" if path == "/thing" else "GET"
    response = await client.request(method, path, headers=[("Authorization", h) for h in headers])
    assert response.status_code == status, response.text
    if challenge is None:
        assert "www-authenticate" not in response.headers
    else:
        assert challenge in response.headers["www-authenticate"]
        assert response.headers["cache-control"] == "no-store"
    if status == 200 and path == "/read":
        assert response.json() == {"sub": "user-42", "scope": "read write"}


async def test_no_token_challenge_has_no_error_code(client):
    response = await client.get("/read")
    assert response.headers["www-authenticate"] == 'Bearer realm="payments"'
    assert "error" not in response.json()


async def test_unreachable_keys_give_503_not_500(issuer, validator):
    issuer.jwks_status = 500
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app(validator)), base_url="http://t"
    ) as c:
        response = await c.get("/read", headers={"Authorization": f"Bearer {GOOD}"})
    assert response.status_code == 503 and response.headers["retry-after"]


async def test_unexpected_validator_failure_is_never_a_500():
    class Broken:
        realm = "x"

        async def validate(self, token: str) -> AccessToken:
            raise ZeroDivisionError

    app = make_app(Broken())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/read", headers={"Authorization": "Bearer abc"})
    assert response.status_code == 503


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80))
def test_arbitrary_authorization_headers_never_cause_a_500(validator, header):
    async def go() -> int:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app(validator)), base_url="http://t"
        ) as c:
            response = await c.get("/read", headers={"Authorization": header.encode("latin-1")})
            return response.status_code

    status = asyncio.run(go())
    assert status in (200, 400, 401, 403, 503)


async def test_guard_validates_by_itself_without_middleware(validator):
    @require_scopes("read", validator=validator)
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.access_token.sub})

    app = Starlette(routes=[Route("/", endpoint)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.get("/", headers={"Authorization": f"Bearer {GOOD}"})
        missing = await c.get("/")
    assert ok.json() == {"sub": "user-42"}
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="payments"'


async def test_guard_finds_validator_on_app_state(validator):
    guard = require_scopes("read")

    async def endpoint(request: Request) -> JSONResponse:
        token = await guard(request)
        return JSONResponse({"client": token.client_id})

    app = Starlette(routes=[Route("/", endpoint)])
    app.state.token_validator = validator
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.get("/", headers={"Authorization": f"Bearer {GOOD}"})
        bad = await c.get("/", headers={"Authorization": "Bearer nope.nope.nope"})
    assert ok.json() == {"client": "merchant-7"}
    assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]


def test_guard_looks_like_an_async_request_dependency_to_fastapi():
    guard = require_scopes("write")
    assert asyncio.iscoroutinefunction(guard.__call__)
    params = list(inspect.signature(guard).parameters.values())
    assert [p.name for p in params] == ["request"] and params[0].annotation is Request


async def test_fastapi_depends_require_scopes(validator):
    from fastapi import Depends, FastAPI

    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, validator=validator)

    @app.get("/w")
    async def write(token: AccessToken = Depends(require_scopes("write"))) -> dict[str, str]:
        return {"sub": token.sub or ""}

    @app.get("/a")
    async def admin(token: AccessToken = Depends(require_scopes("admin"))) -> dict[str, str]:
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.get("/w", headers={"Authorization": f"Bearer {GOOD}"})
        forbidden = await c.get("/a", headers={"Authorization": f"Bearer {GOOD}"})
        anonymous = await c.get("/w")
    assert ok.json() == {"sub": "user-42"}
    assert forbidden.status_code == 403 and 'scope="admin"' in forbidden.headers["www-authenticate"]
    assert anonymous.status_code == 401


def test_invalid_token_error_is_an_http_exception_with_the_challenge():
    exc = InvalidToken('bad "quoted"\nthing', realm="r")
    assert exc.status_code == 401
    assert exc.headers["WWW-Authenticate"] == (
        'Bearer realm="r", error="invalid_token", error_description="bad ?quoted??thing"'
    )
    assert ValidationUnavailable().status_code == 503


async def test_example_payments_api_serves_payments_behind_read_scope(validator, monkeypatch):
    monkeypatch.setenv("TOKENSMITH_ISSUER", ISSUER)
    path = Path(__file__).resolve().parents[2] / "examples" / "payments_api.py"
    spec = importlib.util.spec_from_file_location("payments_api_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("payments_api_example", None)
    spec.loader.exec_module(module)
    app = module.create_app(validator)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.get("/payments/", headers={"Authorization": f"Bearer {GOOD}"})
        denied = await c.get(
            "/payments/", headers={"Authorization": f"Bearer {mint(KEY, NOW, scope='write')}"}
        )
        anonymous = await c.get("/payments/")
    assert ok.status_code == 200 and isinstance(ok.json(), list) and ok.json()
    assert denied.status_code == 403
    assert anonymous.status_code == 401
    assert os.environ["TOKENSMITH_ISSUER"] == ISSUER


async def test_required_middleware_refuses_anonymous_requests_except_exempt_paths(validator):
    app = Starlette(
        routes=[Route("/public", public_endpoint), Route("/health", public_endpoint)],
        middleware=[
            Middleware(
                BearerAuthMiddleware, validator=validator, required=True, exempt_paths={"/health"}
            )
        ],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/public")).status_code == 401
        assert (await c.get("/health")).json() == {"anonymous": True}
        ok = await c.get("/public", headers={"Authorization": f"Bearer {GOOD}"})
        assert ok.json() == {"anonymous": False}


async def test_bearer_exception_handler_renders_json_errors(validator):
    from tokensmith.resource import BearerError, bearer_exception_handler

    guard = require_scopes("admin", validator=validator)

    async def endpoint(request: Request) -> JSONResponse:
        await guard(request)
        return JSONResponse({})

    app = Starlette(
        routes=[Route("/", endpoint)],
        exception_handlers={BearerError: bearer_exception_handler},
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/", headers={"Authorization": f"Bearer {GOOD}"})
    assert response.status_code == 403
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "the token lacks a required scope",
        "scope": "admin",
    }
