"""Engine construction: URLs, drivers and SQLite pragmas."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokensmith.storage.sql.outage import OutagePool, watch

__all__ = ["is_sqlite", "lock_path", "make_engine", "normalize_url", "sqlite_pragmas"]


def normalize_url(url: str) -> str:
    """Map ``sqlite:///`` and ``postgresql://`` to the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


#: Milliseconds a SQLite statement waits for a lock another connection holds; past it,
#: SQLite says "database is locked" and the request is answered 503.
BUSY_TIMEOUT_MS = 10_000


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL, so readers never block the writer; see :func:`make_engine`."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    """An async engine; SQLite runs in WAL mode so readers never block the writer.

    The pool has no overflow: under load, connections opened beyond the pool would be
    closed as soon as they are returned, so every request would pay for a new connection.
    A request that finds the pool busy waits for a connection instead.

    PostgreSQL plans every statement for its own values (``plan_cache_mode =
    force_custom_plan``).  asyncpg prepares each statement once per connection, and after
    five runs PostgreSQL may keep one generic plan for it, made for the table sizes of
    that moment; token tables start empty and grow by thousands of rows a second, and a
    plan made when they were nearly empty scans them whole.  Measured on a new database
    (``bench/rotation_cpu.py``): 890 µs of PostgreSQL CPU per refresh rotation with
    cached plans, 200 µs with plans made for each run.

    An unreachable database raises :class:`~tokensmith.core.errors.TemporarilyUnavailable`
    (:mod:`~tokensmith.storage.sql.outage`), and the engine recovers by itself once the
    database is back."""
    url = normalize_url(url)
    sqlite = is_sqlite(url)
    connect_args: dict[str, Any] = (
        {} if sqlite else {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
    )
    engine = create_async_engine(
        url,
        poolclass=OutagePool,
        pool_size=pool_size,
        max_overflow=0,
        connect_args=connect_args,
    )
    watch(engine.sync_engine)
    if sqlite:
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


def lock_path(engine: AsyncEngine) -> str | None:
    """The file whose ``flock`` serializes SQLite writers across worker processes
    (``<database>-writer``); none for PostgreSQL, for in-memory SQLite, or where ``flock``
    does not exist.

    SQLite lets one process write at a time; a process that finds the database locked
    polls with sleeps of up to 100 ms (its busy handler), so under load the workers take
    turns badly and the slowest requests wait a second.  Waiting on ``flock`` instead, a
    process sleeps in the kernel until the lock is free
    (:class:`~tokensmith.storage.sql.sqlite_writer.SqliteWriter`)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if os.name != "posix":
        return None
    return database + "-writer"
