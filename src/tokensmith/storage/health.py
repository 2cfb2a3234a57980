"""Whether the store can serve: what ``/healthz`` and ``/readyz`` report."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.ports import Store
from tokensmith.storage.sql.migrate import SchemaState, schema_state
from tokensmith.storage.sql.store import SqlStore

__all__ = ["Readiness", "StoreHealth"]


@dataclass(frozen=True, slots=True)
class Readiness:
    """The database answers (``available``) and, for SQL, its migrations (``schema``)."""

    available: bool
    schema: SchemaState | None = None

    @property
    def ready(self) -> bool:
        return self.available and (self.schema is None or self.schema.ready)


class StoreHealth:
    """Asks the store; no caller sees the store itself."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def failure(self) -> str | None:
        """``None`` when the database answers, else the name of the error (the cause of an
        outage, not the 503 it became)."""
        try:
            await self._store.ping()
        except TemporarilyUnavailable as exc:
            return type(exc.__cause__ or exc).__name__
        except (SQLAlchemyError, OSError) as exc:
            return type(exc).__name__
        return None

    async def readiness(self) -> Readiness:
        """Ping, then read the schema's revisions (SQL stores)."""
        try:
            await self._store.ping()
            if isinstance(self._store, SqlStore):
                return Readiness(True, await schema_state(self._store.engine))
        except TemporarilyUnavailable:
            return Readiness(False)
        return Readiness(True)
