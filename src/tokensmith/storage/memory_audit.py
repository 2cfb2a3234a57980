"""Audit events and their webhook outbox in memory, mixed into
:class:`~tokensmith.storage.memory.MemoryStore`."""

from __future__ import annotations

import dataclasses

from tokensmith.core.audit import AuditEvent, AuditQuery, OutboxItem, dumps, event_json

__all__ = ["AuditMemoryMixin"]


class AuditMemoryMixin:
    """:class:`~tokensmith.core.audit.AuditStore`; atomic because nothing awaits."""

    @property
    def audit_events(self) -> dict[str, AuditEvent]:
        found = self.__dict__.get("_audit_events")
        if found is None:
            found = self.__dict__["_audit_events"] = {}
        assert isinstance(found, dict)
        return found

    @property
    def audit_outbox(self) -> dict[str, OutboxItem]:
        found = self.__dict__.get("_audit_outbox")
        if found is None:
            found = self.__dict__["_audit_outbox"] = {}
        assert isinstance(found, dict)
        return found

    async def append_audit(self, event: AuditEvent, /, *, deliver: bool = False) -> None:
        if event.id in self.audit_events:
            raise KeyError("an audit event with this id exists")
        self.audit_events[event.id] = event
        if deliver:
            body = dumps(event_json(event))
            self.audit_outbox[event.id] = OutboxItem(event.id, body, event.at, event.at)

    async def list_audit(self, query: AuditQuery, /) -> list[AuditEvent]:
        found = [e for e in self.audit_events.values() if query.matches(e)]
        found.sort(key=lambda e: (e.at, e.id), reverse=True)
        return found[: max(0, query.limit)]

    async def purge_audit(self, before: float, batch: int) -> int:
        old = [i for i, e in self.audit_events.items() if e.at < before][:batch]
        for i in old:
            del self.audit_events[i]
            self.audit_outbox.pop(i, None)
        return len(old)

    async def claim_audit_deliveries(
        self, owner: str, now: float, lease: float, limit: int
    ) -> list[OutboxItem]:
        due = sorted(
            (
                o
                for o in self.audit_outbox.values()
                if o.dead_at is None
                and o.next_at <= now
                and (o.lease_until is None or o.lease_until <= now)
            ),
            key=lambda o: (o.next_at, o.event_id),
        )[:limit]
        claimed = []
        for o in due:
            held = dataclasses.replace(o, lease_owner=owner, lease_until=now + lease)
            self.audit_outbox[o.event_id] = held
            claimed.append(held)
        return claimed

    async def finish_audit_delivery(self, event_id: str, owner: str) -> bool:
        o = self.audit_outbox.get(event_id)
        if o is None or o.lease_owner != owner:
            return False
        del self.audit_outbox[event_id]
        return True

    async def fail_audit_delivery(
        self, event_id: str, owner: str, *, error: str, next_at: float, dead_at: float | None
    ) -> bool:
        o = self.audit_outbox.get(event_id)
        if o is None or o.lease_owner != owner:
            return False
        self.audit_outbox[event_id] = dataclasses.replace(
            o,
            attempts=o.attempts + 1,
            last_error=error[:200],
            next_at=next_at,
            dead_at=dead_at,
            lease_owner=None,
            lease_until=None,
        )
        return True

    async def dead_audit_deliveries(self, limit: int) -> list[OutboxItem]:
        dead = [o for o in self.audit_outbox.values() if o.dead_at is not None]
        dead.sort(key=lambda o: (-(o.dead_at or 0.0), o.event_id))
        return dead[:limit]

    async def retry_audit_delivery(self, event_id: str, now: float) -> bool:
        o = self.audit_outbox.get(event_id)
        if o is None or o.dead_at is None:
            return False
        self.audit_outbox[event_id] = dataclasses.replace(
            o, dead_at=None, attempts=0, next_at=now, lease_owner=None, lease_until=None
        )
        return True
