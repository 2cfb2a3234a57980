"""Deleting expired rows in batches in SQL: the purge methods of the protocols that
:class:`~tokensmith.core.ports.PurgeStore` gathers (run by :mod:`tokensmith.core.purge`).

Each call deletes at most ``batch`` rows in one transaction, so a large backlog is
worked off in short transactions that never hold the tables long."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement, delete, or_, select

from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import (
    access_tokens,
    authorization_codes,
    refresh_tokens,
    sessions,
    token_families,
)

__all__ = ["PurgeSql"]


class PurgeSql(SqlBase):
    """``purge_access_tokens``, ``purge_codes``, ``purge_families``, ``purge_sessions``."""

    async def _purge(self, key: Column[Any], expired: ColumnElement[bool], batch: int) -> int:
        """Delete up to ``batch`` rows of ``key``'s table that match ``expired``."""
        ids = select(key).where(expired).limit(batch)
        return await self._write(delete(key.table).where(key.in_(ids.scalar_subquery())))

    async def purge_access_tokens(self, before: float, batch: int) -> int:
        t = access_tokens.c
        return await self._purge(t.jti, t.expires_at < before, batch)

    async def purge_codes(self, before: float, batch: int) -> int:
        codes = authorization_codes.c
        return await self._purge(codes.code_hash, codes.expires_at < before, batch)

    async def purge_sessions(self, idle_before: float, now: float, batch: int) -> int:
        s = sessions.c
        ended = or_(s.last_seen_at < idle_before, s.expires_at < now)
        return await self._purge(s.session_hash, ended, batch)

    async def purge_families(self, before: float, batch: int) -> int:
        """Families past their idle or absolute expiry, with their refresh tokens; the
        number of refresh tokens deleted."""
        fam = token_families.c
        ended = or_(fam.expires_at < before, fam.absolute_expires_at < before)
        async with self.engine.begin() as conn:
            query = select(fam.family_id).where(ended).limit(batch)
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return 0
            result = await conn.execute(
                delete(refresh_tokens).where(refresh_tokens.c.family_id.in_(ids))
            )
            await conn.execute(delete(token_families).where(fam.family_id.in_(ids)))
            return int(result.rowcount)
