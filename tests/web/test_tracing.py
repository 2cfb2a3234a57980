"""OpenTelemetry traces (``TOKENSMITH_OTEL=true``): a server span per request named by its
route, continued from the caller's ``traceparent``, carrying no secret; and without the
setting, ``opentelemetry`` is never imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Harness, make_settings, running_app
from tests.partner import make_partner
from tokensmith.core.clock import FrozenClock
from tokensmith.web.tracing import TracedObserver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
#: Every attribute a span may carry: none from a header, the query or the body.
ALLOWED = {
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "url.scheme",
    "tokensmith.dialect",
    "tokensmith.grant",
    "tokensmith.refusal_reason",
}


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced(
    tmp_path: Path, clock: FrozenClock, exporter: InMemorySpanExporter
) -> AsyncIterator[Harness]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}", otel=True)
    async with running_app(settings, clock, tracer_provider=provider) as h:
        yield h


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def test_a_token_request_is_a_server_span_named_by_its_route(
    traced: Harness, exporter: InMemorySpanExporter
) -> None:
    assert isinstance(traced.ctx.observer, TracedObserver)
    client, secret = await traced.client()
    assert (await traced.token(client.client_id, secret)).status_code == 200
    (span,) = spans_named(exporter, "POST /oauth/token")
    assert span.kind is SpanKind.SERVER
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "url.scheme": "https",
        "http.route": "/oauth/token",
        "tokensmith.dialect": "oauth",
        "http.response.status_code": 200,
        "tokensmith.grant": "client_credentials",
    }


async def test_the_span_continues_the_callers_trace(
    traced: Harness, exporter: InMemorySpanExporter
) -> None:
    """W3C Trace Context §3.2: the span is the child of the ``traceparent`` sent."""
    traceparent = f"00-{TRACE_ID}-{PARENT}-01"
    r = await traced.http.get("/healthz", headers={"traceparent": traceparent})
    assert r.status_code == 200
    (span,) = spans_named(exporter, "GET /healthz")
    assert span.context is not None and span.parent is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == PARENT
    # without one, a new trace
    await traced.http.get("/healthz")
    fresh = spans_named(exporter, "GET /healthz")[1]
    assert fresh.parent is None and fresh.context is not None
    assert format(fresh.context.trace_id, "032x") != TRACE_ID


async def test_refusals_and_unknown_paths_are_spanned_without_the_raw_path(
    traced: Harness, exporter: InMemorySpanExporter
) -> None:
    client, _ = await traced.client()
    assert (await traced.token(client.client_id, "wrong")).status_code == 401
    assert (await traced.http.get("/no/such/secret-path")).status_code == 404
    (refused,) = spans_named(exporter, "POST /oauth/token")
    attributes = dict(refused.attributes or {})
    assert attributes["http.response.status_code"] == 401
    assert attributes["tokensmith.refusal_reason"] == "bad_secret"
    assert attributes["tokensmith.grant"] == "client_credentials"
    (unknown,) = spans_named(exporter, "GET")
    assert "http.route" not in (unknown.attributes or {})
    assert unknown.status.status_code is StatusCode.UNSET


async def test_no_span_holds_a_secret_token_or_credential(
    traced: Harness, exporter: InMemorySpanExporter
) -> None:
    """Every credential the requests carried, in any attribute or name of any span."""
    client, secret = await traced.client(token_format="opaque")
    token = (await traced.token(client.client_id, secret)).json()["access_token"]
    auth = (client.client_id, secret)
    await traced.http.post("/oauth/introspect", data={"token": token}, auth=auth)
    await traced.http.post("/oauth/revoke", data={"token": token}, auth=auth)
    await traced.http.post(
        "/o/token/",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
        },
    )
    partner = await make_partner(traced)
    tokens = await partner.tokens()
    await partner.refresh(tokens["refresh_token"])
    secrets = {secret, token, tokens["access_token"], tokens["refresh_token"], partner.secret}
    spans = exporter.get_finished_spans()
    assert len(spans) >= 8
    for span in spans:
        texts = [span.name, *(str(v) for v in (span.attributes or {}).values())]
        texts += [str(k) for k in (span.attributes or {})]
        for text in texts:
            assert not any(s in text for s in secrets), (span.name, text)
            assert not text.startswith(("Basic ", "DPoP ", "Bearer ")), (span.name, text)
        assert set(span.attributes or {}) <= ALLOWED, span.name
        assert client.client_id not in texts


def test_without_the_setting_opentelemetry_is_never_imported(tmp_path: Path) -> None:
    """The app built, a token issued and the metrics scraped, in a fresh interpreter."""
    program = textwrap.dedent(
        f"""
        import asyncio, sys
        import httpx
        from tests.conftest import make_settings, running_app
        from tokensmith.core.clock import FrozenClock

        async def main():
            settings = make_settings(
                __import__("pathlib").Path({str(tmp_path)!r}), "sqlite:///{tmp_path}/x.db"
            )
            async with running_app(settings, FrozenClock(1_800_000_000)) as h:
                client, secret = await h.client()
                assert (await h.token(client.client_id, secret)).status_code == 200
                assert (await h.http.get("/metrics")).status_code == 200
            loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
            assert not loaded, loaded
            assert "tokensmith.web.tracing" not in sys.modules

        asyncio.run(main())
        print("ok")
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENSMITH_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
