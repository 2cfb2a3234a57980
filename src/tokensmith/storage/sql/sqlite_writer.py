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

Short transactions that need only the driver (the replay cache's keys) go through
:meth:`SqliteWriter.run_driver`: :class:`InlineTransactions` runs them on the calling thread
(the event loop's) when the lock is free at that moment, and only when another writer holds
it are they handed to the writer's thread. A hop to the writer's thread and SQLAlchemy's
``begin``/``commit`` cost about 110 µs of CPU a transaction on this machine, SQLite's own
``BEGIN IMMEDIATE``/``COMMIT`` about 7 µs (``bench/README.md``).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, create_engine, event, exc, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import StaticPool

from tokensmith.storage.sql.engine import lock_path, sqlite_pragmas
from tokensmith.storage.sql.outage import unavailable_or_none

__all__ = ["InlineTransactions", "SqliteWriter", "sqlite_writer"]

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
        database = make_url(url).database
        #: Driver-only transactions on the calling thread while the lock is free.
        self.inline = InlineTransactions(database, lock_path) if database else None

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

    async def run_driver(self, work: Callable[[sqlite3.Connection], R]) -> R:
        """``work(driver connection)`` in one transaction, committed before this returns:
        on the calling thread if :class:`InlineTransactions` gets the lock and SQLite's
        write lock at once, else whole on the writer's thread (as :meth:`run`). ``work``
        raises :class:`sqlite3.Error` as the driver does; errors are those of :meth:`run`."""
        if self.inline is not None:
            try:
                done = self.inline.attempt(work)
            except (OSError, sqlite3.Error) as error:
                wrapped = _wrapped(error)
                raise (unavailable_or_none(wrapped) or wrapped) from error
            if not isinstance(done, _Busy):
                return done
        return await self.run(lambda conn: _on_driver(conn, work))

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
        if self.inline is not None:
            self.inline.close()
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


class _Busy:
    """:meth:`InlineTransactions.attempt` did not run the work: a writer holds a lock."""


_BUSY = _Busy()


class InlineTransactions:
    """Transactions through the driver alone, run on the calling thread, never waiting.

    :meth:`attempt` takes the ``flock`` without blocking (``LOCK_NB``, on a file
    description of its own, so the writer thread of this process counts as another
    holder), then ``BEGIN IMMEDIATE`` on a connection of its own whose busy timeout is 0:
    if either lock is held (another worker's or this worker's writer thread, or a write of
    the async engine), it gives up at once and the caller hands the work to the writer's
    thread, which waits its turn. So the event loop never sleeps on a lock; it spends only
    the transaction's own time (a few keys: tens of µs), where a hop to the writer's thread
    cost about 110 µs of CPU besides. Serialization is unchanged: every write still holds
    the same ``flock`` and SQLite's write lock while it runs."""

    def __init__(self, database: str, lock_path: str) -> None:
        self._database = database
        self._lock_path = lock_path
        self._fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        #: Two threads of this process never share the connection: the second one waits
        #: for the writer's thread instead.
        self._mutex = threading.Lock()

    def attempt(self, work: Callable[[sqlite3.Connection], R]) -> R | _Busy:
        """``work(connection)`` in one committed transaction (rolled back if it raises), or
        :data:`_BUSY` without running it when a lock is held."""
        if not self._mutex.acquire(blocking=False):
            return _BUSY
        try:
            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _BUSY
            try:
                return self._transaction(work)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _transaction(self, work: Callable[[sqlite3.Connection], R]) -> R | _Busy:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # and its extended codes
                return _BUSY
            raise
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT too: the next BEGIN starts clean
                conn.execute("ROLLBACK")
            raise
        return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(conn, None)
            conn.execute("PRAGMA busy_timeout=0")  # a held lock: the writer's thread waits
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _on_driver(conn: Connection, work: Callable[[sqlite3.Connection], R]) -> R:
    """``work`` on the driver connection under a transaction of the writer's thread."""
    dbapi = conn.connection.dbapi_connection
    assert isinstance(dbapi, sqlite3.Connection)
    try:
        return work(dbapi)
    except sqlite3.Error as error:
        raise _wrapped(error) from error


def _wrapped(error: Exception) -> Exception:
    """A driver error as SQLAlchemy raises it (what the outage checks read)."""
    if isinstance(error, sqlite3.Error):
        return exc.DBAPIError.instance(None, None, error, sqlite3.Error)
    return error


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
