"""The replay cache in the database (:class:`~tokensmith.core.ports.ReplayCache`): values
used once, shared by every instance on the database.

A first use is ``INSERT ... ON CONFLICT (replay_key) DO UPDATE ... WHERE expires_at <= now
RETURNING replay_key``: a new key is inserted, a key whose time is over is taken over, and
a key still remembered is left alone and returns no row. On PostgreSQL a second
transaction inserting the same key waits for the first to commit, then finds the key
remembered; on SQLite transactions that write take turns. Either way, of concurrent first
uses of one key, on any instance, exactly one returns it.

First uses are on the hot path of every DPoP token request, so concurrent ones of a process
share a round trip (:class:`~tokensmith.storage.sql.batch.GroupCommit`): on PostgreSQL
one statement for the batch (the keys as arrays, ``unnest``) on an autocommit
connection; on a SQLite file a transaction through the driver alone, on the event loop's
thread when no other writer holds the lock at that moment and else whole on the store's
writer thread (:class:`~tokensmith.storage.sql.write_paths.SqliteDriverWrites`), so a
replay key costs no thread hop while the lock is free.
Every ``PURGE_INTERVAL`` seconds a batch also deletes up to ``PURGE_BATCH`` keys whose time
is over, so the table holds about one ``max_age`` of proofs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.clock import Clock
from tokensmith.storage.sql.batch import GroupCommit
from tokensmith.storage.sql.sqlite_writer import SqliteWriter
from tokensmith.storage.sql.tables import replay_keys
from tokensmith.storage.sql.write_paths import (
    AutocommitStatement,
    EngineWrites,
    SqliteDriverWrites,
    WritePath,
)

__all__ = ["PURGE_BATCH", "PURGE_INTERVAL", "SqlReplayCache"]

#: Seconds between two deletions of keys whose time is over.
PURGE_INTERVAL = 60.0
#: Rows one deletion removes at most (the next one carries on).
PURGE_BATCH = 5000

_KEY = replay_keys.c.replay_key

#: SQLite: one key a statement, through SQLAlchemy (in-memory SQLite) or the driver.
_SQLITE_FIRST_USE: Any = sqlite.insert(replay_keys).values(
    replay_key=bindparam("key"), expires_at=bindparam("expires_at")
)
_SQLITE_FIRST_USE = _SQLITE_FIRST_USE.on_conflict_do_update(
    index_elements=[_KEY],
    set_={"expires_at": _SQLITE_FIRST_USE.excluded.expires_at},
    where=replay_keys.c.expires_at <= bindparam("now"),
).returning(_KEY)

_SQLITE_SQL = (
    "INSERT INTO replay_keys (replay_key, expires_at) VALUES (?, ?) "
    "ON CONFLICT (replay_key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE replay_keys.expires_at <= ? RETURNING replay_key"
)
#: :func:`_purge_statement` through the driver.
_SQLITE_PURGE = (
    "DELETE FROM replay_keys WHERE replay_key IN "
    "(SELECT replay_key FROM replay_keys WHERE expires_at < ? LIMIT ?)"
)

#: PostgreSQL: every key of a batch in one statement (the keys are distinct: ``ON
#: CONFLICT DO UPDATE`` may not touch a row twice).
_PG_FIRST_USES = text("""
INSERT INTO replay_keys AS r (replay_key, expires_at)
SELECT k, e FROM unnest(CAST(:keys AS VARCHAR(64)[]), CAST(:expires AS DOUBLE PRECISION[]))
    AS v(k, e)
ON CONFLICT (replay_key) DO UPDATE SET expires_at = excluded.expires_at
WHERE r.expires_at <= :now
RETURNING replay_key
""")

Batch = Sequence[tuple[str, float]]


def _distinct(items: Batch) -> dict[str, float]:
    """Each key once, with its first caller's expiry."""
    rows: dict[str, float] = {}
    for key, expires_at in items:
        rows.setdefault(key, expires_at)
    return rows


def _outcomes(items: Batch, won: set[str]) -> list[bool]:
    """A key that won goes to its first caller only."""
    results = []
    for key, _ in items:
        results.append(key in won)
        won.discard(key)
    return results


def _purge_statement(before: float) -> Any:
    ended = select(_KEY).where(replay_keys.c.expires_at < before).limit(PURGE_BATCH)
    return delete(replay_keys).where(_KEY.in_(ended.scalar_subquery()))


class SqlReplayCache:
    """Keys in ``replay_keys`` (migration 0007), on the store's database. ``writer``: the
    store's SQLite writer, if it has one (one writer thread a file: the worker processes
    take turns on its lock)."""

    def __init__(
        self, engine: AsyncEngine, clock: Clock, writer: SqliteWriter | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._next_purge = float("-inf")
        path: WritePath[tuple[str, float], bool]
        if writer is not None:
            path = SqliteDriverWrites(writer, self._driver_batch)
        elif engine.dialect.name == "postgresql":
            path = AutocommitStatement(engine, self._pg_batch)
        else:  # SQLite in memory: no lock file, no writer
            path = EngineWrites(engine, self._core_batch)
        lanes = 1 if engine.dialect.name == "sqlite" else 2
        self._writes: GroupCommit[tuple[str, float], bool] = GroupCommit(path, lanes=lanes)

    async def first_use(self, key: str, expires_at: float) -> bool:
        return await self._writes.submit((key, expires_at))

    async def aclose(self) -> None:
        """Nothing of its own to close: the engine and the writer are the store's."""

    async def purge(self, before: float) -> int:
        """Delete up to :data:`PURGE_BATCH` keys whose time was over before ``before``."""
        async with self._engine.begin() as conn:
            return int((await conn.execute(_purge_statement(before))).rowcount)

    def _now_and_purge(self) -> tuple[float, bool]:
        now = self._clock.now()
        if now < self._next_purge:
            return now, False
        self._next_purge = now + PURGE_INTERVAL
        return now, True

    def _driver_batch(self, dbapi: sqlite3.Connection, items: Batch) -> list[bool]:
        """Through the driver, in a transaction of :class:`SqliteDriverWrites`
        (SQLAlchemy's execution of the same statement costs more than the statement)."""
        now, purge = self._now_and_purge()
        won = set()
        for key, expires_at in _distinct(items).items():
            if dbapi.execute(_SQLITE_SQL, (key, expires_at, now)).fetchone() is not None:
                won.add(key)
        if purge:
            dbapi.execute(_SQLITE_PURGE, (now, PURGE_BATCH))
        return _outcomes(items, won)

    def _core_batch(self, conn: Connection, items: Batch) -> list[bool]:
        now, purge = self._now_and_purge()
        won = set()
        for key, expires_at in _distinct(items).items():
            params = {"key": key, "expires_at": expires_at, "now": now}
            if conn.execute(_SQLITE_FIRST_USE, params).first() is not None:
                won.add(key)
        if purge:
            conn.execute(_purge_statement(now))
        return _outcomes(items, won)

    def _pg_batch(self, conn: Connection, items: Batch) -> list[bool]:
        now, purge = self._now_and_purge()
        rows = sorted(_distinct(items).items())  # one order: two batches never deadlock
        params = {"keys": [k for k, _ in rows], "expires": [e for _, e in rows], "now": now}
        won = set(conn.execute(_PG_FIRST_USES, params).scalars())
        if purge:
            conn.execute(_purge_statement(now))
        return _outcomes(items, won)
