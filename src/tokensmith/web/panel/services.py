"""What the panel needs at run time, built once per app by :func:`install_panel`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.requests import Request

from tokensmith.core.activity import ActivityFlusher, ActivityRecorder, RetentionPolicy
from tokensmith.core.panel_models import DAY
from tokensmith.core.passwords import Passwords
from tokensmith.web.context import AppContext, ctx_of
from tokensmith.web.panel.format import install_filters
from tokensmith.web.tasks import stop_task

__all__ = ["PanelServices", "install_panel", "panel_of", "start_activity", "stop_activity"]

log = logging.getLogger("tokensmith.panel")

#: Seconds a secret waits to be shown once after it was made.
REVEAL_TTL = 600


@dataclass(slots=True)
class PanelServices:
    recorder: ActivityRecorder
    flusher: ActivityFlusher
    passwords: Passwords
    #: Scopes a merchant may give its keys and apps (setting ``panel_scopes``).
    scopes: tuple[str, ...]
    reveal_ttl: int = REVEAL_TTL


def install_panel(ctx: AppContext, passwords: Passwords | None = None) -> PanelServices:
    """Count token activity per client (memory only) and keep the panel's services."""
    s = ctx.settings
    recorder = ActivityRecorder(ctx.clock)
    ctx.observer.recorder = recorder
    retention = RetentionPolicy(
        stats=s.activity_retention_days * DAY,
        failures=s.auth_failure_retention,
        max_failures=s.auth_failure_max_rows,
    )
    flusher = ActivityFlusher(recorder, ctx.store, ctx.clients, ctx.clock, retention)
    services = PanelServices(recorder, flusher, passwords or Passwords(), s.panel_scopes)
    ctx.extras["panel"] = services
    if ctx.ui is not None:
        install_filters(ctx.ui.templates)
    return services


def panel_of(request: Request) -> PanelServices:
    return services_of(ctx_of(request))


def services_of(ctx: AppContext) -> PanelServices:
    found = ctx.extras.get("panel")
    assert isinstance(found, PanelServices), "build_context calls install_panel"
    return found


def start_activity(ctx: AppContext) -> asyncio.Task[None] | None:
    """The background flush of token activity, unless ``activity_flush_interval`` is 0."""
    interval = ctx.settings.activity_flush_interval
    if interval <= 0:
        return None
    job = services_of(ctx).flusher.run(interval)
    return asyncio.create_task(job, name="tokensmith-activity")


async def stop_activity(ctx: AppContext, task: asyncio.Task[None] | None) -> None:
    """Stop the background flush and write what is left."""
    await stop_task(task)
    try:
        await services_of(ctx).flusher.flush()
    except Exception:  # shutting down: logged by the flusher, nothing else to do
        log.warning("token activity could not be written at shutdown")
