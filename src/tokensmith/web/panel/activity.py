"""Integration > API > Activity: tokens issued per key, and recent failed authentications.

Counts come from the hourly ``token_stats`` rows plus what this instance has counted and
not yet written (so the page is current on a single instance; other instances' counts
appear after their next flush, ``activity_flush_interval`` seconds at most).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.models import Client
from tokensmith.core.panel_models import DAY, HOUR, TokenCount, hour_of
from tokensmith.web.context import ctx_of
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.panel.access import Tenant, not_found, panel_page, panel_render
from tokensmith.web.panel.chart import daily_chart, hourly_chart

__all__ = ["activity_routes"]

#: The token endpoint of each dialect, for the failures table.
ENDPOINTS = DIALECT_PATHS


@dataclass(frozen=True, slots=True)
class KeyActivity:
    client: Client
    issued_24h: int
    issued_7d: int
    refused_24h: int
    last_used: float | None


def _per_key(
    clients: list[Client], counts: list[TokenCount], used: dict[str, float], now: float
) -> list[KeyActivity]:
    day_ago = hour_of(now) - 23 * HOUR
    rows = []
    for client in clients:
        mine = [c for c in counts if c.client_id == client.client_id]
        recent = [c for c in mine if c.hour >= day_ago]
        rows.append(
            KeyActivity(
                client,
                sum(c.issued for c in recent),
                sum(c.issued for c in mine),
                sum(c.refused for c in recent),
                used.get(client.client_id),
            )
        )
    rows.sort(key=lambda r: (-r.issued_7d, r.client.name))
    return rows


@panel_page()
async def activity(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    ctx = ctx_of(request)
    clients = await ctx.client_admin.listing(tenant.merchant_id)
    chosen = request.query_params.get("client_id", "")
    picked = next((c for c in clients if c.client_id == chosen), None)
    if chosen and picked is None:
        return await not_found(request, tenant)
    now = ctx.clock.now()
    ids = [picked.client_id] if picked else [c.client_id for c in clients]
    counts = await ctx.activity.counts(ids, int(now // DAY) * DAY - 6 * DAY)
    names = {c.client_id: c.name for c in clients}
    failures = await ctx.activity.failures(tenant.merchant_id, picked.client_id if picked else None)
    return await panel_render(
        request,
        tenant,
        "panel/activity.html",
        section="activity",
        title="Activity",
        clients=clients,
        picked=picked,
        hourly=hourly_chart(counts, now),
        daily=daily_chart(counts, now),
        per_key=_per_key(
            [picked] if picked else clients, counts, await ctx.activity.last_used(ids), now
        ),
        failures=failures,
        unattributed=await ctx.activity.unattributed(tenant.user),
        names=names,
        endpoints=ENDPOINTS,
    )


def activity_routes() -> list[BaseRoute]:
    return [Route("/panel/activity", activity, methods=["GET"])]
