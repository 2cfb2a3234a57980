"""Audit events and Prometheus metrics for every issuance and refusal, and for every
request by route, method, dialect and status class."""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.core.fingerprints import Fingerprints
from tokensmith.logs import AuditLog
from tokensmith.web.tasks import stop_task

__all__ = [
    "COUNTERS",
    "LATENCY_BUCKETS",
    "LatencyMiddleware",
    "Observer",
    "RouteLabels",
    "SummedWorkers",
    "Tallies",
    "WorkerMetrics",
    "method_label",
    "route_label",
    "status_class",
]

#: Upper bounds (seconds) of the request latency histogram; ``+Inf`` follows.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: Methods that get their own metrics label; any other is counted as ``other``.
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

_perf_counter = time.perf_counter

#: The route and dialect labels of a request no route matched.
OTHER_ROUTE = ("other", "other")


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "other"


def route_label(scope: Scope) -> str:
    """The matched route's template, or ``other``: never the raw path (unbounded, and it
    may hold anything a client typed)."""
    return str(getattr(scope.get("route"), "path", "other"))


def status_class(status: int) -> str:
    """RFC 9110 §15: the class of a status code, ``2xx`` to ``5xx``. A request that ended
    without a response (``0``: the server answers 500) is a ``5xx``."""
    if 100 <= status < 600:
        return f"{status // 100}xx"
    return "5xx"


class RouteLabels:
    """The ``route`` and ``dialect`` labels of every route of an app, found once when the app
    is built: a request then costs one dict lookup by the matched route object.

    ``route`` is the template with its mounts' prefixes (``/admin/v1/clients/{client_id}``);
    ``dialect`` is what ``dialect_of(template)`` says, a mount's routes inheriting the
    mount's answer when it has one."""

    def __init__(
        self, routes: Iterable[BaseRoute], dialect_of: Callable[[str], str | None]
    ) -> None:
        self.by_id: dict[int, tuple[str, str]] = {}
        #: keeps the routes alive, so that no ``id`` is reused while the table is
        self._routes: list[BaseRoute] = []
        self._walk(routes, "", None, dialect_of)

    def _walk(
        self,
        routes: Iterable[BaseRoute],
        prefix: str,
        inherited: str | None,
        dialect_of: Callable[[str], str | None],
    ) -> None:
        for route in routes:
            template = prefix + str(getattr(route, "path", ""))
            dialect = inherited or dialect_of(template)
            self.by_id[id(route)] = (template, dialect or "other")
            self._routes.append(route)
            if isinstance(route, Mount):
                self._walk(route.routes, template, dialect, dialect_of)

    def of(self, scope: Scope) -> tuple[str, str]:
        return self.by_id.get(id(scope.get("route")), OTHER_ROUTE)


class ActivitySink(Protocol):
    """Per-client counters (:class:`tokensmith.core.activity.ActivityRecorder`): memory only."""

    def issued(self, client_id: str) -> None: ...

    def refused(self, client_id: str | None, reason: str, source: str, dialect: str) -> None: ...


#: In multi-worker mode, each worker's totals: ``tokensmith-<pid>.json`` in
#: ``PROMETHEUS_MULTIPROC_DIR``.
WORKER_FILE_GLOB = "tokensmith-*.json"

ISSUED = "tokensmith_tokens_issued"
REFUSED = "tokensmith_tokens_refused"
BY_TYPE = "tokensmith_tokens_issued_by_type"
REQUESTS = "tokensmith_requests"
PAR = "tokensmith_par_requests"
INTROSPECTIONS = "tokensmith_introspections"
REVOCATIONS = "tokensmith_revocations"
ENDPOINT_REFUSED = "tokensmith_endpoint_refusals"

