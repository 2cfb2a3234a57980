"""Two ``tokensmith serve --workers 2`` instances on one database, idle for a while, then a
revocation: every worker of both refuses the revoked credential within the documented
bound (``TOKENSMITH_REVOCATION_SYNC_INTERVAL`` for a JWT, ``TOKENSMITH_CLIENT_CACHE_TTL``
for a client), although each worker keeps its own caches and none of them was asked
anything while the others revoked.

Which worker answered is read from the per-worker metric files of each instance
(``PROMETHEUS_MULTIPROC_DIR``): a burst of requests on new connections counts as having
reached a worker once that worker's request count for the route has grown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, PG_URL, _create_pg_database, _drop_pg_database
from tests.e2e.conftest import Server, running_server, wait_healthy
from tokensmith.web.observe import WORKER_FILE_GLOB, Tallies

pytestmark = pytest.mark.e2e

INTERVAL = 1.0  # TOKENSMITH_REVOCATION_SYNC_INTERVAL, the default
CLIENT_CACHE_TTL = 2.0  # TOKENSMITH_CLIENT_CACHE_TTL, the default
PAUSE = 3.0  # longer than both: every worker's caches are stale when the revocation comes
WORKERS = 2
BURST = 8  # requests at once, each on a new connection
ROUNDS = 12  # bursts at most, per instance, to reach every worker
FLUSH = 0.1  # TOKENSMITH_METRICS_FLUSH_INTERVAL
ISSUER = "https://auth.fleet.test"
INTROSPECT, TOKEN = "/oauth/introspect", "/oauth/token"


@dataclass
class Fleet:
    servers: tuple[Server, Server]
    #: a client of each test, made before the servers went quiet
    jwt_owner: tuple[str, str]
    doomed: tuple[str, str]


@pytest.fixture(scope="module", params=BACKENDS)
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp(f"fleet-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            assert PG_URL is not None
            url, name = asyncio.run(_create_pg_database())
            stack.callback(lambda: asyncio.run(_drop_pg_database(name)))
        else:
            url = f"sqlite:///{workdir / 'shared.db'}"
        a = stack.enter_context(_instance(workdir / "a", url))
        b = stack.enter_context(_instance(workdir / "b", url, wait=False))
        owner, doomed = a.clients(
            ["--name", "jwt owner", "--scope", "read"], ["--name", "doomed", "--scope", "read"]
        )
        wait_healthy(b)
        yield Fleet((a, b), owner, doomed)


@contextlib.contextmanager
def _instance(workdir: Path, url: str, wait: bool = True) -> Iterator[Server]:
    metrics = workdir / "metrics"
    metrics.mkdir(parents=True)
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "TOKENSMITH_METRICS_FLUSH_INTERVAL": str(FLUSH),
    }
    args = ("--workers", str(WORKERS), "--issuer", ISSUER)
    with running_server(workdir, url, *args, extra_env=env, wait=wait) as server:
        yield server


def served(server: Server, route: str) -> dict[str, float]:
    """Requests to ``route`` each worker of ``server`` has counted (and flushed), by pid."""
    counts: dict[str, float] = {}
    for path in (server.workdir / "metrics").glob(WORKER_FILE_GLOB):
        pid = path.stem.rsplit("-", 1)[1]
        with contextlib.suppress(OSError, ValueError):  # a worker replacing its file
            latency = Tallies.loads(path.read_bytes()).latency
            # a count per bucket (not cumulative), then the sum
            counts[pid] = sum(sum(v[:-1]) for k, v in latency.items() if k[0] == route)
    return counts


def every_worker(
    server: Server, route: str, call: Callable[[httpx.Client], httpx.Response]
) -> list[httpx.Response]:
    """Bursts of ``call``, each on a new connection, until every worker of ``server`` has
    answered at least one of them (bounded): every response, in the order they came."""
    before = served(server, route)
    responses: list[httpx.Response] = []

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            return call(http)

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        for _ in range(ROUNDS):
            responses += pool.map(one, range(BURST))
            time.sleep(FLUSH * 3)
            now = served(server, route)
            grown = {pid for pid, n in now.items() if n > before.get(pid, 0.0)}
            if len(grown) >= WORKERS:
                return responses
    raise AssertionError(f"{server.base_url}: not every worker answered ({before} -> {now})")


def _both_instances(
    fleet: Fleet, route: str, call: Callable[[httpx.Client], httpx.Response]
) -> list[httpx.Response]:
    """:func:`every_worker` at both instances at once."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda s: every_worker(s, route, call), fleet.servers)
        return [r for responses in done for r in responses]


def test_a_jwt_revoked_after_a_pause_is_inactive_at_every_worker_within_the_interval(
    fleet: Fleet,
) -> None:
    a, _ = fleet.servers
    creds = fleet.jwt_owner
    issued = httpx.post(a.base_url + TOKEN, data={"grant_type": "client_credentials"}, auth=creds)
    jwt = issued.json()["access_token"]

    def introspect(http: httpx.Client) -> httpx.Response:
        return http.post(INTROSPECT, data={"token": jwt}, auth=creds)

    warm = _both_instances(fleet, INTROSPECT, introspect)
    assert {r.json()["active"] for r in warm} == {True}

    time.sleep(PAUSE)
    with httpx.Client(base_url=a.base_url) as http:  # one connection: one worker
        assert http.post("/oauth/revoke", data={"token": jwt}, auth=creds).status_code == 200
        revoked = time.monotonic()
        assert introspect(http).json() == {"active": False}  # at once on that worker
    time.sleep(max(0.0, revoked + INTERVAL - time.monotonic()))

    answers = _both_instances(fleet, INTROSPECT, introspect)
    assert [r.json() for r in answers] == [{"active": False}] * len(answers)


def test_a_client_revoked_after_a_pause_is_refused_at_every_worker_within_the_cache_ttl(
    fleet: Fleet,
) -> None:
    a, _ = fleet.servers
    creds = fleet.doomed

    def issue(http: httpx.Client) -> httpx.Response:
        return http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=creds)

    warm = _both_instances(fleet, TOKEN, issue)
    assert {r.status_code for r in warm} == {200}

    time.sleep(PAUSE)
    a.cli("clients", "revoke", creds[0])  # no instance hears of it
    revoked = time.monotonic()
    time.sleep(max(0.0, revoked + CLIENT_CACHE_TTL - time.monotonic()))

    answers = _both_instances(fleet, TOKEN, issue)
    assert [(r.status_code, r.json()["error"]) for r in answers] == [(401, "invalid_client")] * len(
        answers
    )
