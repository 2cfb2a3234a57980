"""``/metrics`` families beyond tokens issued and refused: requests by route, method,
dialect and status class; tokens by type, format and binding; PAR, introspection and
revocation outcomes; process and platform metrics."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import Harness, WithState
from tests.dpop import DpopKey
from tests.partner import make_partner
from tests.web.test_metrics import sample, scrape
from tokensmith.core.admin import create_api_key
from tokensmith.web.app import dialect_of
from tokensmith.web.context import STATE_KEY
from tokensmith.web.errors import LastResortMiddleware
from tokensmith.web.fastpath import HotRoute
from tokensmith.web.observe import LatencyMiddleware, Observer, RouteLabels, status_class

REQUESTS = "tokensmith_requests_total"
BY_TYPE = "tokensmith_tokens_issued_by_type_total"
TBC = "/v2/tpay/access-token"


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (200, "2xx"),
        (201, "2xx"),
        (302, "3xx"),
        (400, "4xx"),
        (499, "4xx"),
        (503, "5xx"),
        (0, "5xx"),
        (600, "5xx"),
        (101, "1xx"),
    ],
)
def test_status_codes_are_counted_by_class(status: int, label: str) -> None:
    assert status_class(status) == label


@pytest.mark.parametrize(
    ("template", "dialect"),
    [
        ("/oauth/token", "oauth"),
        ("/oauth/auth", "tpay"),
        ("/v2/tpay/access-token", "tbc"),
        ("/o/token/", "dot"),
        ("/oauth/introspect", "oauth"),
        ("/oauth/par", "oauth"),
        ("/admin/v1/clients", "admin"),
        ("/panel", "panel"),
        ("/panel/keys", "panel"),
        ("/panelx", None),
        ("/metrics", None),
        ("/login", None),
    ],
)
def test_each_route_has_the_dialect_of_its_wire_format(template: str, dialect: str) -> None:
    assert dialect_of(template) == dialect


async def test_requests_are_counted_by_route_method_dialect_and_status_class(
    harness: Harness,
) -> None:
    client, secret = await harness.client()
    _, apikey = await create_api_key(harness.ctx.store, harness.clock, harness.ctx.rand, "m")
    body = {"client_id": client.client_id, "client_secret": secret}
    cc = {"grant_type": "client_credentials"}
    assert (await harness.token(client.client_id, secret)).status_code == 200
    assert (await harness.token(client.client_id, "wrong")).status_code == 401
    assert (await harness.http.post("/o/token/", data={**cc, **body})).status_code == 200
    assert (await harness.http.post("/oauth/auth", data=body)).status_code == 200
    assert (await harness.http.post(TBC, data=body, headers={"apikey": apikey})).status_code == 200
    assert (await harness.http.get("/oauth/token")).status_code == 405
    assert (await harness.http.get("/admin/v1/clients")).status_code == 401
    assert (await harness.http.get("/panel")).status_code in (302, 303)
    assert (await harness.http.get("/no/such/path")).status_code == 404
    m = await scrape(harness)
    expected = [
        ("/oauth/token", "POST", "oauth", "2xx", 1),
        ("/oauth/token", "POST", "oauth", "4xx", 1),
        ("/oauth/token", "GET", "oauth", "4xx", 1),
        ("/o/token/", "POST", "dot", "2xx", 1),
        ("/oauth/auth", "POST", "tpay", "2xx", 1),
        (TBC, "POST", "tbc", "2xx", 1),
        ("/admin/v1/clients", "GET", "admin", "4xx", 1),
        ("/panel", "GET", "panel", "3xx", 1),
        ("other", "GET", "other", "4xx", 1),
    ]
    for route, method, dialect, status, n in expected:
        labels = {"route": route, "method": method, "dialect": dialect, "status": status}
        assert sample(m, REQUESTS, **labels) == n, labels
    # the latency histogram keeps its two labels: every status of a route in one series
    count = sample(m, "tokensmith_request_seconds_count", route="/oauth/token", method="POST")
    assert count == 2


async def _boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def test_a_request_that_fails_is_counted_as_a_5xx(harness: Harness) -> None:
    """The last-resort 500 goes out through the middleware's ``send``: its status is the
    one counted, on the hot path and off it."""
    routes = [HotRoute("/oauth/token", _boom, methods=["POST"]), Route("/broken", _boom)]
    observer = Observer()
    app = LatencyMiddleware(
        LastResortMiddleware(_Router(routes)),
        observer=lambda scope: observer,
        labels=RouteLabels(routes, dialect_of),
    )
    transport = httpx.ASGITransport(WithState(app, {STATE_KEY: harness.ctx}))
    async with httpx.AsyncClient(transport=transport, base_url="https://x") as http:
        assert (await http.post("/oauth/token")).status_code == 500
        assert (await http.get("/broken")).status_code == 500
    observer.flush()
    value = observer.registry.get_sample_value
    token = {"route": "/oauth/token", "method": "POST", "dialect": "oauth", "status": "5xx"}
    broken = {"route": "/broken", "method": "GET", "dialect": "other", "status": "5xx"}
    assert value(REQUESTS, token) == 1
    assert value(REQUESTS, broken) == 1


class _Router:
    """The route of the path, its endpoint called directly (as the hot path does)."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = {r.path: r for r in routes}

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        route = self.routes[str(scope["path"])]
        scope["route"] = route
        response = await route.endpoint(Request(scope, receive))  # type: ignore[arg-type]
        await response(scope, receive, send)  # type: ignore[arg-type]