#: Every counter family: name (prometheus_client adds ``_total``), help, label names.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ISSUED: ("Token responses by grant and dialect", ("grant", "dialect")),
    REFUSED: ("Token requests refused", ("grant", "dialect", "reason")),
    BY_TYPE: (
        "Tokens issued by type, format and sender constraint",
        ("token_type", "format", "binding"),
    ),
    REQUESTS: (
        "HTTP requests by route, method, dialect and status class",
        ("route", "method", "dialect", "status"),
    ),
    PAR: ("Pushed authorization requests (RFC 9126) by outcome", ("outcome",)),
    INTROSPECTIONS: ("Introspection answers (RFC 7662) by the token's state", ("active",)),
    REVOCATIONS: ("Revocation requests answered 200 (RFC 7009)", ()),
    ENDPOINT_REFUSED: (
        "Requests refused at the introspection, revocation and PAR endpoints",
        ("endpoint", "reason"),
    ),
}
_LATENCY = ("tokensmith_request_seconds", "Request latency by route", ("route", "method"))
#: ``le`` label values, as prometheus_client writes them: the bound, then ``+Inf``.
_LE = [repr(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]
#: A latency entry: a count per bucket (the last one ``+Inf``, not cumulative), then the sum.
_WIDTH = len(LATENCY_BUCKETS) + 2


@dataclass
class Tallies:
    """Totals of one worker or summed over several: per counter family (:data:`COUNTERS`)
    a count per label set, and per (route, method) a request count per latency bucket (the
    last one ``+Inf``, not cumulative) followed by their sum."""

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    latency: dict[tuple[str, ...], list[float]] = field(default_factory=dict)

    def count(self, family: str, key: tuple[str, ...], n: float) -> None:
        totals = self.counters.setdefault(family, {})
        totals[key] = totals.get(key, 0) + n

    def add(self, other: Tallies) -> None:
        for family, totals in other.counters.items():
            for key, n in totals.items():
                self.count(family, key, n)
        for key, counts in other.latency.items():
            mine = self.latency.get(key)
            if mine is None:
                self.latency[key] = list(counts)
            else:
                for i, c in enumerate(counts):
                    mine[i] += c

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "counters": {
                    family: [[*k, n] for k, n in counts.items()]
                    for family, counts in self.counters.items()
                },
                "latency": [[*k, v] for k, v in self.latency.items()],
            }
        )

    @classmethod
    def loads(cls, data: bytes) -> Tallies:
        """The inverse of :meth:`dumps`; ``ValueError`` (or ``TypeError``) if malformed. A
        family this version does not know is left out."""
        raw = orjson.loads(data)
        latency = {}
        for *key, counts in raw["latency"]:
            if len(counts) != _WIDTH:
                raise ValueError("latency buckets differ")
            latency[_labels(key, 2)] = [float(n) for n in counts]
        counters: dict[str, dict[tuple[str, ...], float]] = {}
        for family, rows in raw["counters"].items():
            if family in COUNTERS:
                width = len(COUNTERS[family][1])
                counters[family] = {_labels(k, width): float(n) for *k, n in rows}
        return cls(counters, latency)

    def families(self, created: dict[tuple[str, ...], float] | None = None) -> Iterator[Metric]:
        """Every metric family, as prometheus_client's ``Counter`` and ``Histogram`` expose
        them (``_created`` samples only when ``created`` is given)."""
        created = created if created is not None else {}
        for name, (doc, labels) in COUNTERS.items():
            counter = CounterMetricFamily(name, doc, labels=labels)
            for key, n in self.counters.get(name, {}).items():
                counter.add_metric(key, n, created=created.get((name, *key)))
            yield counter
        name, doc, labels = _LATENCY
        histogram = HistogramMetricFamily(name, doc, labels=labels)
        for key, counts in self.latency.items():
            *per_bucket, total = counts
            cumulative, running = [], 0.0
            for le, n in zip(_LE, per_bucket, strict=True):
                running += n
                cumulative.append((le, running))
            histogram.add_metric(key, cumulative, total)
            when = created.get((name, *key))
            if when is not None:
                histogram.add_sample(name + "_created", dict(zip(labels, key, strict=True)), when)
        yield histogram


def _labels(values: list[Any], width: int) -> tuple[str, ...]:
    if len(values) != width or not all(isinstance(v, str) for v in values):
        raise ValueError("bad label values")
    return tuple(values)


class WorkerMetrics(Collector):
    """This worker's totals, as a prometheus_client collector."""

    def __init__(self) -> None:
        self.tallies = Tallies()
        #: when each label set was first counted (the ``_created`` samples)
        self.created: dict[tuple[str, ...], float] = {}

    def add(self, tallies: Tallies) -> bool:
        """Add counts; whether there were any."""
        if not (tallies.counters or tallies.latency):
            return False
        now = time.time()
        for name, counts in tallies.counters.items():
            for key in counts:
                self.created.setdefault((name, *key), now)
        for key in tallies.latency:
            self.created.setdefault((_LATENCY[0], *key), now)
        self.tallies.add(tallies)
        return True

    def write(self, folder: Path) -> None:
        """Replace this worker's file in ``folder`` with its totals (a reader sees the old
        file or the new one, never half of one)."""
        path = folder / f"tokensmith-{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(self.tallies.dumps())
        os.replace(temporary, path)

    def collect(self) -> Iterator[Metric]:
        return self.tallies.families(self.created)


