"""What the parts of :class:`~tokensmith.storage.sql.store.SqlStore` share: the engine,
the AUTOCOMMIT engine that reads run on, the revocation count, and the shapes of
statement they all repeat (a row by key, a list, one write in a transaction of its own)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Column, Executable, Row, Select, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SqlBase"]

M = TypeVar("M")
R = TypeVar("R")


class SqlBase:
    """The attributes :class:`~tokensmith.storage.sql.store.SqlStore` sets up, and the
    helpers of its parts. Each part (``clients``, ``tokens``, ...) is a subclass holding
    one storage protocol's methods with the row mappers of its tables."""

    engine: AsyncEngine
    #: Reads run without a transaction: no BEGIN and no ROLLBACK round trips.
    _read: AsyncEngine
    #: Access-token revocations made through this object (``revocation_generation``).
    _revocations: int

    async def _find(self, record: Callable[..., M], query: Select[Any]) -> M | None:
        """The first row of ``query`` as ``record(**columns)``, or ``None``."""
        async with self._read.connect() as conn:
            row: Row[Any] | None = (await conn.execute(query)).first()
        return None if row is None else record(**row._mapping)

    async def _by(self, record: Callable[..., M], key: Column[Any], value: str) -> M | None:
        """The row of ``key``'s table whose ``key`` is ``value``, as ``record``."""
        return await self._find(record, select(key.table).where(key == value))

    async def _list(self, record: Callable[..., M], query: Select[Any]) -> list[M]:
        """Every row of ``query`` as ``record(**columns)``."""
        async with self._read.connect() as conn:
            return [record(**r._mapping) for r in await conn.execute(query)]

    async def _write(self, statement: Executable) -> int:
        """``statement`` in a transaction of its own; the number of rows it matched."""
        async with self.engine.begin() as conn:
            return int((await conn.execute(statement)).rowcount)

    async def _set_once(self, column: Column[Any], at: float, key: Column[Any], value: str) -> bool:
        """Set ``column`` (a ``revoked_at``, a ``disabled_at``) to ``at`` on the row whose
        ``key`` is ``value`` if it is unset: False if there is none, or it was set."""
        stamp = update(key.table).where(key == value, column.is_(None)).values({column: at})
        return await self._write(stamp) > 0

    async def _counted(self, revocation: Awaitable[R]) -> R:
        """Await a revocation of access tokens, counting it even if it fails
        (``revocation_generation``: when it moves, the revocation view reads again)."""
        try:
            return await revocation
        finally:
            self._revocations += 1
