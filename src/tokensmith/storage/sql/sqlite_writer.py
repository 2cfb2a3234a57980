"""SQLite batch writes in one thread hop.

Through SQLAlchemy's async engine, a batch of SQLite inserts crosses between the event
loop and a driver thread five times: the ``flock`` that serializes the worker processes,
``BEGIN``, the ``INSERT``, ``COMMIT`` and the pool's reset. The cross-process lock is held
through every one of those crossings, so on a loaded machine the other worker waits on
thread scheduling, not on SQLite: a batch of eight tokens held the lock for about 1 ms, of
which SQLite itself needs 0.2 ms.

:class:`SqliteWriter` runs the whole batch in one call on a thread of its own: take the
lock, ``BEGIN IMMEDIATE``, ``executemany``, ``COMMIT``, let go. It has its own connection,
opened with the engine's pragmas, to the same database file; the statement is compiled by
SQLAlchemy from the table, and errors are raised as SQLAlchemy's (an ``IntegrityError``
for a duplicate key), so callers cannot tell the paths apart.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Table, exc, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.storage.sql.engine import lock_path, sqlite_pragmas

__all__ = ["SqliteWriter", "sqlite_writer"]

R = TypeVar("R")

#: One statement: its SQL and a function from a row's values to its parameters.
Prepared = tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]


class SqliteWriter:
    """Transactions on one SQLite file, each run whole on this writer's thread under the
    ``flock`` on ``lock_path`` (the file :class:`~tokensmith.storage.sql.engine.WriteLock`
    uses, so the two take turns across processes and within one)."""

    def __init__(self, database: str, lock_path: str) -> None:
        self._database = database
        self._lock_path = lock_path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tokensmith-sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._fd: int | None = None
        self._prepared: dict[Table, Prepared] = {}

    async def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """``INSERT`` every row of ``rows`` into ``table`` in one transaction."""
        if table not in self._prepared:
            self._prepared[table] = _prepare(table)
        sql, params = self._prepared[table]
        await self.run(lambda conn: conn.executemany(sql, [params(r) for r in rows]), sql)

    async def run(self, work: Callable[[sqlite3.Connection], R], what: str = "") -> R:
        """``work(connection)`` in a transaction on the writer's thread; ``what`` names the
        statement in an error."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, work, what)

    def _transaction(self, work: Callable[[sqlite3.Connection], R], what: str) -> R:
        conn, fd = self._open()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(what, None, error, sqlite3.Error) from error
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> tuple[sqlite3.Connection, int]:
        if self._conn is None or self._fd is None:
            conn = sqlite3.connect(self._database, isolation_level=None)
            sqlite_pragmas(conn, None)
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._conn = conn
        return self._conn, self._fd

    async def close(self) -> None:
        """Close the connection and the lock file on the writer's thread, then stop it."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sqlite_writer(engine: AsyncEngine) -> SqliteWriter | None:
    """A writer for the engine's SQLite file; none where :func:`lock_path` has no lock
    file (PostgreSQL, in-memory SQLite), whose writes stay on the engine."""
    path = lock_path(engine)
    database = engine.url.database
    return None if path is None or database is None else SqliteWriter(database, path)


def _prepare(table: Table) -> Prepared:
    """``INSERT`` into every column of ``table``, compiled for SQLite, with each column
    type's bind processor (``Double``: ``float``) applied to a row's values."""
    dialect = sqlite.dialect()
    compiled = insert(table).compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    steps = tuple((n, table.c[n].type.bind_processor(dialect)) for n in names)

    def params(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(p(row[n]) if p else row[n] for n, p in steps)

    return str(compiled), params
