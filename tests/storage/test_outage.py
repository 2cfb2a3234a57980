"""An unreachable database raises ``TemporarilyUnavailable`` out of the storage layer, and
only then: a refused statement stays what it was. The store recovers by itself."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_URL, fresh_database, migrated_store
from tests.outage import database_proxy
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.models import AccessTokenRecord, Client
from tokensmith.storage.sql import SqlStore, make_engine, outage
from tokensmith.storage.sql import engine as sql_engine
from tokensmith.storage.sql.batch import GroupCommit
from tokensmith.storage.sql.outage import OutagePool, is_outage, watch
from tokensmith.storage.sql.sqlite_writer import sqlite_writer
from tokensmith.storage.sql.tables import access_tokens
from tokensmith.storage.sql.write_paths import WritePath


def _dbapi(orig: BaseException, invalidated: bool = False) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError.instance(
        "SELECT 1", None, orig, Exception, connection_invalidated=invalidated
    )


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (ConnectionResetError(104, "reset by peer"), True),
        (TimeoutError(), True),
        (sa_exc.TimeoutError("QueuePool limit of size 20 overflow 0 reached"), True),
        (_dbapi(RuntimeError("connection was closed"), invalidated=True), True),
        (_dbapi(sqlite3.OperationalError("database is locked")), True),
        (_dbapi(sqlite3.OperationalError("unable to open database file")), True),
        (_dbapi(asyncpg.exceptions.CannotConnectNowError("starting up")), True),
        (_dbapi(asyncpg.exceptions.AdminShutdownError("terminating connection")), True),
        (_dbapi(asyncpg.exceptions.TooManyConnectionsError("too many clients")), True),
        (_dbapi(asyncpg.exceptions.ConnectionDoesNotExistError("closed")), True),
        (_dbapi(sqlite3.IntegrityError("UNIQUE constraint failed")), False),
        (_dbapi(sqlite3.OperationalError("no such table: clients")), False),
        (_dbapi(asyncpg.exceptions.UniqueViolationError("duplicate key")), False),
        (_dbapi(asyncpg.exceptions.UndefinedTableError("relation does not exist")), False),
        (_dbapi(asyncpg.exceptions.InvalidPasswordError("password authentication failed")), False),
        (ValueError("not a database error"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_only_an_unreachable_database_counts_as_an_outage(
    error: BaseException, outage: bool
) -> None:
    assert is_outage(error) is outage


def test_an_outage_is_logged_at_most_every_ten_seconds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr(outage, "monotonic", lambda: now[0])
    monkeypatch.setattr(outage, "_last_logged", float("-inf"))
    caplog.set_level(logging.WARNING, "tokensmith.storage")
    for step in (0.0, 1.0, 8.9, 0.2):  # 1000, 1001, 1009.9, 1010.1
        now[0] += step
        outage.unavailable(ConnectionRefusedError(111, "refused"))
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2  # at 1000 and at 1010.1
    assert logged[0].startswith("database unavailable (ConnectionRefusedError)")


# -- PostgreSQL through a proxy the test cuts --------------------------------------------------


@pytest.fixture
async def pg_url(tmp_path: Path) -> AsyncIterator[str]:
    if not PG_URL:
        pytest.skip("TOKENSMITH_TEST_POSTGRES_URL not set")
    async with fresh_database("postgres", tmp_path) as url, migrated_store(url):
        yield url


def _record(jti: str) -> AccessTokenRecord:
    return AccessTokenRecord(jti, "c1", "c1", "read", 100.0, 3700.0, token_hash="h" + jti)


@pytest.mark.postgres
async def test_a_cut_postgres_raises_temporarily_unavailable_and_the_store_recovers(
    pg_url: str,
) -> None:
    with database_proxy(pg_url) as proxy:
        store = SqlStore(make_engine(proxy.url(pg_url), pool_size=4))
        try:
            await store.add_client(Client("c1", "one", scopes=("read",)))
            await store.add_access_token(_record("before"))
            proxy.cut()
            for round_ in range(2):  # dropped pooled connections, then refused new ones
                for operation in (
                    store.ping(),
                    store.get_client("c1"),
                    store.add_access_token(_record(f"during-{round_}")),
                    store.find_access_token_by_jti("before"),
                    store.revoked_since(0.0, 1.0),
                ):
                    with pytest.raises(TemporarilyUnavailable) as info:
                        await operation
                    assert info.value.retry_after > 0
            proxy.restore()
            await store.ping()
            await store.add_access_token(_record("after"))
            found = await store.find_access_token_by_jti("after")
            assert found is not None and found.client_id == "c1"
        finally:
            await store.close()


@pytest.mark.postgres
async def test_a_cancelled_query_stays_cancelled(pg_url: str) -> None:
    """SQLAlchemy counts a cancellation as a disconnect; it must still reach the task as
    ``CancelledError``, or a background job stopped at shutdown would go on forever."""
    engine = make_engine(pg_url, pool_size=1)
    started = asyncio.Event()

    async def slow() -> None:
        async with engine.connect() as conn:
            started.set()
            await conn.execute(text("SELECT pg_sleep(10)"))

    task = asyncio.ensure_future(slow())
    try:
        await started.wait()
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_refused_statement_is_not_an_outage(pg_url: str) -> None:
    store = SqlStore(make_engine(pg_url, pool_size=1))
    try:
        await store.add_client(Client("c1", "one", scopes=("read",)))
        with pytest.raises(sa_exc.IntegrityError):
            await store.add_client(Client("c1", "one", scopes=("read",)))
        async with store.engine.connect() as conn:
            with pytest.raises(sa_exc.ProgrammingError):
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await store.close()


async def test_a_pool_with_no_free_connection_within_its_timeout_is_an_outage(
    tmp_path: Path,
) -> None:
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        poolclass=OutagePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.05,
    )
    watch(engine.sync_engine)
    try:
        async with engine.connect():
            with pytest.raises(TemporarilyUnavailable):
                async with engine.connect() as second:
                    await second.execute(select(1))
        async with engine.connect() as conn:  # the connection is back in the pool
            assert (await conn.execute(select(1))).scalar() == 1
    finally:
        await engine.dispose()


# -- SQLite ------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SqlStore]:
    monkeypatch.setattr(sql_engine, "BUSY_TIMEOUT_MS", 50)
    async with migrated_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        yield store


async def test_a_sqlite_file_locked_past_the_busy_timeout_is_an_outage_until_let_go(
    sqlite_store: SqlStore,
) -> None:
    """The writer's thread (token writes) and the engine (other writes) both say so."""
    database = sqlite_store.engine.url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TemporarilyUnavailable):
            await sqlite_store.add_access_token(_record("locked"))
        with pytest.raises(TemporarilyUnavailable):
            await sqlite_store.add_client(Client("c1", "one", scopes=("read",)))
        assert await sqlite_store.get_client("nobody") is None  # reads go on (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await sqlite_store.add_access_token(_record("after"))
    await sqlite_store.add_client(Client("c1", "one", scopes=("read",)))
    assert await sqlite_store.find_access_token_by_jti("after") is not None


