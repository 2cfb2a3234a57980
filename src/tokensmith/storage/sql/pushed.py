"""Pushed authorization requests (RFC 9126) in SQL: the
:class:`~tokensmith.core.ports.PushedRequestStore` mixed into
:class:`~tokensmith.storage.sql.store.SqlStore`.

A request is spent by one conditional UPDATE (``used_at IS NULL`` and unexpired), so of
concurrent decisions on one ``request_uri`` exactly one changes the row, on SQLite and on
PostgreSQL alike. The parameters are kept as a JSON object in a text column: JSON escapes
every control character, NUL included, which PostgreSQL refuses in text.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.models import PushedRequest
from tokensmith.storage.sql.tables import pushed_requests

__all__ = ["PushedSqlMixin"]


def _row(p: PushedRequest) -> dict[str, Any]:
    return {
        "request_hash": p.request_hash,
        "client_id": p.client_id,
        "params": json.dumps(dict(p.params)),
        "issuer_tag": p.issuer_tag,
        "created_at": p.created_at,
        "expires_at": p.expires_at,
        "used_at": p.used_at,
    }


def _pushed(m: Any) -> PushedRequest:
    params = json.loads(m["params"])
    return PushedRequest(
        request_hash=m["request_hash"],
        client_id=m["client_id"],
        params=tuple((str(k), str(v)) for k, v in params.items()),
        issuer_tag=m["issuer_tag"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        used_at=m["used_at"],
    )


class PushedSqlMixin:
    """Needs ``self.engine``."""

    engine: AsyncEngine

    async def add_pushed_request(self, pushed: PushedRequest) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(pushed_requests).values(**_row(pushed)))

    async def find_pushed_request(self, request_hash: str) -> PushedRequest | None:
        query = select(pushed_requests).where(pushed_requests.c.request_hash == request_hash)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _pushed(row._mapping)

    async def use_pushed_request(self, request_hash: str, client_id: str, at: float) -> bool:
        p = pushed_requests.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(pushed_requests)
                .where(
                    p.request_hash == request_hash,
                    p.client_id == client_id,
                    p.used_at.is_(None),
                    p.expires_at > at,
                )
                .values(used_at=at)
            )
            return bool(result.rowcount == 1)

    async def purge_pushed_requests(self, before: float, batch: int) -> int:
        p = pushed_requests.c
        async with self.engine.begin() as conn:
            ids = select(p.request_hash).where(p.expires_at < before).limit(batch)
            result = await conn.execute(
                delete(pushed_requests).where(p.request_hash.in_(ids.scalar_subquery()))
            )
            return int(result.rowcount)