class SummedWorkers(Collector):
    """Every worker's totals in ``folder``, summed (multi-worker mode), and each live
    worker's ``process_*`` metrics with a ``pid`` label (a process's CPU time, memory and
    descriptors are its own: summing its start time or descriptor limit would mean
    nothing). A file that cannot be read is left out of the sum; a worker that exited
    keeps its counts in the sum (counters never go down) but shows no process metrics."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterator[Metric]:
        total = Tallies()
        pids = []
        for path in sorted(self.folder.glob(WORKER_FILE_GLOB)):
            try:
                total.add(Tallies.loads(path.read_bytes()))
            except (OSError, ValueError, TypeError, KeyError):
                continue
            pid = path.stem.rsplit("-", 1)[1]
            if pid.isdigit():
                pids.append(pid)
        yield from total.families()
        yield from process_families(pids)


def process_families(pids: list[str]) -> Iterator[Metric]:
    """prometheus_client's ``process_*`` families for each of ``pids`` (read from
    ``/proc``), one sample set per process under a ``pid`` label."""
    merged: dict[str, Metric] = {}
    for pid in pids:
        collector = ProcessCollector(pid=_constant(pid), registry=None)
        for family in collector.collect():
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type)
            for s in family.samples:
                into.add_sample(s.name, {**s.labels, "pid": pid}, s.value)
    yield from merged.values()


def _constant(pid: str) -> Callable[[], str]:
    return lambda: pid


class Observer:
    """Counts and logs; holds its own registry (no process-wide singletons). An injected
    ``recorder`` also counts per client, for the merchant panel's activity page.

    A request adds to plain counters in memory, one dict entry each: the latency entry of
    a request is keyed by route, dialect, method and status code, and a token response by
    grant, dialect, format, binding and whether a refresh token came with it; :meth:`flush`
    folds them into this worker's totals every ``metrics_flush_interval`` seconds
    (:meth:`start`), before each exposition and at :meth:`aclose`, where they become the
    families of :data:`COUNTERS` (``tokensmith_requests`` and ``tokensmith_request_seconds``
    from the same entries; ``tokensmith_tokens_issued`` and
    ``tokensmith_tokens_issued_by_type`` from the same token counts). The totals are exposed
    by a collector of their own (:class:`WorkerMetrics`) through prometheus_client's public
    collector interface, beside its process and platform collectors. In multi-worker mode
    (``PROMETHEUS_MULTIPROC_DIR`` set) a flush that has something new also writes the totals
    to this worker's file in that folder, one write for all label sets, and a scrape sums
    every worker's file (:class:`SummedWorkers`): so it sees its own worker's counts at once
    and the other workers' within the interval.
    """

    def __init__(
        self, recorder: ActivitySink | None = None, fingerprints: Fingerprints | None = None
    ) -> None:
        self.recorder = recorder
        #: Names presented client_ids that are no known client's, in logs and tables.
        self.fingerprints = fingerprints or Fingerprints.ephemeral()
        self.audit = AuditLog()
        self.totals = WorkerMetrics()
        self.registry = CollectorRegistry()
        self.registry.register(self.totals)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        #: per (grant, dialect, format, binding, refresh issued: "1" or "")
        self._issued: dict[tuple[str, ...], float] = {}
        self._refused: dict[tuple[str, ...], float] = {}
        #: per (family, *labels), the other endpoints' counters
        self._counted: dict[tuple[str, ...], float] = {}
        #: per (route, dialect, method, status code): a count per bucket (the last one
        #: ``+Inf``), then the sum
        self._latency: dict[tuple[Any, ...], list[float]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def issued(
        self,
        dialect: str,
        grant: str,
        client_id: str,
        scope: str,
        source: str,
        jti: str,
        *,
        token_format: str = "jwt",  # noqa: S107 (a format, no secret)
        binding: str = "bearer",
        refresh: bool = False,
    ) -> None:
        """A token response: its access token's ``token_format`` (``jwt``, ``opaque``) and
        ``binding`` (``bearer``, ``dpop``, ``mtls``, ``dpop+mtls``), and whether a refresh
        token came with it."""
        key = (grant, dialect, token_format, binding, "1" if refresh else "")
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

    def _count(self, key: tuple[str, ...]) -> None:
        self._counted[key] = self._counted.get(key, 0) + 1

    def pushed(self) -> None:
        """RFC 9126 §2.2: a pushed authorization request accepted."""
        self._count((PAR, "pushed"))

    def introspected(self, active: bool) -> None:
        """RFC 7662 §2.2: an introspection answered."""
        self._count((INTROSPECTIONS, "true" if active else "false"))

    def revoked(self) -> None:
        """RFC 7009 §2.2: a revocation answered 200."""
        self._count((REVOCATIONS,))

    def endpoint_refused(self, endpoint: str, reason: str) -> None:
        """A refusal at the ``introspect``, ``revoke`` or ``par`` endpoint; at PAR it is
        also its ``refused`` outcome."""
        self._count((ENDPOINT_REFUSED, endpoint, reason))
        if endpoint == "par":
            self._count((PAR, "refused"))

    def observe_request(
        self, route: str, dialect: str, method: str, status: int, seconds: float
    ) -> None:
        """One HTTP request: the route template, dialect, method and status code its
        response started with (``0``: none)."""
        key = (route, dialect, method, status)
        counts = self._latency.get(key)
        if counts is None:
            counts = self._latency[key] = [0.0] * _WIDTH
        # Prometheus buckets are "less than or equal": the first bound >= seconds
        counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def _drain(self) -> Tallies:
        """The counts since the last drain, as families."""
        issued, self._issued = self._issued, {}
        refused, self._refused = self._refused, {}
        counted, self._counted = self._counted, {}
        latency, self._latency = self._latency, {}
        t = Tallies()
        for (grant, dialect, fmt, binding, refresh), n in issued.items():
            t.count(ISSUED, (grant, dialect), n)
            t.count(BY_TYPE, ("access", fmt, binding), n)
            if refresh:
                t.count(BY_TYPE, ("refresh", "opaque", "-"), n)
        if refused:
            t.counters[REFUSED] = refused
        for (family, *labels), n in counted.items():
            t.count(family, tuple(labels), n)
        for (route, dialect, method, status), counts in latency.items():
            t.count(REQUESTS, (route, method, dialect, status_class(status)), sum(counts[:-1]))
            mine = t.latency.get((route, method))
            if mine is None:
                t.latency[(route, method)] = counts
            else:
                for i, n in enumerate(counts):
                    mine[i] += n
        return t

    def flush(self) -> None:
        """Add the counts taken since the last flush to this worker's totals (and, in
        multi-worker mode, to its file)."""
        if self.totals.add(self._drain()):
            folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if folder:
                self.totals.write(Path(folder))

    def start(self, interval: float) -> None:
        """Flush every ``interval`` seconds in the background (0: only at scrapes and
        :meth:`aclose`). In multi-worker mode, write this worker's file at once, so that a
        scrape shows its process metrics before it has counted anything."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            self.totals.write(Path(folder))
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
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            return summed_exposition(Path(folder))
        return bytes(generate_latest(self.registry))


