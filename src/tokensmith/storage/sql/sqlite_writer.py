"""SQLite batch writes in one thread hop.

Through SQLAlchemy's async engine, every statement of a SQLite transaction crosses from the
event loop to the driver's thread and back, and so do the ``flock`` that serializes the
worker processes, ``BEGIN``, ``COMMIT`` and the pool's reset. The cross-process lock is
held through all of those crossings, so on a loaded machine the other worker waits on
thread scheduling, not on SQLite: a batch of eight access tokens held the lock for about
1 ms, of which SQLite itself needs 0.2 ms.

:class:`SqliteWriter` runs a whole transaction in one call on a thread of its own: take
the lock, ``BEGIN IMMEDIATE``, the statements, ``COMMIT``, let go. The work is ordinary
SQLAlchemy Core on a synchronous :class:`~sqlalchemy.engine.Connection` to the same file,
opened with the async engine's pragmas, so statements and errors are the same on both
paths (``AsyncConnection.run_sync`` runs the same functions on the async engine).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, create_engine, event, exc, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from tokensmith.storage.sql.engine import lock_path, sqlite_pragmas
from tokensmith.storage.sql.outage import unavailable_or_none

__all__ = ["SqliteWriter", "sqlite_writer"]

R = TypeVar("R")

#: An ``INSERT``'s SQL and a function from a row's values to its parameters.
Prepared = tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]]


class SqliteWriter:
    """Transactions on one SQLite file, each run whole on this writer's thread under the
    ``flock`` on ``lock_path`` (:func:`~tokensmith.storage.sql.engine.lock_path`), so the
    writers of every worker process take turns."""

    def __init__(self, url: str, lock_path: str) -> None:
        self._lock_path = lock_path
        self._fd: int | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="tokensmith-sqlite-writer")
        # One connection, made and used on the writer's thread only.
        self._engine = create_engine(url, poolclass=StaticPool)
        event.listen(self._engine, "connect", _own_transactions)
        event.listen(self._engine, "begin", _begin_immediate)
        self._inserts: dict[Table, Prepared] = {}
        #: Kept open between transactions: a checkout from the pool and its reset on
        #: return cost more than the inserts of a small batch.
        self._conn: Connection | None = None

    async def run(self, work: Callable[[Connection], R]) -> R:
        """``work(connection)`` in one transaction on the writer's thread, committed before
        this returns (rolled back if it raises). A database that cannot be written now (the
        file locked past the busy timeout, the file or its lock file unopenable) raises
        :class:`~tokensmith.core.errors.TemporarilyUnavailable`."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, self._transaction, work)
        except (OSError, exc.DBAPIError) as error:
            outage = unavailable_or_none(error)
            if outage is None:
                raise
            raise outage from error

    async def insert_many(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """``INSERT`` ``rows`` into ``table`` in one transaction, by the driver's
        ``executemany`` with the statement compiled once: SQLAlchemy's own executemany cost
        13-15 µs more CPU per stored token, in batches of eight."""
        if table not in self._inserts:
            self._inserts[table] = _prepare(table)
        sql, params = self._inserts[table]
        values = [params(row) for row in rows]

        def work(conn: Connection) -> None:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            try:
                dbapi.executemany(sql, values)
            except sqlite3.Error as error:
                raise exc.DBAPIError.instance(sql, None, error, sqlite3.Error) from error

        await self.run(work)

    def _transaction(self, work: Callable[[Connection], R]) -> R:
        if self._fd is None:
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fd = self._fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            with self._conn.begin():
                return work(self._conn)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    async def close(self) -> None:
        """Close the connection and the lock file on the writer's thread, then stop it."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _own_transactions(dbapi_conn: Any, record: Any) -> None:
    """The driver leaves transactions to SQLAlchemy's ``begin`` event (the pattern of
    SQLAlchemy's SQLite dialect documentation), then the engine's pragmas."""
    dbapi_conn.isolation_level = None
    sqlite_pragmas(dbapi_conn, record)


def _begin_immediate(conn: Connection) -> None:
    """Take SQLite's write lock at ``BEGIN``, not at the first write."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


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


def sqlite_writer(engine: AsyncEngine) -> SqliteWriter | None:
    """A writer for the engine's SQLite file; none where :func:`lock_path` has no lock
    file (PostgreSQL, in-memory SQLite), whose writes stay on the engine."""
    path = lock_path(engine)
    if path is None:
        return None
    url = engine.url.set(drivername="sqlite+pysqlite")
    return SqliteWriter(url.render_as_string(hide_password=False), path)
