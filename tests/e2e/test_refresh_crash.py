"""A server killed with SIGKILL in the middle of refresh load loses no partner session.

Partner sessions rotate their refresh tokens in parallel (RFC 6749 §6, RFC 9700 §4.14.2)
against a real ``tokensmith serve`` with its default settings, on PostgreSQL and on a SQLite
file.  The server's process group is killed while requests are in flight and started again
on the same database and port.  Each client whose request got no answer sends that same
request once more, as a client does when a response is lost.  Some of those exchanges had
committed before the kill (only the answer was lost), some had not; either way the retry
gets a fresh pair, the unanswered pair of a committed exchange is withdrawn, and every
session refreshes again afterwards ("Refresh token grace" in docs/operations.md).
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import BACKENDS, _create_pg_database, _drop_pg_database
from tests.e2e.conftest import TOKENSMITH, Server, cli, start_server, stop_server
from tests.integration.live import form
from tests.partner import sent_to
from tokensmith.core.credentials import token_key
from tokensmith.storage.sql import SqlStore, make_engine
from tokensmith.storage.sql.tables import refresh_tokens, token_families

pytestmark = pytest.mark.e2e

SESSIONS = 24
#: Kill rounds at most, until one of them caught an exchange that committed unanswered
#: (on PostgreSQL the first always does, on SQLite most do).
ROUNDS = 6
EMAIL = "ops@crash.test"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://partner.example/callback"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crash.db'}"
        return
    url, name = asyncio.run(_create_pg_database())
    try:
        yield url
    finally:
        asyncio.run(_drop_pg_database(name))


@dataclass
class Session:
    """One partner session: the refresh token it holds, and how its last request ended."""

    refresh_token: str
    rotations: int = 0
    #: The refresh token of the request that got no answer.
    unanswered: str | None = None
    failure: str | None = None


def _partner_app(server: Server) -> tuple[str, str]:
    merchant = server.cli("merchants", "create", "--name", "Crash Test Roasters")
    done = subprocess.run(
        [
            *(TOKENSMITH, "users", "create", "--merchant", merchant["merchant_id"]),
            *("--email", EMAIL, "--password-stdin", "--role", "admin", "--json"),
            *("--database-url", server.database_url),
        ],
        input=PASSWORD + "\n",
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    app = cli(
        server.env,
        server.workdir,
        *("clients", "create", "--name", "Ledger Sync", "--scope", "read write"),
        *("--grant-type", "authorization_code", "--grant-type", "refresh_token"),
        *("--redirect-uri", REDIRECT, "--database-url", server.database_url),
    )
    return app["client_id"], app["client_secret"]


def _codes(server: Server, client_id: str, n: int) -> list[str]:
    """``n`` authorization codes: one login and one consent, as a browser gives them."""
    codes = []
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        for i in range(n):
            params = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "scope": "read write",
                "state": f"s{i}",
            }
            r = browser.get("/oauth/authorize", params=params)
            if r.status_code == 200 and 'action="/login"' in r.text:
                login = form(r.text, "/login")["fields"] | {"email": EMAIL, "password": PASSWORD}
                r = browser.post("/login", data=login)
                onward = sent_to(r)
                assert onward is not None, r.text
                r = browser.get(onward)
            if r.status_code == 200 and 'action="/oauth/authorize/decision"' in r.text:
                consent = form(r.text, "/oauth/authorize/decision")["fields"]
                r = browser.post("/oauth/authorize/decision", data=consent | {"decision": "allow"})
            landing = sent_to(r)
            assert landing is not None, r.text
            codes.append(parse_qs(urlsplit(landing).query)["code"][0])
    return codes


def _sessions(server: Server, app: tuple[str, str]) -> list[Session]:
    def exchange(code: str) -> Session:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        r = httpx.post(server.base_url + "/oauth/token", data=data, auth=app, timeout=30)
        assert r.status_code == 200, r.text
        return Session(r.json()["refresh_token"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(exchange, _codes(server, app[0], SESSIONS)))


def _refresh(http: httpx.Client, token: str) -> httpx.Response:
    return http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token})


def _drive(server: Server, app: tuple[str, str], session: Session, stop: threading.Event) -> None:
    """Refresh over and over until a request gets no answer (or ``stop``)."""
    with httpx.Client(base_url=server.base_url, auth=app, timeout=30) as http:
        while not stop.is_set():
            presented = session.refresh_token
            try:
                r = _refresh(http, presented)
            except httpx.TransportError:
                session.unanswered = presented
                return
            if r.status_code != 200:
                session.failure = f"{r.status_code} {r.text}"
                return
            session.refresh_token = r.json()["refresh_token"]
            session.rotations += 1


#: Kills process group ARGV[2] as soon as a transaction that stored refresh tokens has
#: committed to SQLite file ARGV[1]: ``PRAGMA data_version`` changes once another
#: connection's commit is visible, and the newest row of ``refresh_tokens`` tells an
#: exchange from other writes.  Exits 1 if none comes within 60 s.  A process of its own,
#: so that nothing in the test's process (its load threads) delays the kill.
_KILL_AFTER_NEXT_EXCHANGE = """
import os, signal, sqlite3, sys, time
path, group = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect("file:" + path + "?mode=ro", uri=True, isolation_level=None)
def version():
    return db.execute("PRAGMA data_version").fetchone()[0]
def newest():
    return db.execute("SELECT max(rowid) FROM refresh_tokens").fetchone()[0]
seen, last, deadline = version(), newest(), time.monotonic() + 60
while True:
    while version() == seen:
        if time.monotonic() > deadline:
            sys.exit(1)
    seen = version()
    if newest() != last:
        break
