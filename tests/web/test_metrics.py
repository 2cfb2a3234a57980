"""``/metrics``: tokens issued and refused by grant, dialect and reason, and request latency."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Harness
from tokensmith.core.admin import create_api_key

TBC = "/v2/tpay/access-token"


async def scrape(h: Harness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await h.http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def sample(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


async def _token_requests(h: Harness) -> None:
    """Three issued (oauth, dot, tbc) and five refused, with different reasons."""
    client, secret = await h.client()
    _, apikey = await create_api_key(h.ctx.store, h.clock, h.ctx.rand, "metrics")
    body = {"client_id": client.client_id, "client_secret": secret}
    cc = {"grant_type": "client_credentials"}
    expect = [
        (await h.token(client.client_id, secret), 200),
        (await h.http.post("/o/token/", data={**cc, **body}), 200),
        (await h.http.post(TBC, data=body, headers={"apikey": apikey}), 200),
        (await h.token(client.client_id, "wrong"), 401),
        (await h.token("nobody", "wrong"), 401),
        (await h.http.post("/o/token/", data={**body, "grant_type": "made-up"}), 400),
        (await h.http.post("/oauth/token", data={"grant_type": "x" * 50}, auth=("a", "b")), 400),
        (await h.http.post(TBC, data=body), 401),
    ]
    assert [r.status_code for r, _ in expect] == [status for _, status in expect]


async def test_metrics_count_issued_tokens_by_grant_and_dialect(harness: Harness) -> None:
    await _token_requests(harness)
    m = await scrape(harness)
    cc = "client_credentials"
    issued = "tokensmith_tokens_issued_total"
    assert sample(m, issued, grant=cc, dialect="oauth") == 1
    assert sample(m, issued, grant=cc, dialect="dot") == 1
    assert sample(m, issued, grant=cc, dialect="tbc") == 1
    assert sample(m, issued, grant=cc, dialect="tpay") == 0


async def test_metrics_count_refusals_by_grant_dialect_and_reason(harness: Harness) -> None:
    await _token_requests(harness)
    m = await scrape(harness)
    refused = "tokensmith_tokens_refused_total"
    cc = "client_credentials"
    assert sample(m, refused, grant=cc, dialect="oauth", reason="bad_secret") == 1
    assert sample(m, refused, grant=cc, dialect="oauth", reason="unknown_client") == 1
    assert sample(m, refused, grant="-", dialect="dot", reason="unsupported_grant_type") == 1
    assert sample(m, refused, grant="other", dialect="oauth", reason="unsupported_grant_type") == 1
    assert sample(m, refused, grant=cc, dialect="tbc", reason="missing_apikey") == 1


async def test_made_up_grant_types_and_methods_do_not_grow_the_label_set(harness: Harness) -> None:
    """Label values come from fixed sets, whatever a client sends."""
    for i in range(20):
        await harness.http.post("/oauth/token", data={"grant_type": f"g{i}"}, auth=("a", "b"))
        await harness.http.request(f"M{i}", f"/path-{i}")
    m = await scrape(harness)
    grants = {
        dict(labels).get("grant") for (name, labels) in m if name.startswith("tokensmith_tokens")
    }
    assert grants <= {"client_credentials", "other", "-", "authorization_code", "refresh_token"}
    routes = {
        dict(labels).get("route") for (name, labels) in m if name.startswith("tokensmith_request")
    }
    methods = {
        dict(labels).get("method") for (name, labels) in m if name.startswith("tokensmith_request")
    }
    assert not any(r and r.startswith("/path-") for r in routes)
    assert "other" in routes and "other" in methods
    assert not any(meth and meth.startswith("M") for meth in methods)


async def test_metrics_show_request_latency_by_route_and_method(harness: Harness) -> None:
    await _token_requests(harness)
    await harness.http.get("/healthz")
    m = await scrape(harness)
    hist = "tokensmith_request_seconds"
    assert sample(m, hist + "_count", route="/oauth/token", method="POST") == 4
    assert sample(m, hist + "_count", route="/o/token/", method="POST") == 2
    assert sample(m, hist + "_count", route=TBC, method="POST") == 2
    assert sample(m, hist + "_count", route="/healthz", method="GET") == 1
    assert sample(m, hist + "_sum", route="/oauth/token", method="POST") > 0
    # cumulative buckets end in +Inf, which holds every request
    assert sample(m, hist + "_bucket", route="/oauth/token", method="POST", le="+Inf") == 4


async def test_metrics_endpoint_is_prometheus_text(harness: Harness) -> None:
    transport = httpx.ASGITransport(harness.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
        r = await http.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {
        "tokensmith_tokens_issued",
        "tokensmith_tokens_refused",
        "tokensmith_request_seconds",
    } <= names
