"""Write paths: how one batch of writes reaches the database.

A :class:`WritePath` has one method, :meth:`~WritePath.write`: it runs its batch function
(synchronous SQLAlchemy Core on an open :class:`~sqlalchemy.engine.Connection`, one result
per item) on a connection of its kind, and returns once the batch is committed. As
httpx's transports sit under its client, the paths sit under
:class:`~tokensmith.storage.sql.batch.GroupCommit`, which gathers the batches, and
:func:`~tokensmith.storage.sql.store.write_paths_for` chooses the path of each kind of
write for an engine.

A batch function is synchronous so that each path runs it in one call: through
``AsyncConnection.run_sync`` on the async engine (one hop into the driver's greenlet, as
``AsyncConnection.execute`` makes for each statement), or whole on the SQLite writer's
thread; statements and errors are the same on every path.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.storage.sql.sqlite_writer import SqliteWriter

__all__ = [
    "AutocommitStatement",
    "Batch",
    "DriverBatch",
    "EngineWrites",
    "SqliteDriverWrites",
    "SqliteThreadInserts",
    "SqliteThreadWrites",
    "WritePath",
]

T = TypeVar("T")
R = TypeVar("R")

#: A batch of writes on an open synchronous connection; one result per write.
Batch = Callable[[Connection, Sequence[T]], Sequence[R]]
#: The same on a SQLite driver connection, in a transaction begun and committed around it.
DriverBatch = Callable[[sqlite3.Connection, Sequence[T]], Sequence[R]]


class WritePath(ABC, Generic[T, R]):
    """Writes batches of ``T``, each committed before :meth:`write` returns."""

    @abstractmethod
    async def write(self, items: Sequence[T]) -> Sequence[R]:
        """Write ``items`` together; one result per item, in order. If it raises, none of
        the batch is stored."""


class EngineWrites(WritePath[T, R]):
    """``batch`` in a transaction of the async engine (``engine.begin()``, then
    ``run_sync``). Any database: PostgreSQL's writes, SQLite's where it has no writer
    thread (an in-memory database), PostgreSQL's rotations with ``portable_rotation``."""

    def __init__(self, engine: AsyncEngine, batch: Batch[T, R]) -> None:
        self._engine = engine
        #: The batch function this path runs.
        self.batch = batch

    async def write(self, items: Sequence[T]) -> Sequence[R]:
        async with self._engine.begin() as conn:
            return await conn.run_sync(self.batch, items)


class AutocommitStatement(WritePath[T, R]):
    """``batch`` on a connection of the engine in AUTOCOMMIT mode, for work that is one
    statement, so its own transaction: no ``BEGIN`` and no ``COMMIT`` round trips.
    PostgreSQL's rotation in one statement
    (:func:`~tokensmith.storage.sql.rotation_pg.rotate_in_one_statement`), and concurrent
    lookups of one kind sent as one query (``WHERE key IN (...)``) on any database."""

    def __init__(self, engine: AsyncEngine, batch: Batch[T, R]) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        #: The batch function this path runs.
        self.batch = batch

    async def write(self, items: Sequence[T]) -> Sequence[R]:
        async with self._engine.connect() as conn:
            return await conn.run_sync(self.batch, items)


class SqliteThreadWrites(WritePath[T, R]):
    """``batch`` in one transaction run whole on the SQLite writer's thread
    (:class:`~tokensmith.storage.sql.sqlite_writer.SqliteWriter`: one thread hop instead
    of one per statement, under the ``flock`` that makes worker processes take turns). A
    SQLite file's rotations and replays."""

    def __init__(self, writer: SqliteWriter, batch: Batch[T, R]) -> None:
        self._writer = writer
        #: The batch function this path runs.
        self.batch = batch

    async def write(self, items: Sequence[T]) -> Sequence[R]:
        batch = self.batch
        return await self._writer.run(lambda conn: batch(conn, items))


class SqliteDriverWrites(WritePath[T, R]):
    """``batch`` in one transaction through the SQLite driver alone
    (:meth:`~tokensmith.storage.sql.sqlite_writer.SqliteWriter.run_driver`): on the event
    loop's thread when the ``flock`` and SQLite's write lock are free at that moment
    (:class:`~tokensmith.storage.sql.sqlite_writer.InlineTransactions`), else on the
    writer's thread. For short batches of small statements, whose thread hop and SQLAlchemy
    transaction cost more than the statements: a SQLite file's replay keys."""

    def __init__(self, writer: SqliteWriter, batch: DriverBatch[T, R]) -> None:
        self._writer = writer
        #: The batch function this path runs.
        self.batch = batch

    async def write(self, items: Sequence[T]) -> Sequence[R]:
        batch = self.batch
        return await self._writer.run_driver(lambda conn: batch(conn, items))


class SqliteThreadInserts(WritePath[T, None]):
    """Rows into one table on the SQLite writer's thread by
    :meth:`~tokensmith.storage.sql.sqlite_writer.SqliteWriter.insert_many` (the driver's
    ``executemany``, the statement compiled once), each item's row made by ``row`` before
    the hop, outside the lock. A SQLite file's access tokens."""

    def __init__(
        self, writer: SqliteWriter, table: Table, row: Callable[[T], Mapping[str, Any]]
    ) -> None:
        self._writer = writer
        self._table = table
        self._row = row

    async def write(self, items: Sequence[T]) -> Sequence[None]:
        row = self._row
        await self._writer.insert_many(self._table, [row(item) for item in items])
        return [None] * len(items)
