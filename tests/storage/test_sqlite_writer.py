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


def _insert_key(key: str) -> Callable[[sqlite3.Connection], str]:
    """Driver work: one replay key, and the thread it ran on."""

    def work(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO replay_keys (replay_key, expires_at) VALUES (?, 1e12)", (key,))
        return threading.current_thread().name

    return work


async def _replay_keys(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.exec_driver_sql("SELECT count(*) FROM replay_keys")).one()[0])


async def test_driver_work_runs_on_the_calling_thread_under_both_locks_when_they_are_free(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """No thread hop while no one else writes; the ``flock`` and SQLite's write lock are
    held while the work runs, and free again once it is committed."""
    database = str(sqlite_store.engine.url.database)
    seen: dict[str, object] = {}

    def work(conn: sqlite3.Connection) -> str:
        seen["lock free"] = _lock_is_free(database + "-writer")
        seen["sqlite write lock free"] = _sqlite_write_lock_is_free(database)
        return _insert_key("k")(conn)

    assert await writer.run_driver(work) == threading.current_thread().name
    assert seen == {"lock free": False, "sqlite write lock free": False}
    assert _lock_is_free(database + "-writer") and _sqlite_write_lock_is_free(database)
    assert await _replay_keys(sqlite_store) == 1


async def test_driver_work_waits_on_the_writer_thread_while_another_process_holds_the_lock(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """The event loop never sleeps on the lock: the work goes to the writer's thread,
    which waits its turn, and the loop goes on meanwhile."""
    fd = os.open(str(sqlite_store.engine.url.database) + "-writer", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        write = asyncio.ensure_future(writer.run_driver(_insert_key("k")))
        await asyncio.sleep(0.2)
        assert not write.done()
        fcntl.flock(fd, fcntl.LOCK_UN)
        thread = await asyncio.wait_for(write, timeout=10)
    finally:
        os.close(fd)
    assert thread.startswith("tokensmith-sqlite-writer")
    assert await _replay_keys(sqlite_store) == 1


async def test_driver_work_goes_to_the_writer_thread_while_sqlite_is_locked_by_a_connection(
    writer: SqliteWriter, sqlite_store: SqlStore
) -> None:
    """A write that takes no ``flock`` (the async engine's) holds SQLite's write lock:
    the work does not wait for it on the event loop, it waits on the writer's thread."""
    other = sqlite3.connect(str(sqlite_store.engine.url.database), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(writer.run_driver(_insert_key("k")))
        await asyncio.sleep(0.2)
        assert not write.done()
        other.execute("COMMIT")
        thread = await asyncio.wait_for(write, timeout=10)
    finally:
        other.close()
    assert thread.startswith("tokensmith-sqlite-writer")
    assert await _replay_keys(sqlite_store) == 1


@pytest.mark.parametrize("busy", [False, True], ids=["on the loop", "on the writer thread"])
async def test_driver_work_that_raises_stores_nothing(
    writer: SqliteWriter, sqlite_store: SqlStore, busy: bool
) -> None:
    """Rolled back on either thread, and a driver error surfaces as SQLAlchemy's (the
    same as the writer's other paths)."""
    fd = os.open(str(sqlite_store.engine.url.database) + "-writer", os.O_RDWR | os.O_CREAT)

    def work(conn: sqlite3.Connection) -> None:
        _insert_key("a")(conn)
        _insert_key("a")(conn)  # the same key twice

    try:
        if busy:
            fcntl.flock(fd, fcntl.LOCK_EX)
            asyncio.get_running_loop().call_later(0.1, fcntl.flock, fd, fcntl.LOCK_UN)
        with pytest.raises(IntegrityError):
            await writer.run_driver(work)
    finally:
        os.close(fd)
    assert await _replay_keys(sqlite_store) == 0
    await writer.run_driver(_insert_key("b"))  # both connections still usable
    assert await _replay_keys(sqlite_store) == 1


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
