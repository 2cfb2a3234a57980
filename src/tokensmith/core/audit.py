"""Audit events: who did what to which object, from where, and with what outcome.

An event never carries a secret: :meth:`Audit.record` refuses detail keys that name one
(``secret``, ``password``, ``token``, ``assertion``, ``key`` values), so a caller cannot
log one by mistake. Events are appended to an :class:`AuditTrail` (the store in
production, :class:`MemoryAuditTrail` in tests) and read back through an
:class:`AuditReader` (newest first, keyset paging). When a webhook is configured, each
event also gets an outbox row (:class:`AuditOutbox`), written with it, that a background
job delivers (``tokensmith.web.audit_webhook``). Every event type is listed in
:data:`EVENT_TYPES` and documented in ``docs/audit.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from tokensmith.core.clock import Clock
from tokensmith.core.randomness import Randomness

__all__ = [
    "CLI",
    "CSV_COLUMNS",
    "EVENT_TYPES",
    "SYSTEM",
    "Audit",
    "AuditCursor",
    "AuditEvent",
    "AuditOutbox",
    "AuditQuery",
    "AuditReader",
    "AuditStore",
    "AuditTrail",
    "By",
    "DetailValue",
    "MemoryAuditTrail",
    "NullAuditTrail",
    "OutboxItem",
    "Outcome",
    "csv_line",
    "csv_row",
    "dumps",
    "event_json",
    "iso_time",
    "jsonl_row",
    "sign_webhook",
    "verify_webhook",
]

Outcome = Literal["success", "failure"]
DetailValue = str | int | float | bool | None

#: Detail keys that would carry a secret; refused by :meth:`Audit.record`.
_SECRET_WORDS = ("secret", "password", "token", "assertion", "private", "credential")

#: Every event type, with what it records (``docs/audit.md`` lists the same).
EVENT_TYPES: Mapping[str, str] = {
    "login.succeeded": "a user logged in (panel or authorization login page)",
    "login.failed": "a login was refused (reason: bad_credentials, account_disabled, rate_limited)",
    "logout": "a user logged out",
    "consent.granted": "a user approved a partner app's authorization request",
    "consent.withdrawn": "a user or a merchant withdrew an app's authorization",
    "consent.created": "a partner lodged a consent resource at /oauth/consents",
    "consent.authorized": "a user authorized a consent resource on the consent page",
    "consent.rejected": "a user rejected a consent resource on the consent page",
    "consent.consumed": "a resource server reported a single-use consent consumed",
    "consent.revoked": "a consent resource was revoked (partner, panel or admin API)",
    "client.created": "an API key or partner app (OAuth client) was created",
    "client.updated": "a client's settings changed",
    "client.keys_changed": "a client's public keys (jwks, jwks_uri) changed",
    "client.secret_rotated": "a client got a new secret",
    "client.revoked": "a client was revoked: its tokens stop working",
    "client.deleted": "a client was deleted with its tokens",
    "apikey.created": "a developer app key was created",
    "apikey.revoked": "a developer app key was revoked",
    "apikey.rotated": "a developer app key got a new value",
    "user.created": "a user was created",
    "user.disabled": "a user was disabled and signed out",
    "merchant.created": "a merchant was created",
    "merchant.disabled": "a merchant was disabled",
    "key.rotated": "a new signing key was added (the older ones retire)",
    "token.revoked": "a client revoked a token at /oauth/revoke (RFC 7009)",
    "audit.delivery_retried": "an operator queued a dead-lettered webhook delivery again",
    "client.registered": "a client registered itself (RFC 7591), or a registration was refused",
    "client.registration_updated": "a registered client replaced its metadata (RFC 7592)",
    "client.registration_deleted": "a registered client deleted itself (RFC 7592)",
    "admin.<resource>.<operation>": (
        "an admin API call that changed something, or was refused for a known caller "
        "(e.g. admin.clients.create; the operation ids of /admin/v1/openapi.json)"
    ),
}


@dataclass(frozen=True, slots=True)
class By:
    """Who acts and from where, as the caller of a service knows it: ``user:<id>``,
    ``client:<id>``, ``cli`` or ``system``, and the peer address if any."""

    actor: str
    source: str | None = None

    @classmethod
    def user(cls, user_id: str, source: str | None = None) -> By:
        return cls(f"user:{user_id}", source)


#: The command line's actor.
CLI = By("cli")
#: The server itself (a job, a startup step).
SYSTEM = By("system")


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


def event_json(event: AuditEvent) -> dict[str, Any]:
    """The event as a JSON object: the export's lines and the webhook's body."""
    return {
        "id": event.id,
        "at": event.at,
        "type": event.type,
        "actor": event.actor,
        "outcome": event.outcome,
        "merchant_id": event.merchant_id,
        "source": event.source,
        "subject": event.subject,
        "details": dict(event.details),
    }


@dataclass(frozen=True, slots=True)
class AuditCursor:
    """Where a page ended: the next page holds the events older than this one."""

    at: float
    id: str

    def encode(self) -> str:
        return f"{self.at!r}_{self.id}"

    @classmethod
    def decode(cls, value: str) -> AuditCursor | None:
        """The cursor of :meth:`encode`, or ``None`` for anything else."""
        at, sep, event_id = value.partition("_")
        if not sep or not event_id.isalnum() or len(event_id) > 64:
            return None
        try:
            stamp = float(at)
        except ValueError:
            return None
        return cls(stamp, event_id) if stamp == stamp and abs(stamp) < 1e12 else None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A filter on events, newest first. ``merchant_id`` ``None``: every merchant's (and
    none's); ``type`` matches a type or a prefix of one (``client`` matches
    ``client.created``); ``since``/``until`` bound ``at`` (inclusive, exclusive)."""

    merchant_id: str | None = None
    actor: str | None = None
    type: str | None = None
    since: float | None = None
    until: float | None = None
    after: AuditCursor | None = None
    limit: int = 50

    def matches(self, event: AuditEvent) -> bool:
        """The filter in Python (the in-memory stores)."""
        return (
            (self.merchant_id is None or event.merchant_id == self.merchant_id)
            and (self.actor is None or event.actor == self.actor)
            and (self.type is None or event.type.startswith(self.type))
            and (self.since is None or event.at >= self.since)
            and (self.until is None or event.at < self.until)
            and (self.after is None or (event.at, event.id) < (self.after.at, self.after.id))
        )


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An event waiting for the webhook: its JSON body, the attempts made so far, when
    the next may be made; ``dead_at`` set once it has failed ``max_attempts`` times."""

    event_id: str
    body: str
    created_at: float
    next_at: float
    attempts: int = 0
    last_error: str | None = None
    dead_at: float | None = None
    lease_owner: str | None = None
    lease_until: float | None = None


class AuditTrail(Protocol):
    """Where events go (the port storage implements). ``deliver``: also queue the event
    for the webhook, in the same transaction."""

    async def append_audit(self, event: AuditEvent, /, *, deliver: bool = False) -> None: ...


class AuditReader(Protocol):
    async def list_audit(self, query: AuditQuery, /) -> list[AuditEvent]:
        """At most ``query.limit`` events matching ``query``, newest first (``at`` then
        ``id`` descending), older than ``query.after``."""
        ...


class AuditOutbox(Protocol):
    """Webhook deliveries waiting, claimed with a lease so that several instances never
    send one row at once (a conditional UPDATE)."""

    async def claim_audit_deliveries(
        self, owner: str, now: float, lease: float, limit: int
    ) -> list[OutboxItem]:
        """Lease to ``owner`` until ``now + lease`` up to ``limit`` live rows due at ``now``
        whose lease (if any) has ended; the rows this caller got."""
        ...

    async def finish_audit_delivery(self, event_id: str, owner: str) -> bool:
        """Delete the row (delivered) if ``owner`` still holds its lease."""
        ...

    async def fail_audit_delivery(
        self, event_id: str, owner: str, *, error: str, next_at: float, dead_at: float | None
    ) -> bool:
        """Count a failed attempt and free the lease: retried at ``next_at``, or dead."""
        ...

    async def dead_audit_deliveries(self, limit: int) -> list[OutboxItem]:
        """Dead-lettered rows, newest first."""
        ...

    async def retry_audit_delivery(self, event_id: str, now: float) -> bool:
        """A dead row live again, due at ``now``, its attempts reset."""
        ...


class AuditStore(AuditTrail, AuditReader, AuditOutbox, Protocol):
    async def purge_audit(self, before: float, batch: int) -> int:
        """Delete up to ``batch`` events (and their outbox rows) older than ``before``."""
        ...


class NullAuditTrail:
    """Keeps nothing: services built without an :class:`Audit`."""

    async def append_audit(self, event: AuditEvent, /, *, deliver: bool = False) -> None:
        return None


class MemoryAuditTrail:
    """Events in a list: the core's tests."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append_audit(self, event: AuditEvent, /, *, deliver: bool = False) -> None:
        self.events.append(event)

    async def list_audit(self, query: AuditQuery, /) -> list[AuditEvent]:
        found = sorted(
            (e for e in self.events if query.matches(e)), key=lambda e: (e.at, e.id), reverse=True
        )
        return found[: query.limit]


