"""``tokensmith serve --workers 2``: two worker processes on one port and one SQLite file."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.e2e.conftest import Server, running_server
from tokensmith.web.observe import WORKER_FILE_GLOB, Tallies

pytestmark = pytest.mark.e2e

BATCH = 16


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("workers")
    db = f"sqlite:///{workdir / 'one.db'}"
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    with running_server(
        workdir,
        db,
        "--workers",
        "2",
        "--compat",
        "dot",
        extra_env={
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "TOKENSMITH_METRICS_FLUSH_INTERVAL": "0.1",
        },
    ) as server:
        yield server


def worker_pids(server: Server) -> set[str]:
    """Every worker: each writes a file named by its pid when it starts."""
    files = (server.workdir / "metrics").glob(WORKER_FILE_GLOB)
    return {f.stem.rsplit("-", 1)[1] for f in files}


def serving_pids(server: Server) -> set[str]:
    """Workers that have issued tokens: each flushes its totals to its file every
    ``metrics_flush_interval`` seconds."""
    pids = set()
    for path in (server.workdir / "metrics").glob(WORKER_FILE_GLOB):
        with contextlib.suppress(OSError, ValueError):  # a worker replacing its file
            if Tallies.loads(path.read_bytes()).counters.get("tokensmith_tokens_issued"):
                pids.add(path.stem.rsplit("-", 1)[1])
    return pids


def test_two_workers_issue_and_introspect_tokens_from_one_sqlite_file(workers: Server) -> None:
    creds = workers.client("--name", "busy", "--scope", "read", "--token-format", "opaque")

    def issue(_: int) -> httpx.Response:
        with httpx.Client(base_url=workers.base_url) as http:  # a new connection each time
            return http.post("/o/token/", data={"grant_type": "client_credentials"}, auth=creds)

    responses: list[httpx.Response] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        # concurrent connections until both workers have answered (bounded)
        while len(responses) < BATCH * 10 and (not responses or len(serving_pids(workers)) < 2):
            responses += pool.map(issue, range(BATCH))
    assert len(serving_pids(workers)) == 2, "one worker served every connection"
    assert {r.status_code for r in responses} == {200}
    tokens = {r.json()["access_token"] for r in responses}
    assert len(tokens) == len(responses)
    # opaque tokens live in the shared file: whichever worker answers knows every one
    with httpx.Client(base_url=workers.base_url) as http:
        for t in list(tokens)[:10]:
            r = http.post("/oauth/introspect", data={"token": t}, auth=creds)
            assert r.json()["active"] is True

    # the workers' counters are summed in /metrics, whichever worker serves the scrape: its
    # own at once, the other's after its next flush (0.1 s here)
    deadline = time.monotonic() + 2
    while (issued := issued_by_dot(workers)) != len(responses) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert issued == len(responses)
    # requests by route and status class are summed the same way (each counted once its
    # answer is sent, so perhaps one flush later); process metrics are each worker's own,
    # under its pid
    deadline = time.monotonic() + 2
    served = token_requests(workers)
    while sum(s.value for s in served) != len(responses) and time.monotonic() < deadline:
        time.sleep(0.05)
        served = token_requests(workers)
    assert sum(s.value for s in served) == len(responses)
    assert {(s.labels["dialect"], s.labels["status"]) for s in served} == {("dot", "2xx")}
    text = httpx.get(workers.base_url + "/metrics").text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    pids = {s.labels["pid"] for s in samples if s.name == "process_resident_memory_bytes"}
    assert pids == worker_pids(workers) and len(pids) == 2


def token_requests(server: Server) -> list[Sample]:
    """``tokensmith_requests_total`` of the dot token endpoint, by method and status."""
    metrics = httpx.get(server.base_url + "/metrics").text
    return [
        s
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "tokensmith_requests_total" and s.labels["route"] == "/o/token/"
    ]


def issued_by_dot(server: Server) -> float:
    metrics = httpx.get(server.base_url + "/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "tokensmith_tokens_issued_total" and s.labels.get("dialect") == "dot"
    )
