"""A database outage answers 503 ``temporarily_unavailable`` with ``Retry-After`` in each
endpoint's dialect, never 500, and the server recovers by itself when the database is back.

PostgreSQL is reached through a loopback proxy the test cuts (:mod:`tests.outage`); the
shared server itself is never stopped. SQLite's outage is its file locked by another
connection for longer than the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import (
    PG_URL,
    Harness,
    WithState,
    fresh_database,
    make_settings,
    running_app,
)
from tests.outage import DatabaseProxy, database_proxy
from tests.partner import Partner, make_partner
from tokensmith.core.admin import create_api_key
from tokensmith.core.clock import FrozenClock
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.models import AccessTokenRecord
from tokensmith.core.panel_models import hour_of
from tokensmith.storage.sql import engine as sql_engine
from tokensmith.storage.sql import make_engine
from tokensmith.storage.sql.migrate import alembic_config
from tokensmith.web.app import middleware
from tokensmith.web.context import STATE_KEY
from tokensmith.web.fastpath import HotRoute, TokensmithApp

TBC = "/v2/tpay/access-token"
RETRY_AFTER = "5"


@dataclass
class World:
    """An app on a database the test can take away, and what its requests need."""

    h: Harness
    client_id: str
    secret: str
    apikey: str
    opaque: str
    partner: Partner


async def _world(h: Harness) -> World:
    client, secret = await h.client(scope="read write")
    _, apikey = await create_api_key(h.ctx.store, h.clock, h.ctx.rand, "outage app")
    r = await h.http.post(
        "/o/token/",
        data={"grant_type": "client_credentials", "client_id": client.client_id},
        auth=(client.client_id, secret),
    )
    assert r.status_code == 200, r.text
    return World(
        h, client.client_id, secret, apikey, r.json()["access_token"], await make_partner(h)
    )


Send = Callable[[World], Awaitable[httpx.Response]]


def _oauth_token(w: World) -> Awaitable[httpx.Response]:
    form = {"grant_type": "client_credentials"}
    return w.h.http.post("/oauth/token", data=form, auth=(w.client_id, w.secret))


def _tpay(w: World) -> Awaitable[httpx.Response]:
    form = {"client_id": w.client_id, "client_secret": w.secret}
    return w.h.http.post("/oauth/auth", data=form)


def _tbc(w: World) -> Awaitable[httpx.Response]:
    form = {"client_id": w.client_id, "client_secret": w.secret}
    return w.h.http.post(TBC, data=form, headers={"apikey": w.apikey})


def _dot(w: World) -> Awaitable[httpx.Response]:
    form = {"grant_type": "client_credentials", "scope": "read"}
    return w.h.http.post("/o/token/", data=form | _body_auth(w))


def _introspect(w: World) -> Awaitable[httpx.Response]:
    return w.h.http.post("/oauth/introspect", data={"token": w.opaque}, auth=_basic(w))


def _revoke(w: World) -> Awaitable[httpx.Response]:
    return w.h.http.post("/oauth/revoke", data={"token": w.opaque}, auth=_basic(w))


def _login_page(w: World) -> Awaitable[httpx.Response]:
    return w.h.http.get("/login")


def _authorize_page(w: World) -> Awaitable[httpx.Response]:
    return w.h.http.get("/oauth/authorize", params=w.partner.params())


def _panel_page(w: World) -> Awaitable[httpx.Response]:
    # a session cookie makes the page look its session up
    return w.h.http.get("/panel/keys", headers={"cookie": "__Host-tokensmith=" + "a" * 43})


def _basic(w: World) -> tuple[str, str]:
    return (w.client_id, w.secret)


def _body_auth(w: World) -> dict[str, str]:
    return {"client_id": w.client_id, "client_secret": w.secret}


#: (name, request, wire dialect of its errors, status once the database is back)
CALLS: list[tuple[str, Send, str, int]] = [
    ("POST /oauth/token", _oauth_token, "oauth", 200),
    ("POST /oauth/auth (tpay)", _tpay, "oauth", 200),
    ("POST /v2/tpay/access-token (tbc)", _tbc, "problem", 200),
    ("POST /o/token/ (dot)", _dot, "oauth", 200),
    ("POST /oauth/introspect", _introspect, "oauth", 200),
    ("POST /oauth/revoke", _revoke, "oauth", 200),
    ("GET /login", _login_page, "html", 200),
    ("GET /oauth/authorize", _authorize_page, "html", 200),
    ("GET /panel/keys", _panel_page, "html", 303),
]
#: What SQLite answers while another connection holds its write lock: reads go on (WAL),
#: and a JWT outside a refresh token family is not stored.
NO_WRITES = frozenset(
    {
        "POST /oauth/token",
        "POST /v2/tpay/access-token (tbc)",
        "POST /oauth/introspect",
        "GET /panel/keys",
    }
)
WRITES = frozenset(c[0] for c in CALLS) - NO_WRITES


def _unavailable(dialect: str, after: int, r: httpx.Response) -> str | None:
    """What is wrong with ``r`` as a 503 in ``dialect``, or ``None``."""
    if r.status_code != 503:
        return f"status {r.status_code}: {r.text[:200]}"
    if r.headers.get("retry-after") != RETRY_AFTER:
        return f"Retry-After {r.headers.get('retry-after')!r}"
    media = r.headers.get("content-type", "")
    if dialect == "html":
        ok = media.startswith("text/html") and "temporarily unavailable" in r.text
        return None if ok else f"not the HTML 503 page: {media} {r.text[:200]}"
    if r.headers.get("cache-control") != "no-store":
        return "no Cache-Control: no-store"
    body = r.json()
    if dialect == "problem":
        ok = media == "application/problem+json" and bool(body.pop("detail", None))
        return None if ok and body == PROBLEM_503 else f"problem body {media} {body}"
    ok = media == "application/json" and set(body) == {"error", "error_description"}
    ok = ok and body["error"] == "temporarily_unavailable"
    return None if ok else f"RFC 6749 body {media} {body}"


def _back(dialect: str, after: int, r: httpx.Response) -> str | None:
    """``r`` has the status the request gets with the database up."""
    return None if r.status_code == after else f"status {r.status_code}: {r.text[:200]}"


PROBLEM_503 = {
    "type": "https://developers.tbcbank.ge/docs/error-type-503",
    "title": "Service Unavailable",
    "status": "503",
    "systemCode": "tpay-access-token.503.001",
    "code": "temporarily_unavailable",
}

Check = Callable[[str, int, httpx.Response], str | None]


async def _wrong(w: World, check: Check, names: frozenset[str] | None = None) -> list[str]:
    """Send the calls of :data:`CALLS` (those in ``names``, if given); what ``check`` finds
    wrong. The
    cached client records and API keys are let expire first, so that every call needs the
    database."""
    _expire_caches(w.h)
    wrong = []
    for name, send, dialect, after in CALLS:
        if names is None or name in names:
            problem = check(dialect, after, await send(w))
            if problem is not None:
                wrong.append(f"{name}: {problem}")
    return wrong


def _expire_caches(h: Harness) -> None:
    h.clock.advance(h.ctx.settings.client_cache_ttl + 1)


def postgres(fn: Any) -> Any:
    return pytest.mark.postgres(
        pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set")(fn)
    )


# -- PostgreSQL behind a proxy the test cuts ---------------------------------------------------


@dataclass
class Cuttable:
    w: World
    proxy: DatabaseProxy
    direct_url: str


@pytest.fixture
async def cuttable(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Cuttable]:
    async with fresh_database("postgres", tmp_path) as url:
        with database_proxy(url) as proxy:
            settings = make_settings(
                tmp_path,
                proxy.url(url),
                purge_interval=0.05,
                activity_flush_interval=0.05,
                revocation_sync_interval=0.05,
            )
            async with running_app(settings, clock) as h:
                try:
                    yield Cuttable(await _world(h), proxy, url)
                finally:
                    proxy.restore()


@postgres
async def test_every_endpoint_answers_503_in_its_dialect_while_postgres_is_cut_and_recovers(
    cuttable: Cuttable,
) -> None:
    w, proxy = cuttable.w, cuttable.proxy
    proxy.cut()
    # twice: first on the pooled connections the cut dropped, then on refused new ones
    for attempt in (1, 2):
        wrong = await _wrong(w, _unavailable)
        assert not wrong, f"during the cut (round {attempt}):\n" + "\n".join(wrong)
    metrics = (await w.h.http.get("/metrics")).text
    assert 'reason="database_unavailable"' in metrics  # tokensmith_tokens_refused_total
    proxy.restore()
    wrong = await _wrong(w, _back)
    assert not wrong, "after the database came back, without a restart:\n" + "\n".join(wrong)


@postgres
async def test_livez_stays_up_and_readyz_follows_the_database(cuttable: Cuttable) -> None:
    http = cuttable.w.h.http
    live, ready = await http.get("/livez"), await http.get("/readyz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["database"] == "ok"

    assert (await _oauth_token(cuttable.w)).status_code == 200  # the client is cached now
    cuttable.proxy.cut()
    # a JWT for a client the cache holds needs no database
    assert (await _oauth_token(cuttable.w)).status_code == 200
    for _ in range(2):
        live, ready, metrics, jwks = (
            await http.get("/livez"),
            await http.get("/readyz"),
            await http.get("/metrics"),
            await http.get("/.well-known/jwks.json"),
        )
        assert live.status_code == metrics.status_code == jwks.status_code == 200
        assert ready.status_code == 503, ready.text
        assert ready.headers["content-type"] == "application/json"
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["database"] == "unavailable"

    cuttable.proxy.restore()
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text


@postgres
async def test_background_jobs_outlive_a_cut_and_resume(cuttable: Cuttable) -> None:
    """The activity flush keeps what it counted through the outage (the tokens issued
    before it, whose flushes failed), and the purge job runs again afterwards. The 503s
    themselves are no client's refusals: the client could not be looked up, so nothing
    names it (see test_misplaced_credentials)."""
    w, h = cuttable.w, cuttable.w.h
    since = hour_of(h.clock.now())
    assert (await _oauth_token(w)).status_code == 200
    cuttable.proxy.cut()
    for _ in range(3):
        _expire_caches(h)
        assert (await _oauth_token(w)).status_code == 503
    await asyncio.sleep(0.6)  # a dozen failed flushes and purges
    cuttable.proxy.restore()

    async def counted() -> bool:
        counts = await h.ctx.store.token_counts([w.client_id], since)
        failures = await h.ctx.store.recent_auth_failures(None, 100)
        return sum(c.issued for c in counts) >= 2 and failures == []

    await _eventually(counted, "the counts taken during the outage were written")

    expired = AccessTokenRecord(
        "expired-jti", w.client_id, w.client_id, "read", h.clock.now() - 10, h.clock.now() - 5
    )
    await h.ctx.store.add_access_token(expired)

    async def purged() -> bool:
        return await h.ctx.store.find_access_token_by_jti("expired-jti") is None

    await _eventually(purged, "the purge job ran again")


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not seen within {within}s: {what}"
        await asyncio.sleep(0.05)


# -- readiness and the schema --------------------------------------------------------------


async def test_readyz_is_503_while_the_database_is_one_migration_behind(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    async with running_app(make_settings(tmp_path, db_url), clock) as h:
        ready = await h.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        head = ready.json()["migrations"]["expected"]

        previous = await _alembic(db_url, "downgrade", "-1")
        ready = await h.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not_ready",
            "database": "ok",
            "migrations": {"state": "behind", "applied": [previous], "expected": head},
        }
        assert (await h.http.get("/livez")).status_code == 200

        await _alembic(db_url, "upgrade", "head")
        assert (await h.http.get("/readyz")).status_code == 200


async def _alembic(url: str, command_name: str, target: str) -> str:
    """Run an Alembic command on ``url``; return the revision the database is left at."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    def run(conn: Any) -> str:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        getattr(command, command_name)(cfg, target)
        heads = MigrationContext.configure(conn).get_current_heads()
        return str(heads[0])

    eng = make_engine(url, pool_size=1)
    try:
        async with eng.begin() as conn:
            return await conn.run_sync(run)
    finally:
        await eng.dispose()


