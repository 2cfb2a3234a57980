"""The guard's ``audience`` against tokens restricted to a resource (RFC 8707, RFC 9068
§4): an API accepts only tokens for its own identifier. A token for API A sent to API B
is refused with ``invalid_token``, JWT or opaque (introspected, RFC 7662 §2.2 ``aud``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.conftest import Harness

from tokensmith.core.models import Resource
from tokensmith.resource import AccessToken, BearerAuthMiddleware, TokenValidator

ISSUER = "https://auth.example.test"  # make_settings' issuer, the default audience
API_A = Resource("https://a.example/api", "API A", ("read",))
API_B = Resource("https://b.example/api", "API B", ("read",), token_format="opaque")


async def whoami(request: Request) -> JSONResponse:
    token: AccessToken = request.state.access_token
    return JSONResponse({"client_id": token.client_id, "kind": token.kind})


@dataclass
class Apis:
    h: Harness
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    client_id: str
    secret: str

    async def token(self, resource: str | None = None) -> str:
        form = {"resource": resource} if resource else {}
        r = await self.h.token(self.client_id, self.secret, scope="read", **form)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


@pytest.fixture
async def apis(harness: Harness) -> AsyncIterator[Apis]:
    """API A and API B, each behind the guard with its own identifier as ``audience``."""
    for r in (API_A, API_B):
        await harness.ctx.store.add_resource(r)
    rs, rs_secret = await harness.client(name="resource servers", scope="introspection")
    client, secret = await harness.client(name="caller", scope="read")

    def api(audience: str) -> httpx.AsyncClient:
        validator = TokenValidator(
            ISSUER,
            audience,
            http_client=harness.http,
            client_id=rs.client_id,
            client_secret=rs_secret,
            clock=harness.clock.now,
        )
        app = Starlette(
            routes=[Route("/whoami", whoami)],
            middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
        )
        transport = httpx.ASGITransport(app=app)
        return httpx.AsyncClient(transport=transport, base_url="https://api.test")

    async with api(API_A.identifier) as a, api(API_B.identifier) as b:
        yield Apis(harness, a, b, client.client_id, secret)


def _refused(r: httpx.Response) -> bool:
    return r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("resource", "kind"),
    [(API_A.identifier, "jwt"), (API_B.identifier, "opaque")],
    ids=["jwt-for-a", "opaque-for-b"],
)
async def test_a_token_passes_only_the_api_it_is_for(apis: Apis, resource: str, kind: str) -> None:
    token = await apis.token(resource)
    bearer = {"Authorization": f"Bearer {token}"}
    mine, other = (apis.a, apis.b) if resource == API_A.identifier else (apis.b, apis.a)
    for _ in range(2):  # the second time from the validator's caches
        r = await mine.get("/whoami", headers=bearer)
        assert r.status_code == 200 and r.json()["kind"] == kind, r.text
        assert _refused(await other.get("/whoami", headers=bearer))


async def test_a_token_for_the_servers_audience_passes_neither_api(apis: Apis) -> None:
    bearer = {"Authorization": f"Bearer {await apis.token()}"}
    assert _refused(await apis.a.get("/whoami", headers=bearer))
    assert _refused(await apis.b.get("/whoami", headers=bearer))


async def test_a_token_for_both_passes_both(apis: Apis) -> None:
    r = await apis.h.http.post(
        "/oauth/token",
        content=urlencode(
            [
                ("grant_type", "client_credentials"),
                ("resource", API_A.identifier),
                ("resource", API_B.identifier),
            ]
        ),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(apis.client_id, apis.secret),
    )
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await apis.a.get("/whoami", headers=bearer)).status_code == 200
    assert (await apis.b.get("/whoami", headers=bearer)).status_code == 200
