"""Audit events: who did what to which object, from where, and with what outcome.

An event never carries a secret: :meth:`Audit.record` refuses detail keys that name one
(``secret``, ``password``, ``token``, ``assertion``, ``key`` values), so a caller cannot
log one by mistake. Events are appended to an :class:`AuditTrail` (the store in
production, :class:`MemoryAuditTrail` in tests and until a store implements it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tokensmith.core.clock import Clock
from tokensmith.core.randomness import Randomness

__all__ = [
    "Audit",
    "AuditEvent",
    "AuditTrail",
    "DetailValue",
    "MemoryAuditTrail",
    "Outcome",
]

Outcome = Literal["success", "failure"]
DetailValue = str | int | float | bool | None

#: Detail keys that would carry a secret; refused by :meth:`Audit.record`.
_SECRET_WORDS = ("secret", "password", "token", "assertion", "private", "credential")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited action. ``actor`` names who acted: ``user:<id>``, ``client:<id>``,
    ``cli`` or ``system``; ``subject`` the object acted on (a client id, a key id...)."""

    id: str
    at: float
    type: str
    actor: str
    outcome: Outcome = "success"
    merchant_id: str | None = None
    source: str | None = None
    subject: str | None = None
    details: Mapping[str, DetailValue] = field(default_factory=dict)


class AuditTrail(Protocol):
    """Where events go (the port storage implements)."""

    async def append_audit(self, event: AuditEvent, /) -> None: ...


class MemoryAuditTrail:
    """Events in a list: the core's tests."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append_audit(self, event: AuditEvent, /) -> None:
        self.events.append(event)


class Audit:
    """Records audit events with the injected clock and randomness."""

    def __init__(self, trail: AuditTrail, clock: Clock, rand: Randomness) -> None:
        self._trail = trail
        self._clock = clock
        self._rand = rand

    async def record(
        self,
        type: str,
        *,
        actor: str,
        outcome: Outcome = "success",
        merchant_id: str | None = None,
        source: str | None = None,
        subject: str | None = None,
        **details: DetailValue,
    ) -> AuditEvent:
        """Append one event and return it. Raises ``ValueError`` for a detail key that
        names a secret (the event is a record of an action, never of a credential)."""
        for key in details:
            if any(word in key.lower() for word in _SECRET_WORDS):
                raise ValueError(f"audit detail {key!r} may carry a secret")
        event = AuditEvent(
            id=self._rand.token_bytes(12).hex(),
            at=self._clock.now(),
            type=type,
            actor=actor,
            outcome=outcome,
            merchant_id=merchant_id,
            source=source,
            subject=subject,
            details=dict(details),
        )
        await self._trail.append_audit(event)
        return event