# -- SQLite: the file locked past the busy timeout -------------------------------------------


async def test_a_sqlite_file_locked_past_the_busy_timeout_answers_503_and_recovers(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection holds the write lock longer than ``busy_timeout``: every request
    that writes answers 503 in its dialect, the others are served, and all is well once the
    lock is let go."""
    monkeypatch.setattr(sql_engine, "BUSY_TIMEOUT_MS", 100)
    database = tmp_path / "app.db"
    async with running_app(make_settings(tmp_path, f"sqlite:///{database}"), clock) as h:
        w = await _world(h)
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            wrong = await _wrong(w, _unavailable, WRITES)
            assert not wrong, "writes while the file is locked:\n" + "\n".join(wrong)
            wrong = await _wrong(w, _back, NO_WRITES)
            assert not wrong, "the rest while the file is locked:\n" + "\n".join(wrong)
        finally:
            other.execute("ROLLBACK")
            other.close()
        wrong = await _wrong(w, _back)
        assert not wrong, "after the lock was let go:\n" + "\n".join(wrong)


# -- the last answer of each path -------------------------------------------------------------


async def _down(request: Request) -> Response:
    raise TemporarilyUnavailable()


@pytest.mark.parametrize(
    ("path", "dialect"),
    [
        ("/oauth/token", "oauth"),
        ("/oauth/auth", "oauth"),
        (TBC, "problem"),
        ("/o/token/", "oauth"),
        ("/oauth/introspect", "oauth"),
        ("/oauth/revoke", "oauth"),
    ],
)
async def test_the_hot_path_answers_an_outage_its_handler_let_through_in_its_dialect(
    harness: Harness, path: str, dialect: str
) -> None:
    """The token endpoints skip Starlette's exception layer; the app's middleware renders it."""
    app = TokensmithApp(routes=[HotRoute(path, _down, methods=["POST"])], middleware=middleware())
    transport = httpx.ASGITransport(WithState(app, {STATE_KEY: harness.ctx}))
    async with httpx.AsyncClient(transport=transport, base_url="https://auth.example.test") as http:
        r = await http.post(path, data={"grant_type": "client_credentials"})
    assert _unavailable(dialect, 200, r) is None, r.text


async def test_an_outage_outside_the_hot_path_is_answered_503_not_500(harness: Harness) -> None:
    harness.app.router.routes.append(Route("/down", _down))
    r = await harness.http.get("/down")
    assert _unavailable("oauth", 200, r) is None, r.text


class _Hiccup:
    """``call`` that fails once with an outage, then works: the database blinked."""

    def __init__(self, call: Callable[..., Awaitable[Any]]) -> None:
        self._call = call
        self.failed = False

    async def __call__(self, *args: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise TemporarilyUnavailable()
        return await self._call(*args)


async def test_a_blink_on_the_authorization_page_is_the_outage_page_not_a_bad_link(
    harness: Harness,
) -> None:
    partner = await make_partner(harness)
    harness.ctx.clients.get_client = _Hiccup(harness.ctx.clients.get_client)  # type: ignore[method-assign]
    r = await partner.authorize()
    assert _unavailable("html", 200, r) is None, r.text


async def test_a_blink_on_logout_is_the_outage_page_not_an_expired_form(harness: Harness) -> None:
    sessions = harness.ctx.sessions
    blink = sessions.resolve = _Hiccup(sessions.resolve)  # type: ignore[method-assign]
    r = await harness.http.post(
        "/logout",
        data={"csrf_token": "x"},
        headers={"cookie": "__Host-tokensmith=" + "a" * 43},
    )
    assert blink.failed
    assert _unavailable("html", 200, r) is None, r.text


def test_the_readiness_check_knows_the_same_head_as_alembic() -> None:
    from alembic.script import ScriptDirectory

    from tokensmith.storage.sql.migrate import expected_revisions

    script = ScriptDirectory.from_config(alembic_config())
    assert expected_revisions() == frozenset(script.get_heads())
