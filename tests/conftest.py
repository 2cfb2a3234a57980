"""Shared fixtures: clocks, databases on SQLite and PostgreSQL, and in-process apps.

PostgreSQL tests run against ``TOKENSMITH_TEST_POSTGRES_URL`` and Redis tests against
``TOKENSMITH_TEST_REDIS_URL``; when a variable is unset, against the default local address
(127.0.0.1:5432 database ``test`` user ``postgres``; 127.0.0.1:6379) if it answers. An
empty value, or nothing listening, skips them (``tests/services.py``).

The session fails if a test wrote into the work tree (``tests/tree_guard.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.services import DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL, service_url
from tests.tree_guard import ROOT, tree_changes, tree_state
from tokensmith.core.admin import ClientSpec, create_client
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client
from tokensmith.core.randomness import SystemRandomness
from tokensmith.settings import Settings
from tokensmith.storage.sql import SqlStore, make_engine, migrate
from tokensmith.web.app import create_app
from tokensmith.web.context import STATE_KEY, AppContext

PG_URL = service_url("TOKENSMITH_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
REDIS_URL = service_url("TOKENSMITH_TEST_REDIS_URL", DEFAULT_REDIS_URL)
SECRET_KEY = "test-secret-key-Jq7Vw2Lc9Rt4Xm8Bz1Hn5Ks3Fd6Gy0Pa"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not PG_URL, reason="no PostgreSQL (TOKENSMITH_TEST_POSTGRES_URL)"),
        ],
    ),
]


# Hypothesis keeps its files (the example database, the Unicode tables of st.characters)
# in a .hypothesis folder of the working directory: here, in a temporary one.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="tokensmith-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
hypothesis_settings.register_profile("tokensmith", database=None)
hypothesis_settings.load_profile("tokensmith")

_TREE = pytest.StashKey[dict[str, str] | None]()


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TREE] = tree_state(ROOT)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test wrote into the work tree, naming what it wrote."""
    before = session.config.stash.get(_TREE, None)
    after = tree_state(ROOT) if before is not None else None
    if before is None or after is None:
        return
    changed = tree_changes(before, after)
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "the tests changed the work tree (write to a temporary folder instead): "
                + ", ".join(changed),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``TOKENSMITH_*`` variable of the calling environment reaches the test."""
    for name in list(os.environ):
        if name.startswith("TOKENSMITH_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def rand() -> SystemRandomness:
    return SystemRandomness()


async def _create_pg_database() -> tuple[str, str]:
    import asyncpg

    assert PG_URL is not None
    name = "ts_" + secrets.token_hex(6)
    admin = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=admin.host or "127.0.0.1",
        port=admin.port or 5432,
        user=admin.username or "postgres",
        password=admin.password,
        database=admin.database or "test",
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.set(database=name).render_as_string(hide_password=False), name


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    assert PG_URL is not None
    admin = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=admin.host or "127.0.0.1",
        port=admin.port or 5432,
        user=admin.username or "postgres",
        password=admin.password,
        database=admin.database or "test",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database URL of the given backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / ('db-' + secrets.token_hex(4) + '.sqlite')}"
        return
    url, name = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(name)


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@contextlib.asynccontextmanager
async def migrated_store(url: str, *, portable_rotation: bool = False) -> AsyncIterator[SqlStore]:
    """A :class:`SqlStore` on ``url`` with every migration applied, closed afterwards."""
    engine = make_engine(url)
    await migrate(engine)
    store = SqlStore(engine, portable_rotation=portable_rotation)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def sql_store(db_url: str) -> AsyncIterator[SqlStore]:
    async with migrated_store(db_url) as store:
        yield store


def make_settings(tmp_path: Path, db_url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": db_url,
        "secret_key": SECRET_KEY,
        "issuer": "https://auth.example.test",
        "compat": ("tpay", "tbc", "dot"),
        "secret_key_file": str(tmp_path / "unused.key"),
    }
    base.update(overrides)
    return Settings(**base)


@dataclass
class Harness:
    """An app running its lifespan, an in-process HTTP client, and helpers."""

    app: Starlette
    ctx: AppContext
    http: httpx.AsyncClient
    clock: FrozenClock
    #: The app as a server runs it: the lifespan state in each request's scope.
    asgi: ASGIApp

    async def client(self, **spec: Any) -> tuple[Client, str]:
        spec.setdefault("name", "test client")
        spec.setdefault("scope", "read write")
        client, secret = await create_client(
            self.ctx.store, self.clock, self.ctx.rand, ClientSpec(**spec), 86400
        )
        keyed = spec.get("jwks") or spec.get("jwks_uri") or spec.get("auth_method")
        assert secret is not None or spec.get("public") or keyed
        return client, secret or ""

    async def token(self, client_id: str, secret: str, **form: str) -> httpx.Response:
        form.setdefault("grant_type", "client_credentials")
        return await self.http.post("/oauth/token", data=form, auth=(client_id, secret))


class WithState:
    """What an ASGI server does with the lifespan state: a copy in every request's scope."""

    def __init__(self, app: ASGIApp, state: Mapping[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["state"] = dict(self.state)
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running_app(
    settings: Settings, clock: FrozenClock, **services: Any
) -> AsyncIterator[Harness]:
    """The app of ``settings`` in its lifespan; ``services`` go to ``create_app``."""
    app = create_app(settings, clock=clock, **services)
    async with app.router.lifespan_context(app) as state:
        asgi = WithState(app, state)
        transport = httpx.ASGITransport(asgi, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="https://auth.example.test"
        ) as http:
            yield Harness(app, state[STATE_KEY], http, clock, asgi)


@pytest.fixture
async def harness(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The app on SQLite (the endpoint tests' default)."""
    async with running_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'app.db'}"), clock) as h:
        yield h


@pytest.fixture
async def harness_any(db_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The app on each backend."""
    async with running_app(make_settings(tmp_path, db_url), clock) as h:
        yield h


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
