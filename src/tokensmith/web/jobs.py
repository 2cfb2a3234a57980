"""The application's background jobs: the purge, the flushes of token activity and
metrics, and the audit webhook's deliveries. :class:`BackgroundJobs` starts them in the
lifespan and ends them."""

from __future__ import annotations

import asyncio
import logging

from tokensmith.core.authorization_details import refresh_types_forever
from tokensmith.core.purge import purge_forever
from tokensmith.web.audit_webhook import WebhookDeliverer
from tokensmith.web.context import AppContext
from tokensmith.web.tasks import stop_task

__all__ = ["BackgroundJobs"]

log = logging.getLogger("tokensmith")


class BackgroundJobs:
    """The jobs of one running app. An interval of 0 (``purge_interval``,
    ``activity_flush_interval``, ``authorization_details_types_refresh``) turns a job
    off."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._tasks: list[asyncio.Task[None]] = []
        self._webhook: WebhookDeliverer | None = None

    def start(self) -> None:
        ctx, s = self._ctx, self._ctx.settings
        ctx.observer.start(s.metrics_flush_interval)
        if s.purge_interval > 0:
            job = purge_forever(
                ctx.store,
                ctx.clock,
                s.purge_interval,
                s.purge_batch_size,
                s.session_idle_ttl,
                audit_retention=s.audit_retention_days * 86400.0,
            )
            self._tasks.append(asyncio.create_task(job, name="tokensmith-purge"))
        if s.activity_flush_interval > 0:
            flush = ctx.panel.flusher.run(s.activity_flush_interval)
            self._tasks.append(asyncio.create_task(flush, name="tokensmith-activity"))
        if s.authorization_details_types_refresh > 0:
            refresh = refresh_types_forever(
                ctx.details, ctx.store, s.authorization_details_types_refresh
            )
            self._tasks.append(asyncio.create_task(refresh, name="tokensmith-details-types"))
        if s.audit_webhook_url:
            self._webhook = WebhookDeliverer(
                ctx.store,
                ctx.clock,
                ctx.rand,
                url=s.audit_webhook_url,
                secret=s.audit_webhook_secret,
                max_attempts=s.audit_webhook_max_attempts,
                timeout=s.audit_webhook_timeout,
            )
            deliver = self._webhook.run(s.audit_webhook_interval)
            self._tasks.append(asyncio.create_task(deliver, name="tokensmith-audit-webhook"))

    async def stop(self) -> None:
        """End every job, then write the token activity and metrics still in memory."""
        for task in self._tasks:
            await stop_task(task)
        self._tasks.clear()
        if self._webhook is not None:
            await self._webhook.aclose()
            self._webhook = None
        try:
            await self._ctx.panel.flusher.flush()
        except Exception:  # shutting down: logged by the flusher, nothing else to do
            log.warning("token activity could not be written at shutdown")
        await self._ctx.observer.aclose()
