"""Integration > API > Developer app keys: the ``apikey`` header of the ``tbc`` dialect.

Made and revoked by :class:`~tokensmith.core.client_admin.ApiKeys` (``ctx.api_key_admin``:
the value is shown once and stored as a SHA-256 hash); the token endpoint finds keys
through ``ctx.api_keys``, which the service invalidates, so a revocation takes effect at
once on the worker that made it, and within ``client_cache_ttl`` on every worker of every
instance.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.admin import AdminError
from tokensmith.core.models import ApiKey
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.panel.access import Tenant, id_ok, not_found, panel_page, panel_render
from tokensmith.web.panel.clients import MAX_NAME
from tokensmith.web.panel.reveal import Secret, show_once
from tokensmith.web.ui import redirect

__all__ = ["devkey_routes"]


async def _own_key(request: Request, tenant: Tenant) -> ApiKey | None:
    key_id = request.path_params["key_id"]
    if not id_ok(key_id):
        return None
    return await ctx_of(request).api_key_admin.owned(tenant.merchant_id, key_id)


@panel_page()
async def list_devkeys(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    keys = await ctx_of(request).api_key_admin.listing(tenant.merchant_id)
    keys.sort(key=lambda k: (k.revoked_at is not None, -k.created_at))
    return await panel_render(
        request,
        tenant,
        "panel/devkeys.html",
        section="devkeys",
        title="Developer app keys",
        keys=keys,
        tbc_enabled="tbc" in ctx_of(request).settings.compat,
    )


async def _form(
    request: Request, tenant: Tenant, status: int = 200, error: str = "", name: str = ""
) -> Response:
    return await panel_render(
        request,
        tenant,
        "panel/devkey_new.html",
        status,
        section="devkeys",
        title="Add developer app key",
        error=error,
        name=name,
    )


@panel_page(edit=True)
async def new_devkey(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await _form(request, tenant)


@panel_page(edit=True)
async def create_devkey(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    ctx = ctx_of(request)
    name = form.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        error = f"Give the key a name (1 to {MAX_NAME} characters)."
        return await _form(request, tenant, 400, error, name[:MAX_NAME])
    try:
        key, plain = await ctx.api_key_admin.create(
            name, tenant.merchant_id, by=by_user(request, tenant.user)
        )
    except AdminError as exc:
        return await _form(request, tenant, 400, str(exc), name)
    path = DIALECT_PATHS["tbc"]
    example = (
        f'curl -H "apikey: $APIKEY" -d client_id=$CLIENT_ID -d client_secret=$CLIENT_SECRET '
        f"{ctx.settings.issuer_url}{path}"
    )
    return await show_once(
        request,
        Secret(
            title="Your new developer app key",
            id_label="Key ID",
            ident=key.key_id,
            secret_label="apikey",
            secret=plain,
            back="/panel/devkeys",
            back_label="I have saved the key \u2014 continue",
            section="devkeys",
            example=example,
        ),
    )


@panel_page(edit=True)
async def confirm_revoke_devkey(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    key = await _own_key(request, tenant)
    if key is None or key.revoked_at is not None:
        return await not_found(request, tenant)
    return await panel_render(
        request,
        tenant,
        "panel/confirm.html",
        section="devkeys",
        title=f"Revoke \u201c{key.name}\u201d?",
        consequence="Token requests sending this apikey header are refused within seconds. "
        "This cannot be undone.",
        action=f"/panel/devkeys/{key.key_id}/revoke",
        button="Revoke key",
        cancel="/panel/devkeys",
        subject=key.key_id,
    )


@panel_page(edit=True)
async def revoke_devkey(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    key = await _own_key(request, tenant)
    if key is None:
        return await not_found(request, tenant)
    await ctx_of(request).api_key_admin.revoke(key.key_id, by=by_user(request, tenant.user))
    return redirect(request, "/panel/devkeys?done=devkey-revoked")


def devkey_routes() -> list[BaseRoute]:
    return [
        Route("/panel/devkeys", list_devkeys, methods=["GET"]),
        Route("/panel/devkeys", create_devkey, methods=["POST"]),
        Route("/panel/devkeys/new", new_devkey, methods=["GET"]),
        Route("/panel/devkeys/{key_id}/revoke", confirm_revoke_devkey, methods=["GET"]),
        Route("/panel/devkeys/{key_id}/revoke", revoke_devkey, methods=["POST"]),
    ]
