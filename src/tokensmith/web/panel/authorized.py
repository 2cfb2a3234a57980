"""Integration > API > Authorized apps: partner apps this merchant's users approved.

An app appears if a user of the merchant remembered a consent to it, or if one of the
merchant's token families (an authorization code redeemed, RFC 6749 §4.1.3) for it is
still live. Withdrawing access forgets every such consent and revokes every family, with
their refresh and access tokens (RFC 7009 §2.1 semantics), for all the merchant's users.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.authorizations import AuthorizedApp
from tokensmith.core.models import Grantor
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.panel.access import Tenant, id_ok, not_found, panel_page, panel_render
from tokensmith.web.ui import redirect

__all__ = ["authorized_routes"]


async def _authorized(request: Request, tenant: Tenant) -> dict[str, AuthorizedApp]:
    return await ctx_of(request).authorizations.of_merchant(tenant.merchant_id)


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
    """Forget the consents and revoke the families of every user of the merchant; 404 if
    the merchant authorized nothing of the app."""
    client_id = request.path_params["client_id"]
    grantor = Grantor(merchant_id=tenant.merchant_id)
    withdrawn = id_ok(client_id) and await ctx_of(request).authorizations.withdraw(
        grantor, client_id, by=by_user(request, tenant.user)
    )
    if not withdrawn:
        return await not_found(request, tenant)
    return redirect(request, "/panel/authorized?done=access-revoked")


def authorized_routes() -> list[BaseRoute]:
    return [
        Route("/panel/authorized", list_authorized, methods=["GET"]),
        Route("/panel/authorized/{client_id}/revoke", confirm_withdraw, methods=["GET"]),
        Route("/panel/authorized/{client_id}/revoke", withdraw, methods=["POST"]),
    ]
