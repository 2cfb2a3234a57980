"""Audit events and Prometheus metrics for every issuance and refusal."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from tokensmith.logs import AuditLog

__all__ = ["LatencyMiddleware", "Observer", "method_label", "route_label"]

#: Methods that get their own metrics label; any other is counted as ``other``.
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "other"


def route_label(scope: Scope) -> str:
    """The matched route's template, or ``other``: never the raw path (unbounded, and it
    may hold anything a client typed)."""
    return str(getattr(scope.get("route"), "path", "other"))


class ActivitySink(Protocol):
    """Per-client counters (:class:`tokensmith.core.activity.ActivityRecorder`): memory only."""

    def issued(self, client_id: str) -> None: ...

    def refused(self, client_id: str | None, reason: str, source: str, dialect: str) -> None: ...


class Observer:
    """Counts and logs; holds its own registry (no process-wide singletons). An injected
    ``recorder`` also counts per client, for the merchant panel's activity page."""

    def __init__(self, recorder: ActivitySink | None = None) -> None:
        self.recorder = recorder
        self.audit = AuditLog()
        self.registry = CollectorRegistry()
        self.issued_total = Counter(
            "tokensmith_tokens_issued",
            "Access tokens issued",
            ["grant", "dialect"],
            registry=self.registry,
        )
        self.refused_total = Counter(
            "tokensmith_tokens_refused",
            "Token requests refused",
            ["grant", "dialect", "reason"],
            registry=self.registry,
        )
        self._issued: dict[tuple[str, str], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}
        self.latency = Histogram(
            "tokensmith_request_seconds",
            "Request latency by route",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )

    def issued(
        self, dialect: str, grant: str, client_id: str, scope: str, source: str, jti: str
    ) -> None:
        counter = self._issued.get((grant, dialect))
        if counter is None:
            counter = self._issued[(grant, dialect)] = self.issued_total.labels(grant, dialect)
        counter.inc()
        if self.recorder is not None:
            self.recorder.issued(client_id)
        self.audit.event(
            "token issued",
            {
                "event": "token.issued",
                "dialect": dialect,
                "grant": grant,
                "client_id": client_id,
                "scope": scope,
                "source": source,
                "jti": jti,
            },
        )

    def refused(
        self, dialect: str, grant: str, reason: str, client_id: str | None, source: str
    ) -> None:
        self.refused_total.labels(grant or "-", dialect, reason).inc()
        if self.recorder is not None:
            self.recorder.refused(client_id, reason, source, dialect)
        self.audit.event(
            "token refused",
            {
                "event": "token.refused",
                "dialect": dialect,
                "grant": grant,
                "reason": reason,
                "client_id": client_id,
                "source": source,
            },
        )

    def observe_latency(self, route: str, method: str, seconds: float) -> None:
        child = self._latency.get((route, method))
        if child is None:
            child = self._latency[(route, method)] = self.latency.labels(route, method)
        child.observe(seconds)

    def exposition(self) -> bytes:
        """Prometheus text; in multi-worker mode, summed over every worker."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


class LatencyMiddleware:
    """Pure ASGI middleware timing each HTTP request by its route template."""

    def __init__(self, app: ASGIApp, observer: Callable[[], Observer | None]) -> None:
        self.app = app
        self._observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            obs = self._observer()
            if obs is not None:
                elapsed = time.perf_counter() - start
                obs.observe_latency(route_label(scope), method_label(scope), elapsed)
