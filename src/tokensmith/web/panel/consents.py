"""Integration > API > Consents: the consent resources this merchant's users authorized
(or rejected), lodged by partner apps at ``/oauth/consents``
(:mod:`tokensmith.core.consent_resources`); an operator sees every merchant's. Each shows
its status as it reads now, the app, what it is for in a line, and when it was lodged
and authorized; Revoke ends an awaiting or authorized consent and revokes its tokens
(its token family, RFC 7009 §2.1 semantics).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.consent_resources import (
    AUTHORIZED,
    AWAITING,
    STATUSES,
    ConsentNotActive,
    summary,
)
from tokensmith.core.models import ConsentResource
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, not_found, page_error, panel_page, panel_render
from tokensmith.web.ui import redirect

__all__ = ["consent_routes"]


@dataclass(frozen=True, slots=True)
class ConsentRow:
    consent: ConsentResource
    status: str
    app_name: str
    summary: str

    @property
    def revocable(self) -> bool:
        return self.status in (AWAITING, AUTHORIZED)


def _scope(tenant: Tenant) -> str | None:
    """Whose consents the page shows: the merchant's users', or every one for an operator."""
    return None if tenant.is_operator else tenant.merchant_id


async def _row(request: Request, consent: ConsentResource, names: dict[str, str]) -> ConsentRow:
    ctx = ctx_of(request)
    if consent.client_id not in names:
        client = await ctx.clients.get_client(consent.client_id)
        names[consent.client_id] = client.name if client else consent.client_id
    return ConsentRow(
        consent,
        consent.status_at(ctx.clock.now()),
        names[consent.client_id],
        summary(consent.authorization_details),
    )


@panel_page(platform=True)
async def list_consents(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    chosen = request.query_params.get("status", "")
    status = chosen if chosen in STATUSES else None
    found = await ctx_of(request).consents.listing(merchant_id=_scope(tenant), status=status)
    names: dict[str, str] = {}
    rows = [await _row(request, c, names) for c in found]
    return await panel_render(
        request,
        tenant,
        "panel/consents.html",
        section="consents",
        title="Consents",
        rows=rows,
        statuses=STATUSES,
        chosen=status or "",
    )


async def _reachable(request: Request, tenant: Tenant) -> ConsentResource | None:
    consent = await ctx_of(request).consents.get(request.path_params["consent_id"])
    if consent is None or (_scope(tenant) not in (None, consent.merchant_id)):
        return None
    return consent


@panel_page(edit=True, platform=True)
async def confirm_revoke(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    consent = await _reachable(request, tenant)
    if consent is None:
        return await not_found(request, tenant)
    row = await _row(request, consent, {})
    return await panel_render(
        request,
        tenant,
        "panel/confirm.html",
        section="consents",
        title=f"Revoke the consent given to \u201c{row.app_name}\u201d?",
        consequence=f"{row.summary}. The app\u2019s tokens for it stop working within "
        "seconds, and it must lodge a new consent to ask again.",
        action=f"/panel/consents/{consent.consent_id}/revoke",
        button="Revoke consent",
        cancel="/panel/consents",
        subject=consent.consent_id,
    )


@panel_page(edit=True, platform=True)
async def revoke(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """Revoke the consent and its tokens; 404 for another merchant's consent."""
    consent = await _reachable(request, tenant)
    if consent is None:
        return await not_found(request, tenant)
    try:
        await ctx_of(request).consents.revoke(consent.consent_id, by=by_user(request, tenant.user))
    except ConsentNotActive as exc:
        return await page_error(request, tenant, 409, "Already ended", exc.description)
    return redirect(request, "/panel/consents?done=consent-revoked")


def consent_routes() -> list[BaseRoute]:
    return [
        Route("/panel/consents", list_consents, methods=["GET"]),
        Route("/panel/consents/{consent_id}/revoke", confirm_revoke, methods=["GET"]),
        Route("/panel/consents/{consent_id}/revoke", revoke, methods=["POST"]),
    ]
