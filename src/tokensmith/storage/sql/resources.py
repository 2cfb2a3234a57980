"""Registered resources (RFC 8707) in SQL: the
:class:`~tokensmith.core.ports.ResourceStore` mixed into
:class:`~tokensmith.storage.sql.store.SqlStore`. Scopes are kept space-separated."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.models import Resource
from tokensmith.storage.sql.tables import resources

__all__ = ["ResourcesSqlMixin"]


def _resource(m: Any) -> Resource:
    return Resource(
        identifier=m["identifier"],
        name=m["name"],
        scopes=tuple(m["scopes"].split()),
        access_token_ttl=m["access_token_ttl"],
        token_format=m["token_format"],
        created_at=m["created_at"],
    )


class ResourcesSqlMixin:
    """Needs ``self.engine`` and ``self._read``."""

    engine: AsyncEngine
    _read: AsyncEngine

    async def add_resource(self, resource: Resource) -> None:
        row = {
            "identifier": resource.identifier,
            "name": resource.name,
            "scopes": " ".join(resource.scopes),
            "access_token_ttl": resource.access_token_ttl,
            "token_format": resource.token_format,
            "created_at": resource.created_at,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(resources).values(**row))
        except IntegrityError as exc:
            raise KeyError(resource.identifier) from exc

    async def get_resource(self, identifier: str) -> Resource | None:
        query = select(resources).where(resources.c.identifier == identifier)
        async with self._read.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _resource(row._mapping)

    async def list_resources(self) -> list[Resource]:
        query = select(resources).order_by(resources.c.identifier)
        async with self._read.connect() as conn:
            return [_resource(r._mapping) for r in await conn.execute(query)]

    async def remove_resource(self, identifier: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(resources).where(resources.c.identifier == identifier)
            )
            return bool(result.rowcount == 1)
