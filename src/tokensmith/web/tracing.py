"""OpenTelemetry traces (``TOKENSMITH_OTEL=true``, ``pip install 'tokensmith[otel]'``): a
server span per HTTP request, continued from the caller's W3C ``traceparent`` (Trace
Context §3.2), exported over OTLP as the standard ``OTEL_*`` variables say.

Only :func:`tokensmith.web.app.create_app` and :func:`tokensmith.web.compose.build_context`
import this module, and only when ``settings.otel`` is on: otherwise neither
``opentelemetry`` nor this module is imported and a request takes exactly the untraced
path (no branch, no wrapper).

A span's name is ``METHOD route-template`` (the method alone for a path no route has),
and its attributes are the OpenTelemetry HTTP semantic conventions' ``http.request.method``,
``http.route``, ``http.response.status_code`` and ``url.scheme``, with ``tokensmith.dialect``
and, on a token endpoint, ``tokensmith.grant`` (and ``tokensmith.refusal_reason`` when
refused). Nothing else from the request: no header, no query, no form field, no client id,
so no token, secret, assertion or ``Authorization`` value can reach a span. Storage calls
get no span of their own (an SQLAlchemy instrumentation can add them).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.web.observe import Observer, RouteLabels, method_label

__all__ = ["TracedObserver", "TracingMiddleware", "tracer_provider"]

log = logging.getLogger("tokensmith")

#: The only request headers read: W3C Trace Context and Baggage.
PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
INSTRUMENTATION = "tokensmith"


def tracer_provider() -> trace.TracerProvider:
    """The process's tracer provider: one already installed (by ``opentelemetry-instrument``
    or the embedding program), else an SDK one for service ``tokensmith`` (unless
    ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` names it) exporting over OTLP/HTTP
    to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": "tokensmith"})
    )
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning(
            "TOKENSMITH_OTEL is on but opentelemetry-exporter-otlp-proto-http is not "
            "installed: spans are made and dropped (pip install 'tokensmith[otel]')"
        )
    else:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class TracingMiddleware:
    """Pure ASGI middleware: a server span around each HTTP request, a child of the
    caller's ``traceparent`` when it sends one. ``labels`` are the app's route labels
    (:class:`~tokensmith.web.observe.RouteLabels`), found once when the app was built."""

    def __init__(self, app: ASGIApp, provider: trace.TracerProvider, labels: RouteLabels) -> None:
        self.app = app
        self._tracer = provider.get_tracer(INSTRUMENTATION)
        self._labels = labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", ())
            if k in PROPAGATION_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        method = method_label(scope)
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        attributes: dict[str, Any] = {
            "http.request.method": method if method != "other" else "_OTHER",
            "url.scheme": str(scope.get("scheme", "http")),
        }
        with self._tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route, dialect = self._labels.of(scope)
                if route != "other":
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("tokensmith.dialect", dialect)
                span.set_attribute("http.response.status_code", status or 500)
                if status == 0 or status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


class TracedObserver(Observer):
    """An :class:`~tokensmith.web.observe.Observer` that also names the grant (and a
    refusal's reason) on the request's span: a value from a fixed set, never the client's."""

    def issued(
        self,
        dialect: str,
        grant: str,
        client_id: str,
        scope: str,
        source: str,
        jti: str,
        **kind: Any,
    ) -> None:
        trace.get_current_span().set_attribute("tokensmith.grant", grant)
        super().issued(dialect, grant, client_id, scope, source, jti, **kind)

    def refused(
        self,
        dialect: str,
        grant: str,
        reason: str,
        client_id: str | None,
        source: str,
        *,
        known: bool = False,
    ) -> None:
        span = trace.get_current_span()
        if grant:  # already ``other`` for a grant type that is not registered
            span.set_attribute("tokensmith.grant", grant)
        span.set_attribute("tokensmith.refusal_reason", reason)
        super().refused(dialect, grant, reason, client_id, source, known=known)
