"""Engine construction: URLs, drivers and SQLite pragmas."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = [
    "WriteLock",
    "is_sqlite",
    "lock_path",
    "make_engine",
    "normalize_url",
    "sqlite_pragmas",
    "write_lock",
]


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


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL, so readers never block the writer; see :func:`make_engine`."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
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
    cached plans, 200 µs with plans made for each run."""
    url = normalize_url(url)
    sqlite = is_sqlite(url)
    connect_args: dict[str, Any] = (
        {} if sqlite else {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
    )
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args=connect_args
    )
    if sqlite:
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


class WriteLock:
    """Serializes SQLite writers across worker processes with ``flock(2)``.

    SQLite lets one process write at a time; a process that finds the database locked
    polls with sleeps of up to 100 ms (its busy handler), so under load the workers take
    turns badly and the slowest requests wait a second.  Taking this lock around a write
    transaction makes the waiting process sleep in the kernel until the lock is free."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        import fcntl

        async with self._local:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fd = self._fd
            acquire = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
            try:
                await asyncio.shield(acquire)
            except asyncio.CancelledError:  # release once the thread has it
                acquire.add_done_callback(lambda _: fcntl.flock(fd, fcntl.LOCK_UN))
                raise
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (a lock held by this process is released with it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_path(engine: AsyncEngine) -> str | None:
    """The file whose ``flock`` serializes SQLite writers (``<database>-writer``); none for
    PostgreSQL, for in-memory SQLite, or where ``flock`` does not exist."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if os.name != "posix":
        return None
    return database + "-writer"


def write_lock(engine: AsyncEngine) -> WriteLock | None:
    """A :class:`WriteLock` on :func:`lock_path`, where there is one."""
    path = lock_path(engine)
    return None if path is None else WriteLock(path)
