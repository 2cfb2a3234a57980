"""``tokensmith serve --metrics-port``: ``/metrics``, ``/livez`` and ``/readyz`` on their own
loopback port, every worker's counts summed there, and 404 on the public port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server, free_port, running_server

pytestmark = pytest.mark.e2e


def issued_by_dot(metrics_url: str) -> float:
    text = httpx.get(metrics_url + "/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "tokensmith_tokens_issued_total" and s.labels.get("dialect") == "dot"
    )


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    port = free_port()
    with running_server(
        tmp_path,
        f"sqlite:///{tmp_path / 'm.db'}",
        "--workers",
        str(request.param),
        "--compat",
        "dot",
        "--metrics-port",
        str(port),
        extra_env={"TOKENSMITH_METRICS_FLUSH_INTERVAL": "0.1"},
    ) as server:
        yield server, f"http://127.0.0.1:{port}"


def test_metrics_and_probes_move_to_the_metrics_port(served: tuple[Server, str]) -> None:
    server, metrics = served
    for path in ("/metrics", "/livez", "/readyz"):
        assert httpx.get(server.base_url + path).status_code == 404, path
    assert httpx.get(metrics + "/livez").status_code == 200
    ready = httpx.get(metrics + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    # the public port keeps its own health check and endpoints
    assert httpx.get(server.base_url + "/healthz").status_code == 200


def test_the_metrics_port_sums_every_workers_counts(served: tuple[Server, str]) -> None:
    server, metrics = served
    creds = server.client("--name", "m", "--scope", "read")
    n = 12
    for _ in range(n):
        with httpx.Client(base_url=server.base_url) as http:  # a new connection each time
            r = http.post("/o/token/", data={"grant_type": "client_credentials"}, auth=creds)
            assert r.status_code == 200
    deadline = time.monotonic() + 5
    while (issued := issued_by_dot(metrics)) != n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert issued == n
    text = httpx.get(metrics + "/metrics").text
    requests = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "tokensmith_requests_total" and s.labels["route"] == "/o/token/"
    ]
    assert sum(s.value for s in requests) == n
    assert {s.labels["status"] for s in requests} == {"2xx"}
    assert 'process_resident_memory_bytes{pid="' in text
