"""A database at an older migration, for the tests of what a migration does to rows
written before it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.storage.sql.migrate import alembic_config

__all__ = ["down_and_up", "old_client_at"]


def _move(conn: Connection, revision: str, down: bool = False) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(cfg, revision)


async def old_client_at(engine: AsyncEngine, revision: str) -> None:
    """Migrate a new database to ``revision`` and write client ``old`` as it stood then."""
    async with engine.begin() as conn:
        await conn.run_sync(_move, revision)
        await conn.execute(
            text(
                "INSERT INTO clients (client_id, name, scopes, grant_types, redirect_uris, "
                "auth_methods, created_at) VALUES ('old', 'Old', 'read', "
                "'client_credentials', '[]', 'client_secret_basic', 1)"
            )
        )


async def down_and_up(engine: AsyncEngine, revision: str) -> None:
    """Downgrade to ``revision``, then upgrade to the head again."""
    async with engine.begin() as conn:
        await conn.run_sync(_move, revision, True)
        await conn.run_sync(_move, "head")
