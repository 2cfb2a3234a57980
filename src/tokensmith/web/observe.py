"""Audit events and Prometheus metrics for every issuance and refusal."""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from tokensmith.core.fingerprints import Fingerprints
from tokensmith.logs import AuditLog
from tokensmith.web.tasks import stop_task

__all__ = [
    "LATENCY_BUCKETS",
    "LatencyMiddleware",
    "Observer",
    "SummedWorkers",
    "Tallies",
    "WorkerMetrics",
    "method_label",
    "route_label",
]

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


#: In multi-worker mode, each worker's totals: ``tokensmith-<pid>.json`` in
#: ``PROMETHEUS_MULTIPROC_DIR``.
WORKER_FILE_GLOB = "tokensmith-*.json"

_ISSUED = ("tokensmith_tokens_issued", "Access tokens issued", ("grant", "dialect"))
_REFUSED = (
    "tokensmith_tokens_refused",
    "Token requests refused",
    ("grant", "dialect", "reason"),
)
_LATENCY = ("tokensmith_request_seconds", "Request latency by route", ("route", "method"))
#: ``le`` label values, as prometheus_client writes them: the bound, then ``+Inf``.
_LE = [repr(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]


@dataclass
class Tallies:
    """Totals of one worker or summed over several: tokens issued by (grant, dialect),
    refused by (grant, dialect, reason), and per (route, method) a request count per
    latency bucket (the last one ``+Inf``, not cumulative) followed by their sum."""

    issued: dict[tuple[str, ...], float] = field(default_factory=dict)
    refused: dict[tuple[str, ...], float] = field(default_factory=dict)
    latency: dict[tuple[str, ...], list[float]] = field(default_factory=dict)

    def add(self, other: Tallies) -> None:
        for key, n in other.issued.items():
            self.issued[key] = self.issued.get(key, 0) + n
        for key, n in other.refused.items():
            self.refused[key] = self.refused.get(key, 0) + n
        for key, counts in other.latency.items():
            mine = self.latency.get(key)
            if mine is None:
                self.latency[key] = list(counts)
            else:
                for i, n in enumerate(counts):
                    mine[i] += n

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "issued": [[*k, n] for k, n in self.issued.items()],
                "refused": [[*k, n] for k, n in self.refused.items()],
                "latency": [[*k, v] for k, v in self.latency.items()],
            }
        )

    @classmethod
    def loads(cls, data: bytes) -> Tallies:
        """The inverse of :meth:`dumps`; ``ValueError`` (or ``TypeError``) if malformed."""
        raw = orjson.loads(data)
        width = len(LATENCY_BUCKETS) + 2
        latency = {}
        for *key, counts in raw["latency"]:
            if len(counts) != width:
                raise ValueError("latency buckets differ")
            latency[_labels(key, 2)] = [float(n) for n in counts]
        return cls(
            issued={_labels(k, 2): float(n) for *k, n in raw["issued"]},
            refused={_labels(k, 3): float(n) for *k, n in raw["refused"]},
            latency=latency,
        )

    def families(self, created: dict[tuple[str, ...], float] | None = None) -> Iterator[Metric]:
        """The three metric families, as prometheus_client's ``Counter`` and ``Histogram``
        expose them (``_created`` samples only when ``created`` is given)."""
        created = created if created is not None else {}
        for (name, doc, labels), totals in ((_ISSUED, self.issued), (_REFUSED, self.refused)):
            counter = CounterMetricFamily(name, doc, labels=labels)
            for key, n in totals.items():
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

    def add(
        self,
        issued: dict[tuple[str, ...], float],
        refused: dict[tuple[str, ...], float],
        latency: dict[tuple[str, ...], list[float]],
    ) -> bool:
        """Add counts; whether there were any."""
        if not (issued or refused or latency):
            return False
        now = time.time()
        for name, counts in ((_ISSUED[0], issued), (_REFUSED[0], refused), (_LATENCY[0], latency)):
            for key in counts:
                self.created.setdefault((name, *key), now)
        self.tallies.add(Tallies(issued, refused, latency))
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
    """Every worker's totals in ``folder``, summed (multi-worker mode). A file that cannot
    be read is left out of the sum."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterator[Metric]:
        total = Tallies()
        for path in sorted(self.folder.glob(WORKER_FILE_GLOB)):
            try:
                total.add(Tallies.loads(path.read_bytes()))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return total.families()


class Observer:
    """Counts and logs; holds its own registry (no process-wide singletons). An injected
    ``recorder`` also counts per client, for the merchant panel's activity page.

    A request adds to plain counters in memory; :meth:`flush` adds them to this worker's
    totals every ``metrics_flush_interval`` seconds (:meth:`start`), before each
    exposition and at :meth:`aclose`. The totals are exposed by a collector of their own
    (:class:`WorkerMetrics`) through prometheus_client's public collector interface. In
    multi-worker mode (``PROMETHEUS_MULTIPROC_DIR`` set) a flush that has something new
    also writes the totals to this worker's file in that folder, one write for all label
    sets, and a scrape sums every worker's file: so it sees its own worker's counts at
    once and the other workers' within the interval.
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
        self._issued: dict[tuple[str, ...], float] = {}
        self._refused: dict[tuple[str, ...], float] = {}
        #: per (route, method): a count per bucket (the last one ``+Inf``), then the sum
        self._latency: dict[tuple[str, ...], list[float]] = {}
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
        """Add the counts taken since the last flush to this worker's totals (and, in
        multi-worker mode, to its file)."""
        issued, self._issued = self._issued, {}
        refused, self._refused = self._refused, {}
        latency, self._latency = self._latency, {}
        if self.totals.add(issued, refused, latency):
            folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            if folder:
                self.totals.write(Path(folder))

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
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            registry = CollectorRegistry()
            registry.register(SummedWorkers(Path(folder)))
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


class LatencyMiddleware:
    """Pure ASGI middleware timing each HTTP request by its route template, into the
    observer ``observer(scope)`` finds for the request (none before the lifespan ran)."""

    def __init__(self, app: ASGIApp, observer: Callable[[Scope], Observer | None]) -> None:
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
            obs = self._observer(scope)
            if obs is not None:
                elapsed = time.perf_counter() - start
                obs.observe_latency(route_label(scope), method_label(scope), elapsed)