class Audit:
    """Records audit events with the injected clock and randomness, and reads them back
    (the panel's Audit page, the CLI's ``audit list``/``export``)."""

    def __init__(
        self,
        trail: AuditTrail,
        clock: Clock,
        rand: Randomness,
        *,
        reader: AuditReader | None = None,
        outbox: AuditOutbox | None = None,
        deliver: bool = False,
    ) -> None:
        self._trail = trail
        self._clock = clock
        self._rand = rand
        self._reader = reader
        self._outbox = outbox
        #: Queue each event for the webhook (``audit_webhook_url`` is set).
        self.deliver = deliver

    @classmethod
    def null(cls, clock: Clock, rand: Randomness) -> Audit:
        """An audit that keeps nothing (a service built without one)."""
        return cls(NullAuditTrail(), clock, rand)

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
        await self._trail.append_audit(event, deliver=self.deliver)
        return event

    async def by(
        self,
        who: By,
        type: str,
        *,
        outcome: Outcome = "success",
        merchant_id: str | None = None,
        subject: str | None = None,
        **details: DetailValue,
    ) -> AuditEvent:
        """:meth:`record` with the actor and source of ``who``."""
        return await self.record(
            type,
            actor=who.actor,
            source=who.source,
            outcome=outcome,
            merchant_id=merchant_id,
            subject=subject,
            **details,
        )

    # -- reading -------------------------------------------------------------------------
    def _need_reader(self) -> AuditReader:
        if self._reader is None:
            raise RuntimeError("this audit has no reader")
        return self._reader

    async def page(self, query: AuditQuery) -> tuple[list[AuditEvent], AuditCursor | None]:
        """One page of events, and the cursor of the next if there may be one."""
        found = await self._need_reader().list_audit(replace(query, limit=query.limit + 1))
        if len(found) <= query.limit:
            return found, None
        shown = found[: query.limit]
        return shown, AuditCursor(shown[-1].at, shown[-1].id)

    async def stream(self, query: AuditQuery, batch: int = 500) -> AsyncIterator[AuditEvent]:
        """Every event matching ``query`` (its ``limit`` ignored), newest first, read a
        page at a time: the export."""
        cursor = query.after
        while True:
            events = await self._need_reader().list_audit(replace(query, after=cursor, limit=batch))
            for event in events:
                yield event
            if len(events) < batch:
                return
            cursor = AuditCursor(events[-1].at, events[-1].id)

    # -- webhook dead letters ----------------------------------------------------------------
    async def dead_letters(self, limit: int = 100) -> list[OutboxItem]:
        return [] if self._outbox is None else await self._outbox.dead_audit_deliveries(limit)

    async def retry_delivery(self, event_id: str, who: By) -> bool:
        """Queue a dead-lettered delivery again; False if there is none with this id."""
        if self._outbox is None:
            return False
        if not await self._outbox.retry_audit_delivery(event_id, self._clock.now()):
            return False
        await self.by(who, "audit.delivery_retried", subject=event_id)
        return True


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Tokensmith-Signature`` header: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook(
    secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of
    ``now`` (what a receiver does; see ``docs/audit.md``)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign_webhook(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def dumps(value: Mapping[str, Any]) -> str:
    """Compact JSON (the stored details and the webhook body)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


#: The export's CSV columns.
CSV_COLUMNS = (
    "id",
    "at",
    "type",
    "actor",
    "outcome",
    "merchant_id",
    "source",
    "subject",
    "details",
)


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``= + - @`` (a formula) or control
    character gets a ``'`` first (OWASP CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_line(values: Sequence[str]) -> str:
    """One CSV record (RFC 4180), CRLF-terminated."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def csv_row(event: AuditEvent) -> str:
    """The event as a CSV record of :data:`CSV_COLUMNS`; ``at`` in ISO 8601 UTC."""
    return csv_line(
        [
            event.id,
            iso_time(event.at),
            event.type,
            event.actor,
            event.outcome,
            event.merchant_id or "",
            event.source or "",
            event.subject or "",
            dumps(event.details),
        ]
    )


def jsonl_row(event: AuditEvent) -> str:
    """The event as one JSON Lines line."""
    return dumps(event_json(event)) + "\n"


def iso_time(at: float) -> str:
    """``2026-01-02T03:04:05.678Z``."""
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
