"""The ``authorization_details`` types registered with the CLI (RFC 9396 §2), in SQL:
the :class:`~tokensmith.core.ports.DetailsTypeStore` mixed into
:class:`~tokensmith.storage.sql.store.SqlStore`. Each schema is kept as JSON text."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.storage.sql.tables import authorization_details_types

__all__ = ["DetailsTypesSqlMixin"]


class DetailsTypesSqlMixin:
    """Needs ``self.engine``."""

    engine: AsyncEngine

    async def list_details_types(self) -> dict[str, str]:
        t = authorization_details_types.c
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.type, t.schema).order_by(t.type))
            return {str(r.type): str(r.schema) for r in rows}

    async def save_details_type(self, name: str, schema: str, at: float) -> None:
        t = authorization_details_types.c
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                update(authorization_details_types).where(t.type == name).values(schema=schema)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(authorization_details_types).values(
                        type=name, schema=schema, created_at=at
                    )
                )

    async def remove_details_type(self, name: str) -> bool:
        t = authorization_details_types.c
        async with self.engine.begin() as conn:
            gone = await conn.execute(delete(authorization_details_types).where(t.type == name))
            return bool(gone.rowcount)
