"""``/metrics``: tokens issued and refused by grant, dialect and reason, and request latency."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Harness
from tokensmith.core.admin import create_api_key
from tokensmith.web.observe import LATENCY_BUCKETS, Observer

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
    transport = httpx.ASGITransport(harness.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
        r = await http.get("/metrics")
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {
        "tokensmith_tokens_issued",
        "tokensmith_tokens_refused",
        "tokensmith_request_seconds",
    } <= names


# -- counts are taken in memory and flushed into the Prometheus metrics ------------------

LATENCIES = [0.0, 0.0004, 0.0005, 0.0005001, 0.001, 0.003, 0.01, 0.2, 1.0, 1.5, 42.0]


def histogram_samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for family in registry.collect()
        if family.name == "tokensmith_request_seconds"
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_flushed_latency_equals_observing_each_request() -> None:
    """Bucket edges included: a bound holds the requests that took exactly that long."""
    tallied = Observer()
    for seconds in LATENCIES:
        tallied.observe_request("/oauth/token", "oauth", "POST", 200, seconds)
    tallied.flush()
    reference = CollectorRegistry()
    histogram = Histogram(
        "tokensmith_request_seconds",
        "Request latency by route",
        ["route", "method"],
        registry=reference,
        buckets=LATENCY_BUCKETS,
    )
    for seconds in LATENCIES:
        histogram.labels("/oauth/token", "POST").observe(seconds)
    assert histogram_samples(tallied.registry) == histogram_samples(reference)
    assert histogram_samples(reference)[("tokensmith_request_seconds_count", "")] == 11


def issued_count(observer: Observer) -> float | None:
    labels = {"grant": "client_credentials", "dialect": "oauth"}
    return observer.registry.get_sample_value("tokensmith_tokens_issued_total", labels)


def issue(observer: Observer, n: int) -> None:
    for i in range(n):
        observer.issued("oauth", "client_credentials", "c1", "read", "127.0.0.1", f"j{i}")


async def test_background_flush_moves_counts_into_the_metrics() -> None:
    observer = Observer()
    observer.start(0.01)
    try:
        issue(observer, 3)
        assert issued_count(observer) is None  # not yet flushed
        for _ in range(200):
            if issued_count(observer) is not None:
                break
            await asyncio.sleep(0.01)
        assert issued_count(observer) == 3
        issue(observer, 2)
        await asyncio.sleep(0.05)
        assert issued_count(observer) == 5
    finally:
        await observer.aclose()


async def test_closing_flushes_what_is_left() -> None:
    """A stopping worker's last counts reach its metrics files (multi-process mode)."""
    observer = Observer()
    observer.start(3600)
    issue(observer, 4)
    observer.refused("oauth", "client_credentials", "bad_secret", "c1", "127.0.0.1")
    await observer.aclose()
    assert issued_count(observer) == 4
    refused = {"grant": "client_credentials", "dialect": "oauth", "reason": "bad_secret"}
    assert observer.registry.get_sample_value("tokensmith_tokens_refused_total", refused) == 1


async def test_a_scrape_shows_its_own_counts_without_waiting(harness: Harness) -> None:
    """The harness app flushes every second; a scrape flushes this worker's counts first."""
    client, secret = await harness.client()
    for _ in range(3):
        assert (await harness.token(client.client_id, secret)).status_code == 200
    m = await scrape(harness)
    cc = "client_credentials"
    assert sample(m, "tokensmith_tokens_issued_total", grant=cc, dialect="oauth") == 3


# -- multi-worker mode: each worker's totals in its file, summed at a scrape ---------------


def exposition_samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if not s.name.endswith("_created") and s.name.startswith("tokensmith_")
    }


def test_multi_worker_scrape_sums_every_workers_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker's file is added to this worker's counts; a file cut short or
    foreign to the format is left out instead of failing the scrape."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    other = Observer()
    issue(other, 2)
    for seconds in LATENCIES:
        other.observe_request("/oauth/token", "oauth", "POST", 200, seconds)
    other.flush()
    (tmp_path / f"tokensmith-{os.getpid()}.json").rename(tmp_path / "tokensmith-1.json")
    (tmp_path / "tokensmith-2.json").write_bytes(b'{"issued": [["client_cre')
    (tmp_path / "tokensmith-3.json").write_bytes(b'{"issued": [[1, 2, 3]]}')
    this = Observer()
    issue(this, 3)
    this.observe_request("/oauth/token", "oauth", "POST", 200, 0.003)

    summed = exposition_samples(this.exposition())

    alone = Observer()
    issue(alone, 5)
    for seconds in [*LATENCIES, 0.003]:
        alone.observe_request("/oauth/token", "oauth", "POST", 200, seconds)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert summed == exposition_samples(alone.exposition())
    cc = {"grant": "client_credentials", "dialect": "oauth"}
    assert summed[("tokensmith_tokens_issued_total", frozenset(cc.items()))] == 5
    # the worker's file replaced whole: no temporary file left behind
    assert {p.name for p in tmp_path.iterdir()} == {
        f"tokensmith-{os.getpid()}.json",
        "tokensmith-1.json",
        "tokensmith-2.json",
        "tokensmith-3.json",
    }


def test_multi_worker_scrape_shows_each_live_workers_process_metrics_by_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process metrics are a process's own: one sample set per worker under ``pid``, never
    summed; a worker whose process is gone shows none."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "tokensmith-999999999.json").write_bytes(b'{"counters": {}, "latency": []}')
    this = Observer()
    issue(this, 1)
    text = this.exposition().decode()
    pids = {
        s.labels.get("pid")
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "process_resident_memory_bytes"
    }
    assert pids == {str(os.getpid())}
    assert "python_info" in text
