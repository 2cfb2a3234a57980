"""A real ``tokensmith serve`` on PostgreSQL behind a proxy the test cuts: 503 with
``Retry-After`` in each dialect while the database is away, the probes say so, and the same
process serves again once it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database
from tests.e2e.conftest import Server, running_server
from tests.outage import DatabaseProxy, database_proxy

#: Seconds the server keeps client records and API keys (short, so that the test need not
#: wait long before every request needs the database).
CACHE_TTL = 0.3

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set"),
]


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Server, DatabaseProxy]]:
    url, name = asyncio.run(_create_pg_database())
    try:
        with (
            database_proxy(url) as proxy,
            running_server(
                tmp_path,
                proxy.url(url),
                "--compat",
                "tbc",
                "--compat",
                "dot",
                extra_env={"TOKENSMITH_CLIENT_CACHE_TTL": str(CACHE_TTL)},
            ) as s,
        ):
            try:
                yield s, proxy
            finally:
                proxy.restore()
    finally:
        asyncio.run(_drop_pg_database(name))


def test_a_server_answers_503_while_postgres_is_cut_and_serves_again_without_a_restart(
    proxied: tuple[Server, DatabaseProxy],
) -> None:
    server, proxy = proxied
    client_id, secret = server.client("--name", "outage", "--scope", "read write")
    apikey = server.cli("apikeys", "create", "--name", "outage app")["apikey"]
    form = {"client_id": client_id, "client_secret": secret}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:

        def standard() -> httpx.Response:
            body = {"grant_type": "client_credentials"}
            return http.post("/oauth/token", data=body, auth=(client_id, secret))

        def tbc() -> httpx.Response:
            return http.post("/v2/tpay/access-token", data=form, headers={"apikey": apikey})

        def dot() -> httpx.Response:
            return http.post("/o/token/", data=form | {"grant_type": "client_credentials"})

        assert [f().status_code for f in (standard, tbc, dot)] == [200, 200, 200]
        pid = server.proc.pid

        proxy.cut()
        time.sleep(CACHE_TTL * 1.5)  # until then a JWT for a cached client needs no database
        for _ in range(2):
            for send, media in (
                (standard, "application/json"),
                (tbc, "application/problem+json"),
                (dot, "application/json"),
            ):
                r = send()
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "5"
                assert r.headers["content-type"] == media
                body = r.json()
                assert body.get("error", body.get("code")) == "temporarily_unavailable"
            assert http.get("/livez").status_code == 200
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"] == "unavailable"

        proxy.restore()
        assert [f().status_code for f in (standard, tbc, dot)] == [200, 200, 200]
        assert http.get("/readyz").status_code == 200
        assert server.proc.poll() is None and server.proc.pid == pid
    assert "unhandled error" not in server.log()
