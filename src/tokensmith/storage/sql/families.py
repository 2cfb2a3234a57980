"""Refresh tokens and their families (:class:`~tokensmith.core.ports.RefreshTokenStore`)
in SQL: rotation, the grace-window replay and revocation (RFC 6749 §6, RFC 9700 §4.14.2).

The rotation rule itself is :mod:`tokensmith.storage.sql.rotation`, run by group commit
on the write path :func:`~tokensmith.storage.sql.store.write_paths_for` chose.
Concurrent lookups of grants share one query (:func:`find_grants`, on an
:class:`~tokensmith.storage.sql.write_paths.AutocommitStatement`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    Connection,
    Table,
    bindparam,
    select,
    update,
)

from tokensmith.core.models import (
    AccessTokenRecord,
    Merchant,
    RefreshGrant,
    RefreshTokenRecord,
    TokenFamily,
)
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.batch import GroupCommit
from tokensmith.storage.sql.rotation import Replay, ReplayRefused, Rotation
from tokensmith.storage.sql.tables import access_tokens, merchants, refresh_tokens, token_families
from tokensmith.storage.sql.write_paths import WritePath

__all__ = ["FamiliesSql", "find_grants"]

_GRANT_QUERY = (
    select(refresh_tokens, token_families, merchants)
    .select_from(
        refresh_tokens.outerjoin(
            token_families, token_families.c.family_id == refresh_tokens.c.family_id
        ).outerjoin(merchants, merchants.c.merchant_id == token_families.c.merchant_id)
    )
    .where(refresh_tokens.c.token_hash.in_(bindparam("hashes", expanding=True)))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)

_LABELS = {
    t.name: [(c.name, f"{t.name}_{c.name}") for c in t.columns]
    for t in (refresh_tokens, token_families, merchants)
}


def find_grants(conn: Connection, hashes: Sequence[str]) -> list[RefreshGrant | None]:
    """The grants of a batch of refresh-token hashes, in one query."""
    rows = conn.execute(_GRANT_QUERY, {"hashes": sorted(set(hashes))})
    found = {g.token.token_hash: g for g in (_refresh_grant(r._mapping) for r in rows)}
    return [found.get(h) for h in hashes]


def _columns(m: Any, table: Table) -> dict[str, Any]:
    return {name: m[key] for name, key in _LABELS[table.name]}


def _refresh_grant(m: Any) -> RefreshGrant:
    family = _columns(m, token_families)
    merchant = _columns(m, merchants)
    return RefreshGrant(
        RefreshTokenRecord(**_columns(m, refresh_tokens)),
        None if family["family_id"] is None else TokenFamily(**family),
        None if merchant["merchant_id"] is None else Merchant(**merchant),
    )


class FamiliesSql(SqlBase):
    """:class:`~tokensmith.core.ports.RefreshTokenStore` but its purge."""

    _rotations: GroupCommit[Rotation, bool]
    _replays: WritePath[Replay, bool]
    _grant_reads: GroupCommit[str, RefreshGrant | None]

    async def find_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        return await self._by(RefreshTokenRecord, refresh_tokens.c.token_hash, token_hash)

    async def find_refresh_grant(self, token_hash: str) -> RefreshGrant | None:
        """Concurrent lookups share one query (:class:`GroupCommit` on the AUTOCOMMIT
        engine)."""
        return await self._grant_reads.submit(token_hash)

    async def get_family(self, family_id: str) -> TokenFamily | None:
        return await self._by(TokenFamily, token_families.c.family_id, family_id)

    async def rotate_refresh_token(
        self,
        old_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """Committed by group commit with the other rotations in flight
        (:mod:`tokensmith.storage.sql.rotation`)."""
        return await self._rotations.submit(Rotation(old_hash, new, at, access))

    async def replay_refresh_token(
        self,
        old_hash: str,
        successor_hash: str,
        new: RefreshTokenRecord,
        at: float,
        access: AccessTokenRecord | None = None,
    ) -> bool:
        """:func:`~tokensmith.storage.sql.rotation.replay` alone in a transaction of the
        write path (the SQLite writer's thread, or the engine)."""
        r = Replay(Rotation(old_hash, new, at, access), successor_hash)
        try:
            [won] = await self._replays.write([r])
        except ReplayRefused:
            return False
        if won:
            self._revocations += 1  # the successor's access token
        return won

    async def revoke_family(self, family_id: str, at: float) -> bool:
        return await self._counted(self._revoke_family(family_id, at))

    async def _revoke_family(self, family_id: str, at: float) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(token_families)
                .where(
                    token_families.c.family_id == family_id,
                    token_families.c.revoked_at.is_(None),
                )
                .values(revoked_at=at)
            )
            for table in (refresh_tokens, access_tokens):
                await conn.execute(
                    update(table)
                    .where(table.c.family_id == family_id, table.c.revoked_at.is_(None))
                    .values(revoked_at=at)
                )
            return result.rowcount > 0

    async def revoke_families(self, user_id: str, client_id: str, at: float) -> int:
        fam = token_families.c
        query = select(fam.family_id).where(fam.user_id == user_id, fam.client_id == client_id)
        async with self._read.connect() as conn:
            family_ids = list((await conn.execute(query)).scalars())
        return sum([await self.revoke_family(fid, at) for fid in family_ids])