async def test_tokens_are_counted_by_type_format_and_binding(harness: Harness) -> None:
    jwt_client, jwt_secret = await harness.client(token_format="jwt")
    opaque_client, opaque_secret = await harness.client(token_format="opaque")
    assert (await harness.token(jwt_client.client_id, jwt_secret)).status_code == 200
    assert (await harness.token(opaque_client.client_id, opaque_secret)).status_code == 200
    assert (await harness.token(opaque_client.client_id, opaque_secret)).status_code == 200
    partner = await make_partner(harness)
    tokens = await partner.tokens()
    assert tokens["refresh_token"]
    m = await scrape(harness)
    assert sample(m, BY_TYPE, token_type="access", format="jwt", binding="bearer") >= 1
    assert sample(m, BY_TYPE, token_type="access", format="opaque", binding="bearer") >= 2
    assert sample(m, BY_TYPE, token_type="refresh", format="opaque", binding="-") == 1
    issued = "tokensmith_tokens_issued_total"
    assert sample(m, issued, grant="authorization_code", dialect="oauth") == 1
    total_access = sum(
        v
        for (name, labels), v in m.items()
        if name == BY_TYPE and ("token_type", "access") in labels
    )
    total_issued = sum(v for (name, _), v in m.items() if name == issued)
    assert total_access == total_issued


async def test_refreshed_tokens_are_counted_under_their_grant(harness: Harness) -> None:
    partner = await make_partner(harness)
    tokens = await partner.tokens()
    r = await partner.refresh(tokens["refresh_token"])
    assert r.status_code == 200
    assert (await partner.refresh(tokens["refresh_token"] + "x")).status_code == 400
    m = await scrape(harness)
    assert sample(m, "tokensmith_tokens_issued_total", grant="refresh_token", dialect="oauth") == 1
    refused = [
        v
        for (name, labels), v in m.items()
        if name == "tokensmith_tokens_refused_total" and ("grant", "refresh_token") in labels
    ]
    assert refused == [1]
    assert sample(m, BY_TYPE, token_type="refresh", format="opaque", binding="-") == 2


async def test_introspection_revocation_and_par_outcomes_are_counted(harness: Harness) -> None:
    client, secret = await harness.client(token_format="opaque")
    token = (await harness.token(client.client_id, secret)).json()["access_token"]
    auth = (client.client_id, secret)
    http = harness.http
    assert (await http.post("/oauth/introspect", data={"token": token}, auth=auth)).json()["active"]
    assert (await http.post("/oauth/revoke", data={"token": token}, auth=auth)).status_code == 200
    r = await http.post("/oauth/introspect", data={"token": token}, auth=auth)
    assert r.json()["active"] is False
    bad = (client.client_id, "wrong")
    assert (
        await http.post("/oauth/introspect", data={"token": token}, auth=bad)
    ).status_code == 401
    assert (await http.post("/oauth/revoke", data={"token": token}, auth=bad)).status_code == 401
    partner = await make_partner(harness)
    wrong = (partner.app.client_id, "wrong")
    assert (await http.post("/oauth/par", data=partner.params(), auth=wrong)).status_code == 401
    pushed = await http.post(
        "/oauth/par", data=partner.params(), auth=(partner.app.client_id, partner.secret)
    )
    assert pushed.status_code == 201
    m = await scrape(harness)
    assert sample(m, "tokensmith_introspections_total", active="true") == 1
    assert sample(m, "tokensmith_introspections_total", active="false") == 1
    assert sample(m, "tokensmith_revocations_total") == 1
    assert sample(m, "tokensmith_par_requests_total", outcome="pushed") == 1
    assert sample(m, "tokensmith_par_requests_total", outcome="refused") == 1
    refusals = "tokensmith_endpoint_refusals_total"
    for endpoint in ("introspect", "revoke", "par"):
        assert sample(m, refusals, endpoint=endpoint, reason="bad_secret") == 1, endpoint


async def test_metrics_show_this_processs_cpu_memory_and_python(harness: Harness) -> None:
    r = await harness.http.get("/metrics")
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= names
    # one worker: no pid label, as prometheus_client writes them
    assert 'process_resident_memory_bytes{pid="' not in r.text


async def test_dpop_bound_tokens_are_counted_as_dpop(harness: Harness) -> None:
    """RFC 9449 §5: a token bound to the proof's key is a ``dpop`` token."""
    client, secret = await harness.client()
    key = DpopKey.generate()
    proof = key.proof("https://auth.example.test/oauth/token", iat=harness.clock.now())
    form = {"grant_type": "client_credentials"}
    r = await harness.http.post(
        "/oauth/token", data=form, auth=(client.client_id, secret), headers={"DPoP": proof}
    )
    assert r.status_code == 200 and r.json()["token_type"] == "DPoP"
    m = await scrape(harness)
    assert sample(m, BY_TYPE, token_type="access", format="jwt", binding="dpop") == 1
    assert sample(m, BY_TYPE, token_type="access", format="jwt", binding="bearer") == 0