async def test_a_writer_lock_file_that_cannot_be_opened_is_an_outage(
    sqlite_store: SqlStore,
) -> None:
    database = sqlite_store.engine.url.database
    assert database is not None
    lock = Path(database + "-writer")
    lock.unlink(missing_ok=True)
    lock.mkdir()  # a directory cannot be opened for writing, not even by root
    writer = sqlite_writer(sqlite_store.engine)
    assert writer is not None
    try:
        with pytest.raises(TemporarilyUnavailable):
            await writer.insert_many(access_tokens, [_row("refused")])
        lock.rmdir()
        await writer.insert_many(access_tokens, [_row("after")])
    finally:
        await writer.close()
    assert await sqlite_store.find_access_token_by_jti("after") is not None


def _row(jti: str) -> dict[str, object]:
    record = _record(jti)
    return {c.name: getattr(record, c.name) for c in access_tokens.columns}


# -- group commit ------------------------------------------------------------------------------


async def test_an_outage_fails_a_whole_batch_at_once_without_retrying_each_write() -> None:
    """One by one, each write of a batch would wait for the same dead database again (a
    busy timeout, a connect timeout): a batch of 20 would take 21 attempts."""
    attempts: list[int] = []
    gate = asyncio.Event()

    class DeadDatabase(WritePath[int, None]):
        async def write(self, items: Sequence[int]) -> Sequence[None]:
            attempts.append(len(items))
            await gate.wait()
            raise TemporarilyUnavailable()

    commit: GroupCommit[int, None] = GroupCommit(DeadDatabase())
    first = asyncio.ensure_future(commit.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(commit.submit(i)) for i in range(1, 21)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert all(isinstance(r, TemporarilyUnavailable) for r in results)
    assert attempts == [1, 20]
