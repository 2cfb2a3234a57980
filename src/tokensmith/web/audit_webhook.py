"""Delivering audit events to the operators' webhook (``audit_webhook_url``), from the
outbox rows written with each event (:class:`~tokensmith.core.audit.AuditOutbox`).

Each event is POSTed as its JSON object, signed: ``Tokensmith-Signature:
t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with ``audit_webhook_secret``
(:func:`~tokensmith.core.audit.sign_webhook`; ``docs/audit.md`` shows how to verify), and
``Tokensmith-Event-Id`` (the receiver's key to drop a repeat). A row is deleted only after
a 2xx answer: delivery is at least once. A failure is retried after an exponential
backoff with jitter; after ``audit_webhook_max_attempts`` failures the row is
dead-lettered (the panel's Audit > Deliveries page queues it again). Rows are claimed
with a lease (a conditional UPDATE), so several instances running this job never send
one row at the same time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from tokensmith.core.audit import AuditOutbox, OutboxItem, sign_webhook
from tokensmith.core.clock import Clock
from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.core.randomness import Randomness

__all__ = ["WebhookDeliverer"]

log = logging.getLogger("tokensmith.audit")

#: Rows claimed at a time.
BATCH = 20


class WebhookDeliverer:
    """Claims due outbox rows and POSTs them; one per app (instance)."""

    def __init__(
        self,
        outbox: AuditOutbox,
        clock: Clock,
        rand: Randomness,
        *,
        url: str,
        secret: str,
        max_attempts: int = 10,
        timeout: float = 10.0,
        base_delay: float = 10.0,
        max_delay: float = 3600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._rand = rand
        self._url = url
        self._secret = secret
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._base = base_delay
        self._max = max_delay
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        #: This deliverer's name on the rows it leases.
        self.owner = rand.token_bytes(8).hex()

    def __repr__(self) -> str:
        return f"WebhookDeliverer(owner={self.owner!r})"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
                transport=self._transport,
            )
        return self._client

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: ``base * 2**(attempts - 1)``, at most
        ``max``, times a random factor in [0.5, 1) so retries from many rows spread."""
        delay = min(self._max, self._base * float(2 ** max(0, min(attempts - 1, 30))))
        jitter = int.from_bytes(self._rand.token_bytes(2), "big") / 65536
        return delay * (0.5 + jitter / 2)

    async def deliver_once(self) -> int:
        """Send the due rows this deliverer can claim; the number delivered."""
        now = self._clock.now()
        lease = self._timeout * (BATCH + 1)
        claimed = await self._outbox.claim_audit_deliveries(self.owner, now, lease, BATCH)
        delivered = 0
        for item in claimed:
            error = await self._send(item)
            if error is None:
                await self._outbox.finish_audit_delivery(item.event_id, self.owner)
                delivered += 1
                continue
            await self._failed(item, error)
        return delivered

    async def _send(self, item: OutboxItem) -> str | None:
        """``None`` once a 2xx came back, else why not."""
        body = item.body.encode("utf-8")
        headers = {
            "content-type": "application/json",
            "tokensmith-signature": sign_webhook(self._secret, int(self._clock.now()), body),
            "tokensmith-event-id": item.event_id,
            "user-agent": "tokensmith-audit-webhook",
        }
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._http().post(self._url, content=body, headers=headers)
        except TimeoutError:
            return f"no answer within {self._timeout:g} s"
        except httpx.HTTPError as exc:
            return f"the request failed ({type(exc).__name__})"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    async def _failed(self, item: OutboxItem, error: str) -> None:
        attempts = item.attempts + 1
        now = self._clock.now()
        dead = now if attempts >= self._max_attempts else None
        await self._outbox.fail_audit_delivery(
            item.event_id,
            self.owner,
            error=error,
            next_at=now + self.backoff(attempts),
            dead_at=dead,
        )
        if dead is not None:
            log.warning(
                "audit webhook delivery dead-lettered",
                extra={"event_id": item.event_id, "attempts": attempts, "reason": error},
            )

    async def run(
        self, interval: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """The background job: deliver every ``interval`` seconds until cancelled (at
        once again while full batches are being sent)."""
        while True:
            try:
                sent = await self.deliver_once()
            except TemporarilyUnavailable:
                sent = 0
            except Exception:  # the job must outlive a database hiccup
                log.exception("audit webhook delivery failed")
                sent = 0
            if sent < BATCH:
                await sleep(interval)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
