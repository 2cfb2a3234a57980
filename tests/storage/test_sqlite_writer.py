"""The SQLite writer (``tokensmith.storage.sql.sqlite_writer``): a batch runs whole on the
writer's thread, under the cross-process ``flock``, in one transaction."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import BACKENDS, fresh_database, migrated_store
from tokensmith.core.models import AccessTokenRecord
from tokensmith.storage.sql import SqlStore, make_engine
from tokensmith.storage.sql.sqlite_writer import SqliteWriter, sqlite_writer
from tokensmith.storage.sql.tables import access_tokens


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with migrated_store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        yield store


@pytest.fixture
async def writer(sqlite_store: SqlStore) -> AsyncIterator[SqliteWriter]:
    made = sqlite_writer(sqlite_store.engine)
    assert made is not None
    try:
        yield made
    finally:
        await made.close()


async def _insert(writer: SqliteWriter, rows: list[dict[str, object]]) -> None:
    await writer.insert_many(access_tokens, rows)


def _row(jti: str, issued_at: float = 100.0) -> dict[str, object]:
    record = AccessTokenRecord(jti, "c1", "c1", "read", issued_at, 3700.0, token_hash="h" + jti)
    return {c.name: getattr(record, c.name) for c in access_tokens.columns}


async def _count(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(access_tokens))).one()[0])


def _lock_is_free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _sqlite_write_lock_is_free(database: str) -> bool:
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


async def test_work_runs_on_the_writer_thread_holding_the_lock(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """Lock, transaction and statements in one call on one thread: the lock is held
    while the work runs, and free again once ``run`` returns."""
    path = str(sqlite_store.engine.url.database) + "-writer"
    seen: dict[str, object] = {}

    def work(conn: Connection) -> int:
        seen["thread"] = threading.current_thread().name
        seen["lock free"] = _lock_is_free(path)
        seen["in transaction"] = conn.in_transaction()
        seen["sqlite write lock free"] = _sqlite_write_lock_is_free(str(database))
        return 7

    database = sqlite_store.engine.url.database
    assert await writer.run(work) == 7
    assert str(seen["thread"]).startswith("tokensmith-sqlite-writer")
    assert seen["lock free"] is False
    assert seen["in transaction"] is True
    assert seen["sqlite write lock free"] is False  # BEGIN IMMEDIATE, before any write
    assert _lock_is_free(path)
    assert _sqlite_write_lock_is_free(str(database))


async def test_inserted_rows_are_read_back_through_the_engine(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    await _insert(writer, [_row("a", issued_at=100), _row("b")])
    found = await sqlite_store.find_access_token("ha")
    assert found is not None and found.jti == "a"
    assert isinstance(found.issued_at, float)  # Double's bind processor ran
    assert await _count(sqlite_store) == 2


async def test_a_failed_batch_stores_none_of_its_rows(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """One transaction: a duplicate key rolls the whole batch back, raised as
    SQLAlchemy's IntegrityError like the engine's path."""
    await _insert(writer, [_row("a")])
    with pytest.raises(IntegrityError):
        await _insert(writer, [_row("b"), _row("a"), _row("c")])
    assert await _count(sqlite_store) == 1
    await _insert(writer, [_row("b")])  # the connection is still usable
    assert await _count(sqlite_store) == 2


async def test_run_rolls_back_when_the_work_raises(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    def work(conn: Connection) -> None:
        conn.execute(insert(access_tokens), [_row("a")])
        raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError):
        await writer.run(work)
    assert await _count(sqlite_store) == 0


async def test_writer_waits_while_another_process_holds_the_lock_file(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """``flock`` is per open file, so a lock taken here stands for another worker's."""
    fd = os.open(str(sqlite_store.engine.url.database) + "-writer", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        write = asyncio.ensure_future(_insert(writer, [_row("a")]))
        await asyncio.sleep(0.2)
        assert not write.done()
        fcntl.flock(fd, fcntl.LOCK_UN)
        await asyncio.wait_for(write, timeout=10)
    finally:
        os.close(fd)
    assert await _count(sqlite_store) == 1


async def test_writers_of_two_workers_take_turns(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """A second writer on the same file stands for another worker process: its
    transaction waits until the first one's has ended."""
    other = sqlite_writer(sqlite_store.engine)
    assert other is not None
    order: list[str] = []

    def hold(name: str) -> Callable[[Connection], None]:
        def work(conn: Connection) -> None:
            order.append(f"{name} in")
            time.sleep(0.2)
            order.append(f"{name} out")

        return work

    async def later() -> None:
        await asyncio.sleep(0.05)
        await other.run(hold("b"))

    try:
        await asyncio.gather(writer.run(hold("a")), later())
    finally:
        await other.close()
    assert order == ["a in", "a out", "b in", "b out"]


async def test_store_token_writes_go_through_the_writer(
    sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    writer = sqlite_store.write_paths.writer
    assert writer is not None
    original = writer.run

    async def counted(work: Callable[[Connection], object]) -> object:
        calls.append(threading.current_thread().name)
        return await original(work)

    monkeypatch.setattr(writer, "run", counted)
    records = [AccessTokenRecord(f"j{i}", "c1", "c1", "read", 1.0, 2.0) for i in range(50)]
    await asyncio.gather(*(sqlite_store.add_access_token(r) for r in records))
    assert 0 < len(calls) < 50  # shared transactions
    assert await _count(sqlite_store) == 50


@pytest.mark.parametrize("backend", BACKENDS)
async def test_only_a_sqlite_file_gets_a_writer(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        engine = make_engine(url)
        made = sqlite_writer(engine)
        try:
            assert (made is not None) == (backend == "sqlite")
        finally:
            if made is not None:
                await made.close()
            await engine.dispose()


async def test_in_memory_sqlite_gets_no_writer() -> None:
    """A second connection to ``:memory:`` would open another, empty database."""
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    try:
        assert sqlite_writer(engine) is None
    finally:
        await engine.dispose()