os.killpg(group, signal.SIGKILL)
"""


def _kill(server: Server) -> None:
    """SIGKILL the server's process group.  PostgreSQL: at once, since a statement in
    flight commits after its client died, so a kill at any moment leaves exchanges that
    committed unanswered.  A SQLite file: right after its next exchange commits, before
    the answers are written (the commit happens in the server's own process, and a kill at
    a random moment seldom falls in between; even this one sometimes comes after the
    answers, hence several rounds)."""
    if server.database_url.startswith("sqlite:///"):
        path = server.database_url.removeprefix("sqlite:///")
        script, group = _KILL_AFTER_NEXT_EXCHANGE, str(server.proc.pid)
        argv = [sys.executable, "-I", "-S", "-c", script, path, group]
        # on a busy host the watcher must not wait for a CPU while the server answers
        os.setpriority(os.PRIO_PGRP, server.proc.pid, 19)
        assert subprocess.run(argv, timeout=90, check=False).returncode == 0, "no commit seen"
    else:
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)


def _kill_under_load(server: Server, app: tuple[str, str], sessions: list[Session]) -> None:
    """Every session refreshing in parallel; once each has rotated twice more, the server
    is killed (:func:`_kill`)."""
    start = [s.rotations for s in sessions]
    stop = threading.Event()
    with ThreadPoolExecutor(len(sessions)) as pool:
        running = [pool.submit(_drive, server, app, s, stop) for s in sessions]
        try:
            deadline = time.monotonic() + 60
            while any(s.rotations < r + 2 for s, r in zip(sessions, start, strict=True)):
                assert time.monotonic() < deadline, "the load did not get going"
                assert not any(s.failure for s in sessions), [s.failure for s in sessions]
                time.sleep(0.005)
            _kill(server)
        except AssertionError:
            stop.set()
            raise
        # each session now ends on its own: the request in flight or the next one fails
        for done in running:
            done.result(timeout=60)
    assert [s.failure for s in sessions if s.failure] == []
    assert all(s.unanswered == s.refresh_token for s in sessions)


def _retry_then_refresh(server: Server, app: tuple[str, str], s: Session) -> None:
    """The request that got no answer, once more; then the next refresh of the session."""
    assert s.unanswered is not None
    with httpx.Client(base_url=server.base_url, auth=app, timeout=30) as http:
        r = _refresh(http, s.unanswered)
        if r.status_code != 200:
            s.failure = f"retry: {r.status_code} {r.text}"
            return
        r = _refresh(http, r.json()["refresh_token"])
        if r.status_code != 200:
            s.failure = f"after the retry: {r.status_code} {r.text}"
            return
        s.refresh_token, s.unanswered = r.json()["refresh_token"], None


def _in_parallel(sessions: list[Session], work: Callable[[Session], None]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, sessions))


async def _committed(url: str, tokens: list[str]) -> list[bool]:
    """Whether each token was spent: its lost exchange had committed before the kill."""
    store = SqlStore(make_engine(url, pool_size=2))
    try:
        found = [await store.find_refresh_token(token_key(t)) for t in tokens]
    finally:
        await store.close()
    return [f is not None and f.spent_at is not None for f in found]


async def _check_one_live_chain(url: str, replayed: list[str]) -> None:
    """Every family is live and holds exactly one usable refresh token; where a lost
    exchange had committed, its unanswered pair was spent (``superseded``) and withdrawn."""
    store = SqlStore(make_engine(url, pool_size=2))
    try:
        async with store.engine.connect() as conn:
            revoked = (
                await conn.execute(
                    select(func.count()).where(token_families.c.revoked_at.is_not(None))
                )
            ).scalar_one()
            usable = (
                await conn.execute(
                    select(refresh_tokens.c.family_id, func.count())
                    .where(
                        refresh_tokens.c.spent_at.is_(None), refresh_tokens.c.revoked_at.is_(None)
                    )
                    .group_by(refresh_tokens.c.family_id)
                )
            ).all()
        assert revoked == 0
        assert len(usable) == SESSIONS and {n for _, n in usable} == {1}
        for token in replayed:
            old = await store.find_refresh_token(token_key(token))
            assert old is not None and old.replaced_by is not None
            lost = await store.find_refresh_token(old.replaced_by)
            assert lost is not None and lost.spent_reason == "superseded"
            assert lost.access_jti is not None
            access = await store.find_access_token_by_jti(lost.access_jti)
            assert access is not None and access.revoked_at is not None
    finally:
        await store.close()


def test_a_server_killed_under_refresh_load_loses_no_session(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(tmp_path / "run0", database_url)
    port = int(server.base_url.rsplit(":", 1)[1])
    app = _partner_app(server)
    sessions = _sessions(server, app)
    caught = 0  # retries whose lost exchange had committed: the case the grace is for
    try:
        for run in range(1, ROUNDS + 1):
            _kill_under_load(server, app, sessions)
            lost = [s.unanswered for s in sessions if s.unanswered]
            committed = asyncio.run(_committed(database_url, lost))
            replayed = [t for t, c in zip(lost, committed, strict=True) if c]
            caught += len(replayed)

            server = start_server(tmp_path / f"run{run}", database_url, port=port)

            _in_parallel(sessions, functools.partial(_retry_then_refresh, server, app))
            failures = [s.failure for s in sessions if s.failure]
            assert failures == [], (
                f"{len(failures)} of {SESSIONS} sessions lost after the kill "
                f"({len(replayed)} of their exchanges had committed): {failures[:3]}"
            )
            asyncio.run(_check_one_live_chain(database_url, replayed))
            if caught:
                break
    finally:
        stop_server(server)
    assert caught > 0, f"no kill in {ROUNDS} caught an exchange that committed unanswered"
