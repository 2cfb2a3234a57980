"""Consent resources in SQL: the :class:`~tokensmith.core.ports.ConsentResourceStore`
mixed into :class:`~tokensmith.storage.sql.store.SqlStore`.

Every change of status is one conditional UPDATE (the status it leaves, and unexpired),
so of concurrent approvals or consumptions of one consent exactly one changes the row,
on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update

from tokensmith.core.models import CONSENT_AUTHORIZED, CONSENT_AWAITING, ConsentResource
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import consent_resources, row_of

__all__ = ["ConsentResourcesSqlMixin"]


class ConsentResourcesSqlMixin(SqlBase):
    async def add_consent_resource(self, consent: ConsentResource) -> None:
        await self._write(insert(consent_resources).values(**row_of(consent)))

    async def get_consent_resource(self, consent_id: str) -> ConsentResource | None:
        return await self._by(ConsentResource, consent_resources.c.consent_id, consent_id)

    async def authorize_consent_resource(
        self,
        consent_id: str,
        client_id: str,
        *,
        user_id: str,
        merchant_id: str,
        family_id: str,
        at: float,
        expires_at: float,
    ) -> bool:
        c = consent_resources.c
        statement = (
            update(consent_resources)
            .where(
                c.consent_id == consent_id,
                c.client_id == client_id,
                c.status == CONSENT_AWAITING,
                c.expires_at > at,
            )
            .values(
                status=CONSENT_AUTHORIZED,
                status_updated_at=at,
                user_id=user_id,
                merchant_id=merchant_id,
                family_id=family_id,
                approved_at=at,
                expires_at=expires_at,
            )
        )
        return await self._write(statement) == 1

    async def change_consent_resource(
        self,
        consent_id: str,
        old: Sequence[str],
        new: str,
        at: float,
        *,
        user_id: str | None = None,
        merchant_id: str | None = None,
    ) -> bool:
        c = consent_resources.c
        values: dict[str, Any] = {"status": new, "status_updated_at": at}
        if user_id is not None:
            values["user_id"] = user_id
        if merchant_id is not None:
            values["merchant_id"] = merchant_id
        statement = (
            update(consent_resources)
            .where(c.consent_id == consent_id, c.status.in_(list(old)), c.expires_at > at)
            .values(**values)
        )
        return await self._write(statement) == 1

    async def list_consent_resources(
        self, *, client_id: str | None = None, merchant_id: str | None = None
    ) -> list[ConsentResource]:
        c = consent_resources.c
        query = select(consent_resources)
        if client_id is not None:
            query = query.where(c.client_id == client_id)
        if merchant_id is not None:
            query = query.where(c.merchant_id == merchant_id)
        return await self._list(ConsentResource, query.order_by(c.created_at, c.consent_id))

    async def purge_consent_resources(self, before: float, batch: int) -> int:
        c = consent_resources.c
        ids = select(c.consent_id).where(c.expires_at < before).limit(batch)
        return await self._write(
            delete(consent_resources).where(c.consent_id.in_(ids.scalar_subquery()))
        )
