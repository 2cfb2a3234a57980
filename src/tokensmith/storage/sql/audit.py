"""Audit events and their webhook outbox in SQL (:class:`~tokensmith.core.audit.AuditStore`).

An event and its outbox row are inserted in one transaction. Deliveries are claimed with a
conditional UPDATE (the row's lease must have ended, or never begun), so of several
instances claiming at once each row goes to one; a lease that ends (an instance died
mid-delivery) frees the row for another: at-least-once delivery.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from tokensmith.core.audit import AuditEvent, AuditQuery, OutboxItem, dumps, event_json
from tokensmith.storage.sql.base import SqlBase
from tokensmith.storage.sql.tables import audit_events, audit_outbox

__all__ = ["AuditSql"]


def _event(row: Any) -> AuditEvent:
    m = row._mapping
    return AuditEvent(
        id=m["id"],
        at=m["at"],
        type=m["type"],
        actor=m["actor"],
        outcome=m["outcome"],
        merchant_id=m["merchant_id"],
        source=m["source"],
        subject=m["subject"],
        details=json.loads(m["details"]),
    )


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "type": event.type,
        "actor": event.actor,
        "outcome": event.outcome,
        "merchant_id": event.merchant_id,
        "source": event.source,
        "subject": event.subject,
        "details": dumps(event.details),
    }


class AuditSql(SqlBase):
    """``append_audit``, ``list_audit``, ``purge_audit`` and the outbox's methods."""

    async def append_audit(self, event: AuditEvent, /, *, deliver: bool = False) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(audit_events).values(_row(event)))
            if deliver:
                await conn.execute(
                    insert(audit_outbox).values(
                        event_id=event.id,
                        body=dumps(event_json(event)),
                        created_at=event.at,
                        next_at=event.at,
                        attempts=0,
                    )
                )

    async def list_audit(self, query: AuditQuery, /) -> list[AuditEvent]:
        a = audit_events.c
        where: list[Any] = []
        if query.merchant_id is not None:
            where.append(a.merchant_id == query.merchant_id)
        if query.actor is not None:
            where.append(a.actor == query.actor)
        if query.type is not None:
            where.append(a.type.startswith(query.type, autoescape=True))
        if query.since is not None:
            where.append(a.at >= query.since)
        if query.until is not None:
            where.append(a.at < query.until)
        if query.after is not None:
            c = query.after
            where.append(or_(a.at < c.at, and_(a.at == c.at, a.id < c.id)))
        stmt = (
            select(audit_events)
            .where(*where)
            .order_by(a.at.desc(), a.id.desc())
            .limit(max(0, query.limit))
        )
        async with self._read.connect() as conn:
            return [_event(r) for r in await conn.execute(stmt)]

    async def purge_audit(self, before: float, batch: int) -> int:
        a = audit_events.c
        async with self.engine.begin() as conn:
            ids = list(
                (await conn.execute(select(a.id).where(a.at < before).limit(batch))).scalars()
            )
            if not ids:
                return 0
            await conn.execute(delete(audit_outbox).where(audit_outbox.c.event_id.in_(ids)))
            result = await conn.execute(delete(audit_events).where(a.id.in_(ids)))
            return int(result.rowcount)

    # -- the webhook's outbox --------------------------------------------------------------
    async def claim_audit_deliveries(
        self, owner: str, now: float, lease: float, limit: int
    ) -> list[OutboxItem]:
        o = audit_outbox.c
        free = or_(o.lease_until.is_(None), o.lease_until <= now)
        due = select(o.event_id).where(o.dead_at.is_(None), o.next_at <= now, free)
        async with self._read.connect() as conn:
            candidates = list(
                (await conn.execute(due.order_by(o.next_at, o.event_id).limit(limit))).scalars()
            )
        claimed = []
        for event_id in candidates:
            claim = (
                update(audit_outbox)
                .where(o.event_id == event_id, o.dead_at.is_(None), free)
                .values(lease_owner=owner, lease_until=now + lease)
            )
            if await self._write(claim) == 1:
                claimed.append(event_id)
        if not claimed:
            return []
        query = select(audit_outbox).where(o.event_id.in_(claimed)).order_by(o.next_at)
        return await self._list(OutboxItem, query)

    async def finish_audit_delivery(self, event_id: str, owner: str) -> bool:
        o = audit_outbox.c
        done = delete(audit_outbox).where(o.event_id == event_id, o.lease_owner == owner)
        return await self._write(done) == 1

    async def fail_audit_delivery(
        self, event_id: str, owner: str, *, error: str, next_at: float, dead_at: float | None
    ) -> bool:
        o = audit_outbox.c
        failed = (
            update(audit_outbox)
            .where(o.event_id == event_id, o.lease_owner == owner)
            .values(
                attempts=o.attempts + 1,
                last_error=error[:200],
                next_at=next_at,
                dead_at=dead_at,
                lease_owner=None,
                lease_until=None,
            )
        )
        return await self._write(failed) == 1

    async def dead_audit_deliveries(self, limit: int) -> list[OutboxItem]:
        o = audit_outbox.c
        query = (
            select(audit_outbox)
            .where(o.dead_at.is_not(None))
            .order_by(o.dead_at.desc(), o.event_id)
            .limit(limit)
        )
        return await self._list(OutboxItem, query)

    async def retry_audit_delivery(self, event_id: str, now: float) -> bool:
        o = audit_outbox.c
        again = (
            update(audit_outbox)
            .where(o.event_id == event_id, o.dead_at.is_not(None))
            .values(dead_at=None, attempts=0, next_at=now, lease_owner=None, lease_until=None)
        )
        return await self._write(again) == 1
