"""``tokensmith serve --workers 2``: two worker processes on one port and one SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e

REQUESTS = 40


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("workers")
    db = f"sqlite:///{workdir / 'one.db'}"
    with running_server(workdir, db, "--workers", "2", "--compat", "dot") as server:
        yield server


def test_two_workers_issue_and_introspect_tokens_from_one_sqlite_file(workers: Server) -> None:
    creds = workers.client("--name", "busy", "--scope", "read", "--token-format", "opaque")

    def issue(_: int) -> httpx.Response:
        with httpx.Client(base_url=workers.base_url) as http:  # a new connection each time
            return http.post("/o/token/", data={"grant_type": "client_credentials"}, auth=creds)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(issue, range(REQUESTS)))
    assert [r.status_code for r in responses] == [200] * REQUESTS
    tokens = {r.json()["access_token"] for r in responses}
    assert len(tokens) == REQUESTS
    # opaque tokens live in the shared file: whichever worker answers knows every one
    with httpx.Client(base_url=workers.base_url) as http:
        for t in list(tokens)[:10]:
            r = http.post("/oauth/introspect", data={"token": t}, auth=creds)
            assert r.json()["active"] is True

    # the workers' counters are summed in /metrics, whichever worker serves the scrape
    metrics = httpx.get(workers.base_url + "/metrics").text
    issued = sum(
        s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "tokensmith_tokens_issued_total" and s.labels.get("dialect") == "dot"
    )
    assert issued == REQUESTS
