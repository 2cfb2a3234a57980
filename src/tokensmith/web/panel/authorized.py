"""Integration > API > Authorized apps: partner apps this merchant's users approved.

An app appears if a user of the merchant remembered a consent to it, or if one of the
merchant's token families (an authorization code redeemed, RFC 6749 §4.1.3) for it is
still live. Withdrawing access forgets every such consent and revokes every family, with
their refresh and access tokens (RFC 7009 §2.1 semantics), for all the merchant's users.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.authorize import describe_scope
from tokensmith.core.scopes import parse_scope
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, not_found, panel_page, panel_render
from tokensmith.web.ui import redirect

__all__ = ["authorized_routes"]


@dataclass(slots=True)
class Authorized:
    client_id: str
    name: str = ""
    scopes: dict[str, str] = field(default_factory=dict)
    first_at: float = 0.0
    last_at: float = 0.0
    users: set[str] = field(default_factory=set)
    remembered: bool = False
    live_grants: int = 0

    def add(self, scope: str, at: float, email: str) -> None:
        for s in parse_scope(scope):
            self.scopes[s] = describe_scope(s)
        self.first_at = min(self.first_at or at, at)
        self.last_at = max(self.last_at, at)
        self.users.add(email)


async def _authorized(request: Request, tenant: Tenant) -> dict[str, Authorized]:
    ctx = ctx_of(request)
    store = ctx.store
    users = {u.user_id: u for u in await store.list_users(tenant.merchant_id)}
    found: dict[str, Authorized] = {}
    for user in users.values():
        for consent in await store.list_consents(user.user_id):
            row = found.setdefault(consent.client_id, Authorized(consent.client_id))
            row.add(consent.scope, consent.granted_at, user.email)
            row.remembered = True
    now = ctx.clock.now()
    for family in await store.merchant_families(tenant.merchant_id):
        if not family.live_at(now):
            continue
        row = found.setdefault(family.client_id, Authorized(family.client_id))
        who = users.get(family.user_id)
        row.add(family.scope, family.created_at, who.email if who else family.user_id)
        row.live_grants += 1
    for row in found.values():
        client = await ctx.store.get_client(row.client_id)
        row.name = client.name if client else row.client_id
    return found


@panel_page()
async def list_authorized(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    rows = sorted((await _authorized(request, tenant)).values(), key=lambda r: -r.last_at)
    return await panel_render(
        request,
        tenant,
        "panel/authorized.html",
        section="authorized",
        title="Authorized apps",
        rows=rows,
    )


@panel_page(edit=True)
async def confirm_withdraw(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    row = (await _authorized(request, tenant)).get(request.path_params["client_id"])
    if row is None:
        return await not_found(request, tenant)
    return await panel_render(
        request,
        tenant,
        "panel/confirm.html",
        section="authorized",
        title=f"Withdraw access of \u201c{row.name}\u201d?",
        consequence="The app\u2019s refresh tokens and access tokens for this merchant stop "
        "working within seconds, and it must ask for approval again to get new ones.",
        action=f"/panel/authorized/{row.client_id}/revoke",
        button="Withdraw access",
        cancel="/panel/authorized",
        subject=row.client_id,
    )


@panel_page(edit=True)
async def withdraw(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """Forget the consents and revoke the families of every user of the merchant."""
    ctx = ctx_of(request)
    client_id = request.path_params["client_id"]
    if client_id not in await _authorized(request, tenant):
        return await not_found(request, tenant)
    now = ctx.clock.now()
    for user in await ctx.store.list_users(tenant.merchant_id):
        await ctx.store.delete_consent(user.user_id, client_id)
        await ctx.store.revoke_families(user.user_id, client_id, now)
    for family in await ctx.store.merchant_families(tenant.merchant_id):
        if family.client_id == client_id:
            await ctx.store.revoke_family(family.family_id, now)
    return redirect(request, "/panel/authorized?done=access-revoked")


def authorized_routes() -> list[BaseRoute]:
    return [
        Route("/panel/authorized", list_authorized, methods=["GET"]),
        Route("/panel/authorized/{client_id}/revoke", confirm_withdraw, methods=["GET"]),
        Route("/panel/authorized/{client_id}/revoke", withdraw, methods=["POST"]),
    ]
