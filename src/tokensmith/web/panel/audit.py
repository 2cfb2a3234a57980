"""Team > Audit: the audit events (:mod:`tokensmith.core.audit`), filtered and paged, and
exported as CSV or JSON Lines; for operators, the webhook's dead-lettered deliveries.

Operators see every merchant's events (and may narrow them to one); a merchant's admins
see their merchant's; members do not see the page. The export streams every event of the
filter, a page of the table at a time.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tokensmith.core.audit import (
    CSV_COLUMNS,
    AuditCursor,
    AuditQuery,
    csv_line,
    csv_row,
    jsonl_row,
)
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import (
    Tenant,
    id_ok,
    not_found,
    page_error,
    panel_page,
    panel_render,
)
from tokensmith.web.ui import redirect

__all__ = ["audit_routes"]

PAGE = 50
_TYPE = re.compile(r"[a-z_.]{1,64}")
_ACTOR = re.compile(r"[\x21-\x7e]{1,200}")
_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}
_NOT_ALLOWED = "The audit log is for the merchant's admins and the platform's operators."


class _BadFilter(Exception):
    pass


def _query(request: Request, tenant: Tenant) -> AuditQuery:
    """The filter of the page's query string, within what ``tenant`` may see."""
    params = request.query_params
    type_ = params.get("type", "").strip()
    actor = params.get("actor", "").strip()
    if (type_ and not _TYPE.fullmatch(type_)) or (actor and not _ACTOR.fullmatch(actor)):
        raise _BadFilter
    after = params.get("after", "")
    cursor = AuditCursor.decode(after) if after else None
    if after and cursor is None:
        raise _BadFilter
    return AuditQuery(
        merchant_id=_merchant(params.get("merchant", ""), tenant),
        actor=actor or None,
        type=type_ or None,
        after=cursor,
        limit=PAGE,
    )


def _merchant(chosen: str, tenant: Tenant) -> str | None:
    """An operator's pick (``None``: all merchants); anyone else's own merchant."""
    if not tenant.is_operator:
        return tenant.merchant_id
    if not chosen:
        return None
    if not any(m.merchant_id == chosen for m in tenant.merchants):
        raise _BadFilter
    return chosen


def _filters(query: AuditQuery) -> dict[str, str]:
    """The filter as query parameters (the export's and the next page's links)."""
    found = {"merchant": query.merchant_id, "type": query.type, "actor": query.actor}
    return {k: v for k, v in found.items() if v}


async def _guarded(request: Request, tenant: Tenant) -> AuditQuery | Response:
    if not tenant.can_edit:
        return await page_error(request, tenant, 403, "Not allowed", _NOT_ALLOWED)
    try:
        return _query(request, tenant)
    except _BadFilter:
        return await page_error(
            request, tenant, 400, "Bad filter", "Choose a listed merchant, a type and an actor."
        )


@panel_page()
async def audit_page(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``GET /panel/audit``: one page of events, newest first."""
    query = await _guarded(request, tenant)
    if isinstance(query, Response):
        return query
    ctx = ctx_of(request)
    events, more = await ctx.audit.page(query)
    people = await ctx.users.listing(None if tenant.is_operator else tenant.merchant_id)
    merchants = {m.merchant_id: m.name for m in tenant.merchants}
    if tenant.merchant is not None:
        merchants.setdefault(tenant.merchant_id, tenant.merchant.name)
    return await panel_render(
        request,
        tenant,
        "panel/audit.html",
        section="audit",
        title="Audit",
        events=events,
        filters=_filters(query),
        next_after=more.encode() if more else None,
        emails={f"user:{u.user_id}": u.email for u in people},
        merchant_names=merchants,
        chosen_merchant=query.merchant_id or "",
        dead=len(await ctx.audit.dead_letters(1)) if tenant.is_operator else 0,
    )


async def _lines(request: Request, query: AuditQuery, fmt: str) -> AsyncIterator[bytes]:
    if fmt == "csv":
        yield csv_line(CSV_COLUMNS).encode("utf-8")
    async for event in ctx_of(request).audit.stream(query):
        yield (csv_row(event) if fmt == "csv" else jsonl_row(event)).encode("utf-8")


@panel_page()
async def audit_export(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``GET /panel/audit/export?format=csv|jsonl``: every event of the filter."""
    query = await _guarded(request, tenant)
    if isinstance(query, Response):
        return query
    fmt = request.query_params.get("format", "")
    if fmt not in _FORMATS:
        return await page_error(request, tenant, 400, "Bad format", "Export as csv or jsonl.")
    media, ext = _FORMATS[fmt]
    headers = {
        "content-disposition": f'attachment; filename="audit.{ext}"',
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
    }
    return StreamingResponse(_lines(request, query, fmt), media_type=media, headers=headers)


@panel_page()
async def deliveries(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``GET /panel/audit/deliveries``: dead-lettered webhook deliveries (operators)."""
    if not tenant.is_operator:
        return await not_found(request, tenant)
    ctx = ctx_of(request)
    return await panel_render(
        request,
        tenant,
        "panel/audit_deliveries.html",
        section="audit",
        title="Webhook deliveries",
        dead=await ctx.audit.dead_letters(),
        webhook=bool(ctx.settings.audit_webhook_url),
    )


@panel_page(edit=True)
async def retry(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/audit/deliveries/{event_id}/retry``: queue a dead delivery again."""
    event_id = request.path_params["event_id"]
    if not tenant.is_operator or not id_ok(event_id):
        return await not_found(request, tenant)
    if not await ctx_of(request).audit.retry_delivery(event_id, by_user(request, tenant.user)):
        return await not_found(request, tenant)
    return redirect(request, "/panel/audit/deliveries?done=delivery-queued")


def audit_routes() -> list[BaseRoute]:
    return [
        Route("/panel/audit", audit_page, methods=["GET"]),
        Route("/panel/audit/export", audit_export, methods=["GET"]),
        Route("/panel/audit/deliveries", deliveries, methods=["GET"]),
        Route("/panel/audit/deliveries/{event_id}/retry", retry, methods=["POST"]),
    ]
