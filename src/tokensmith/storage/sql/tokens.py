"""Access tokens and their revocations (:class:`~tokensmith.core.ports.TokenStore`) in SQL.

New tokens are stored by group commit (:mod:`tokensmith.storage.sql.batch`) on the write
path :func:`~tokensmith.storage.sql.store.write_paths_for` chose for the engine;
:func:`insert_access_tokens` and :func:`token_values` are that path's batch function and
row mapper. Expired rows are deleted by :mod:`tokensmith.storage.sql.purge`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from tokensmith.core.models import AccessTokenRecord
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.batch import GroupCommit
from tokensmith.storage.sql.tables import access_tokens

__all__ = ["AccessTokensSql", "insert_access_tokens", "token_values"]


def token_values(r: AccessTokenRecord) -> dict[str, Any]:
    """The row of ``r`` (spelled out: cheaper than :func:`~.tables.row_of` per token)."""
    return {
        "jti": r.jti,
        "token_hash": r.token_hash,
        "client_id": r.client_id,
        "subject": r.subject,
        "scope": r.scope,
        "family_id": r.family_id,
        "issued_at": r.issued_at,
        "expires_at": r.expires_at,
        "revoked_at": r.revoked_at,
        "issuer_tag": r.issuer_tag,
        "jkt": r.jkt,
        "x5t_s256": r.x5t_s256,
        "authorization_details": r.authorization_details,
        "audience": r.audience,
    }


def insert_access_tokens(conn: Connection, records: Sequence[AccessTokenRecord]) -> list[None]:
    """A batch of new access tokens in one ``INSERT`` (executemany)."""
    conn.execute(insert(access_tokens), [token_values(r) for r in records])
    return [None] * len(records)


class AccessTokensSql(SqlBase):
    """:class:`~tokensmith.core.ports.TokenStore` but its purge."""

    _token_writes: GroupCommit[AccessTokenRecord, None]

    @property
    def revocation_generation(self) -> int:
        return self._revocations

    async def revoked_since(self, since: float, now: float) -> list[tuple[str, float, float]]:
        t = access_tokens.c
        query = select(t.jti, t.revoked_at, t.expires_at).where(
            t.revoked_at.is_not(None), t.expires_at > now
        )
        if since != float("-inf"):
            query = query.where(t.revoked_at >= since)
        async with self._read.connect() as conn:
            return [(r.jti, r.revoked_at, r.expires_at) for r in await conn.execute(query)]

    async def add_access_token(self, record: AccessTokenRecord) -> None:
        """Stored by group commit (:mod:`tokensmith.storage.sql.batch`): returns once the
        row is committed."""
        await self._token_writes.submit(record)

    async def find_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        return await self._by(AccessTokenRecord, access_tokens.c.token_hash, token_hash)

    async def find_access_token_by_jti(self, jti: str) -> AccessTokenRecord | None:
        return await self._by(AccessTokenRecord, access_tokens.c.jti, jti)

    async def revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        await self._counted(self._revoke_access_token(record, at))

    async def _revoke_access_token(self, record: AccessTokenRecord, at: float) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(access_tokens)
                .where(access_tokens.c.jti == record.jti, access_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            if result.rowcount == 0:
                values = token_values(record) | {"revoked_at": at}
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(access_tokens).values(**values))
                except IntegrityError:
                    pass  # revoked concurrently: the outcome is the same