def summed_exposition(folder: Path) -> bytes:
    """Prometheus text of every worker's file in ``folder``: the counts summed, the process
    metrics per ``pid``, and this process's platform (``python_info``)."""
    registry = CollectorRegistry()
    registry.register(SummedWorkers(folder))
    PlatformCollector(registry=registry)
    return bytes(generate_latest(registry))


class LatencyMiddleware:
    """Pure ASGI middleware counting and timing each HTTP request by its route template,
    dialect (``labels``, found once for every route of the app), method and the status its
    response starts with, into the observer ``observer(scope)`` finds for the request (none
    before the lifespan ran)."""

    def __init__(
        self,
        app: ASGIApp,
        observer: Callable[[Scope], Observer | None],
        labels: RouteLabels | None = None,
    ) -> None:
        self.app = app
        self._observer = observer
        self._labels = labels.by_id if labels is not None else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        def send_status(message: Message) -> Awaitable[None]:
            # not a coroutine of its own: the app awaits ``send``'s, one frame fewer a send
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        start = _perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            obs = self._observer(scope)
            if obs is not None:
                elapsed = _perf_counter() - start
                route = self._labels.get(id(scope.get("route")))
                if route is None:
                    route = (route_label(scope), "other")
                method = scope["method"]  # method_label, inline: one call fewer a request
                if method not in KNOWN_METHODS:
                    method = "other"
                obs.observe_request(route[0], route[1], method, status, elapsed)
