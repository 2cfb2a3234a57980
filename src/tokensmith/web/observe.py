"""Audit events and Prometheus metrics for every issuance and refusal."""

from __future__ import annotations

import asyncio
import bisect
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

from tokensmith.core.fingerprints import Fingerprints
from tokensmith.logs import AuditLog
from tokensmith.web.tasks import stop_task

__all__ = ["LATENCY_BUCKETS", "LatencyMiddleware", "Observer", "method_label", "route_label"]

#: Upper bounds (seconds) of the request latency histogram; ``+Inf`` follows.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

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
    ``recorder`` also counts per client, for the merchant panel's activity page.

    A request adds to plain counters in memory; :meth:`flush` moves them into the
    Prometheus metrics every ``metrics_flush_interval`` seconds (:meth:`start`), before
    each exposition and at :meth:`aclose`. In multi-process mode every ``inc`` or
    ``observe`` of a Prometheus metric writes a memory-mapped file under a lock, three
    writes a token request; a flush writes once per label set. So a scrape sees its own
    worker's counts at once and the other workers' within the interval.
    """

    def __init__(
        self, recorder: ActivitySink | None = None, fingerprints: Fingerprints | None = None
    ) -> None:
        self.recorder = recorder
        #: Names presented client_ids that are no known client's, in logs and tables.
        self.fingerprints = fingerprints or Fingerprints.ephemeral()
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
        self.latency = Histogram(
            "tokensmith_request_seconds",
            "Request latency by route",
            ["route", "method"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self._issued: dict[tuple[str, str], int] = {}
        self._refused: dict[tuple[str, str, str], int] = {}
        #: per (route, method): a count per bucket (the last one ``+Inf``), then the sum
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def issued(
        self, dialect: str, grant: str, client_id: str, scope: str, source: str, jti: str
    ) -> None:
        key = (grant, dialect)
        self._issued[key] = self._issued.get(key, 0) + 1
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
        self,
        dialect: str,
        grant: str,
        reason: str,
        client_id: str | None,
        source: str,
        *,
        known: bool = False,
    ) -> None:
        """A refused token request. ``client_id`` as presented is written as it is only if
        ``known`` (a client has it); otherwise as its fingerprint, since a value that names
        no client may be anything, a secret sent in the wrong field included."""
        if client_id is not None and not known:
            client_id = self.fingerprints.label(client_id)
        key = (grant or "-", dialect, reason)
        self._refused[key] = self._refused.get(key, 0) + 1
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
        counts = self._latency.get((route, method))
        if counts is None:
            counts = self._latency[(route, method)] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        # Prometheus buckets are "less than or equal": the first bound >= seconds
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def flush(self) -> None:
        """Add the counts taken since the last flush to the Prometheus metrics."""
        issued, self._issued = self._issued, {}
        for labels, n in issued.items():
            self.issued_total.labels(*labels).inc(n)
        refused, self._refused = self._refused, {}
        for why, n in refused.items():
            self.refused_total.labels(*why).inc(n)
        latency, self._latency = self._latency, {}
        for labels, counts in latency.items():
            _add_observations(self.latency.labels(*labels), counts)

    def start(self, interval: float) -> None:
        """Flush every ``interval`` seconds in the background (0: only at scrapes and
        :meth:`aclose`)."""
        if interval > 0 and self._flusher is None:
            self._flusher = asyncio.create_task(
                self._flush_every(interval), name="tokensmith-metrics"
            )

    async def _flush_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.flush()

    async def aclose(self) -> None:
        """Stop the background flush and flush what is left, so a stopping worker's counts
        reach the multi-process files."""
        task, self._flusher = self._flusher, None
        await stop_task(task)
        self.flush()

    def exposition(self) -> bytes:
        """Prometheus text; in multi-worker mode, summed over every worker."""
        self.flush()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


def _add_observations(child: Any, counts: list[float]) -> None:
    """Add many observations to a histogram at once: a count per bucket, then their sum.

    prometheus_client has no public call for this. A histogram's labelled child keeps one
    value per bucket (``_buckets``, not cumulative) and one for the sum (``_sum``), whose
    ``inc`` is what ``observe`` calls, in either mode. ``tests/web/test_metrics.py`` checks
    the exposition this gives against ``observe`` called once per request."""
    *per_bucket, total = counts
    child._sum.inc(total)
    for value, n in zip(child._buckets, per_bucket, strict=True):
        if n:
            value.inc(n)


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
