"""The merchant panel's storage (:class:`~tokensmith.core.ports.PanelStore`) in SQL.

Mixed into :class:`~tokensmith.storage.sql.store.SqlStore`. Token counts are upserted
(``INSERT ... ON CONFLICT DO UPDATE``, on SQLite and PostgreSQL alike) in a fixed key
order, so concurrent flushes from several instances add up and never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.models import TokenFamily
from tokensmith.core.panel_models import AuthFailure, Reveal, TokenCount
from tokensmith.storage.sql.tables import auth_failures, panel_reveals, token_families, token_stats

__all__ = ["PanelSqlMixin"]


def _upsert(dialect: str) -> Any:
    """``INSERT .. ON CONFLICT (client_id, hour) DO UPDATE`` adding the counts."""
    stmt: Any = pg_insert(token_stats) if dialect == "postgresql" else sqlite_insert(token_stats)
    new, old = stmt.excluded, token_stats.c
    last = case(
        (new.last_issued_at.is_(None), old.last_issued_at),
        (old.last_issued_at.is_(None), new.last_issued_at),
        (new.last_issued_at > old.last_issued_at, new.last_issued_at),
        else_=old.last_issued_at,
    )
    return stmt.on_conflict_do_update(
        index_elements=[old.client_id, old.hour],
        set_={
            "issued": old.issued + new.issued,
            "refused": old.refused + new.refused,
            "last_issued_at": last,
        },
    )


def _failure(row: Any) -> AuthFailure:
    m = row._mapping
    return AuthFailure(
        at=m["at"],
        client_id=m["client_id"],
        source=m["source"],
        reason=m["reason"],
        dialect=m["dialect"],
        merchant_id=m["merchant_id"],
    )


class PanelSqlMixin:
    """Needs ``self.engine``."""

    engine: AsyncEngine

    # -- activity --------------------------------------------------------------------------
    async def add_token_counts(self, counts: Sequence[TokenCount]) -> None:
        rows = [
            {
                "client_id": c.client_id,
                "hour": c.hour,
                "issued": c.issued,
                "refused": c.refused,
                "last_issued_at": c.last_issued_at,
            }
            for c in sorted(counts, key=lambda c: (c.client_id, c.hour))
        ]
        if not rows:
            return
        async with self.engine.begin() as conn:
            await conn.execute(_upsert(self.engine.dialect.name), rows)

    async def token_counts(self, client_ids: Sequence[str], since: int) -> list[TokenCount]:
        if not client_ids:
            return []
        t = token_stats.c
        query = (
            select(token_stats)
            .where(t.client_id.in_(list(client_ids)), t.hour >= since)
            .order_by(t.hour, t.client_id)
        )
        async with self.engine.connect() as conn:
            return [TokenCount(**r._mapping) for r in await conn.execute(query)]

    async def last_used(self, client_ids: Sequence[str]) -> dict[str, float]:
        if not client_ids:
            return {}
        t = token_stats.c
        query = (
            select(t.client_id, func.max(t.last_issued_at))
            .where(t.client_id.in_(list(client_ids)), t.last_issued_at.is_not(None))
            .group_by(t.client_id)
        )
        async with self.engine.connect() as conn:
            return {cid: float(at) for cid, at in await conn.execute(query)}

    async def add_auth_failures(self, failures: Sequence[AuthFailure]) -> None:
        rows = [
            {
                "at": f.at,
                "client_id": f.client_id,
                "merchant_id": f.merchant_id,
                "source": f.source,
                "reason": f.reason,
                "dialect": f.dialect,
            }
            for f in failures
        ]
        if not rows:
            return
        async with self.engine.begin() as conn:
            await conn.execute(insert(auth_failures), rows)

    async def recent_auth_failures(self, merchant_id: str | None, limit: int) -> list[AuthFailure]:
        a = auth_failures.c
        owner = a.merchant_id.is_(None) if merchant_id is None else a.merchant_id == merchant_id
        query = select(auth_failures).where(owner).order_by(a.at.desc(), a.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return [_failure(r) for r in await conn.execute(query)]

    async def purge_activity(self, stats_before: int, failures_before: float, keep: int) -> int:
        a = auth_failures.c
        async with self.engine.begin() as conn:
            n = await conn.execute(delete(token_stats).where(token_stats.c.hour < stats_before))
            deleted = int(n.rowcount)
            n = await conn.execute(delete(auth_failures).where(a.at < failures_before))
            deleted += int(n.rowcount)
            edge = (
                await conn.execute(select(a.id).order_by(a.id.desc()).offset(keep).limit(1))
            ).scalar()
            if edge is not None:
                n = await conn.execute(delete(auth_failures).where(a.id <= edge))
                deleted += int(n.rowcount)
            return deleted

    # -- one-time reveals --------------------------------------------------------------------
    async def add_reveal(self, reveal: Reveal) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(panel_reveals).values(
                    reveal_hash=reveal.reveal_hash,
                    session_hash=reveal.session_hash,
                    sealed=reveal.sealed,
                    created_at=reveal.created_at,
                    expires_at=reveal.expires_at,
                )
            )

    async def take_reveal(self, reveal_hash: str, session_hash: str, now: float) -> Reveal | None:
        r = panel_reveals.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(panel_reveals).where(
                        r.reveal_hash == reveal_hash,
                        r.session_hash == session_hash,
                        r.expires_at > now,
                    )
                )
            ).first()
            if row is None:
                return None
            gone = await conn.execute(delete(panel_reveals).where(r.reveal_hash == reveal_hash))
            if gone.rowcount != 1:
                return None  # shown to a concurrent request
            m = dict(row._mapping)
            m["sealed"] = bytes(m["sealed"])
            return Reveal(**m)

    async def purge_reveals(self, before: float) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(panel_reveals).where(panel_reveals.c.expires_at < before)
            )
            return int(result.rowcount)

    # -- partner app authorizations ------------------------------------------------------------
    async def merchant_families(self, merchant_id: str) -> list[TokenFamily]:
        f = token_families.c
        query = (
            select(token_families)
            .where(f.merchant_id == merchant_id, f.revoked_at.is_(None))
            .order_by(f.created_at, f.family_id)
        )
        async with self.engine.connect() as conn:
            return [TokenFamily(**r._mapping) for r in await conn.execute(query)]
