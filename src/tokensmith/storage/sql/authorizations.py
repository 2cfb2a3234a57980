"""Withdrawing an authorization in SQL (:class:`~tokensmith.core.ports.WithdrawalStore`),
mixed into :class:`~tokensmith.storage.sql.store.SqlStore`.

One transaction forgets the consents and revokes the token families with their refresh and
access tokens. On PostgreSQL it first locks the families in family-id order, the lock and
the order a refresh-token rotation takes (:func:`~tokensmith.storage.sql.rotation.lock_families`):
a rotation that committed first has its new tokens revoked here, one that comes later finds
its family revoked and loses. On SQLite the first statement writes, which takes the
database's one write lock for the whole transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokensmith.core.models import Grantor, Withdrawal
from tokensmith.storage.sql.tables import (
    access_tokens,
    consents,
    refresh_tokens,
    token_families,
    users,
)

__all__ = ["AuthorizationSqlMixin"]


def _selection(grantor: Grantor, client_id: str) -> tuple[Any, Any]:
    """The ``WHERE`` of the grantor's consents to ``client_id`` and of its families."""
    fam = token_families.c
    if grantor.user_id is not None:
        return (
            and_(consents.c.client_id == client_id, consents.c.user_id == grantor.user_id),
            and_(fam.client_id == client_id, fam.user_id == grantor.user_id),
        )
    members = select(users.c.user_id).where(users.c.merchant_id == grantor.merchant_id)
    return (
        and_(consents.c.client_id == client_id, consents.c.user_id.in_(members)),
        and_(
            fam.client_id == client_id,
            or_(fam.merchant_id == grantor.merchant_id, fam.user_id.in_(members)),
        ),
    )


async def _withdraw(
    conn: AsyncConnection, grantor: Grantor, client_id: str, at: float
) -> Withdrawal:
    fam = token_families.c
    chosen_consents, chosen_families = _selection(grantor, client_id)
    if conn.dialect.name != "sqlite":
        await conn.execute(
            select(fam.family_id)
            .where(chosen_families, fam.revoked_at.is_(None))
            .order_by(fam.family_id)
            .with_for_update(key_share=True)
        )
    forgotten = await conn.execute(delete(consents).where(chosen_consents))
    revoked = await conn.execute(
        update(token_families)
        .where(chosen_families, fam.revoked_at.is_(None))
        .values(revoked_at=at)
        .returning(fam.expires_at, fam.absolute_expires_at)
    )
    live = sum(1 for idle, absolute in revoked if at < min(idle, absolute))
    family_ids = select(fam.family_id).where(chosen_families)
    for table in (refresh_tokens, access_tokens):
        await conn.execute(
            update(table)
            .where(table.c.family_id.in_(family_ids), table.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
    return Withdrawal(int(forgotten.rowcount), live)


class AuthorizationSqlMixin:
    """Needs ``self.engine`` and the store's count of revocations."""

    engine: AsyncEngine
    _revocations: int

    async def withdraw_authorization(
        self, grantor: Grantor, client_id: str, at: float
    ) -> Withdrawal:
        try:
            async with self.engine.begin() as conn:
                return await _withdraw(conn, grantor, client_id, at)
        finally:
            self._revocations += 1  # access tokens may be revoked: the views read again
