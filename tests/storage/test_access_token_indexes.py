"""Access token indexes (migration 0005): a plain token goes into three indexes, and the
lookups by family and by revocation still find theirs, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.storage.sql import make_engine, migrate
from tokensmith.storage.sql.tables import access_tokens

t = access_tokens.c

#: What the store runs: the revocation view's poll and a family's revocation.
LOOKUPS = {
    "ix_access_tokens_revoked_at": select(t.jti).where(
        t.revoked_at.is_not(None), t.expires_at > 0, t.revoked_at >= 0
    ),
    "ix_access_tokens_family_id": update(access_tokens)
    .where(t.family_id == "f1", t.revoked_at.is_(None))
    .values(revoked_at=1.0),
}


INDEX_QUERIES = {
    # the indexes SQLite makes itself for the primary key and unique columns have no SQL
    "sqlite": "SELECT name, coalesce(sql, '') FROM sqlite_master "
    "WHERE type = 'index' AND tbl_name = 'access_tokens'",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = current_schema() AND tablename = 'access_tokens'",
}


async def _indexes(conn: AsyncConnection) -> dict[str, str]:
    """Index name to its definition."""
    rows = await conn.execute(text(INDEX_QUERIES[conn.dialect.name]))
    return {name: sql for name, sql in rows}


async def _plan(conn: AsyncConnection, statement: Any) -> str:
    sql = str(statement.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        rows = await conn.execute(text("EXPLAIN QUERY PLAN " + sql))
        return " ".join(str(r[-1]) for r in rows)
    await conn.execute(text("SET LOCAL enable_seqscan = off"))
    return " ".join(str(r[0]) for r in await conn.execute(text("EXPLAIN " + sql)))


async def test_plain_tokens_enter_three_indexes_and_lookups_keep_theirs(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            indexes = await _indexes(conn)
            plans = {name: await _plan(conn, stmt) for name, stmt in LOOKUPS.items()}
            await conn.rollback()
    finally:
        await engine.dispose()
    full = {name for name, sql in indexes.items() if "WHERE" not in sql.upper()}
    partial = {name for name, sql in indexes.items() if "IS NOT NULL" in sql.upper()}
    assert len(full) == 3, indexes  # primary key, unique token hash, expires_at
    assert "ix_access_tokens_client_id" not in indexes
    assert partial == set(LOOKUPS)
    for name, plan in plans.items():
        assert name in plan, plan
