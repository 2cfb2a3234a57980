"""Integration > API > Open API keys: ``client_credentials`` clients of the merchant.

"Add new key" asks for a name and scopes (among ``panel_scopes``) and shows the client id
and secret once (tpay's Merchant Panel works the same way). A key's page rotates the
secret with a chosen overlap and revokes the key.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.admin import AdminError, ClientSpec
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.panel.access import Tenant, not_found, panel_page, panel_render
from tokensmith.web.panel.clients import (
    MAX_NAME,
    OVERLAPS,
    chosen_scopes,
    client_rows,
    confirm_revoke,
    do_revoke,
    do_rotate,
    own_client,
    row_of,
    token_example,
)
from tokensmith.web.panel.reveal import Secret, show_once
from tokensmith.web.panel.services import panel_of

__all__ = ["key_routes"]


@panel_page(platform=True)
async def list_keys(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    rows = await client_rows(request, tenant, "key")
    return await panel_render(
        request, tenant, "panel/keys.html", section="keys", title="Open API keys", rows=rows
    )


async def _key_form(
    request: Request,
    tenant: Tenant,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    allowed = panel_of(request).scopes
    values = values if values is not None else {f"scope_{allowed[0]}": "on"}
    return await panel_render(
        request,
        tenant,
        "panel/key_new.html",
        status,
        section="keys",
        title="Add new key",
        scopes=allowed,
        errors=errors or {},
        values=values,
    )


@panel_page(edit=True)
async def new_key(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await _key_form(request, tenant)


@panel_page(edit=True)
async def create_key(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/keys``: make the key, then show its secret once."""
    name = form.get("name", "").strip()
    scopes = chosen_scopes(form, panel_of(request).scopes)
    errors = {}
    if not name or len(name) > MAX_NAME:
        errors["name"] = f"Give the key a name (1 to {MAX_NAME} characters)."
    if not scopes:
        errors["scopes"] = "Choose at least one scope."
    if errors:
        return await _key_form(request, tenant, 400, errors, form)
    spec = ClientSpec(name=name, scope=" ".join(scopes), merchant_id=tenant.merchant_id)
    try:
        client, secret = await ctx_of(request).client_admin.create(
            spec, by=by_user(request, tenant.user)
        )
    except AdminError as exc:
        return await _key_form(request, tenant, 400, {"name": str(exc)}, form)
    assert secret is not None
    return await show_once(
        request,
        Secret(
            title="Your new API key",
            id_label="Client ID",
            ident=client.client_id,
            secret_label="Client secret",
            secret=secret,
            back=f"/panel/keys/{client.client_id}",
            back_label="I have saved the secret \u2014 continue",
            section="keys",
            example=token_example(request),
        ),
    )


@panel_page(platform=True)
async def show_key(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    client = await own_client(request, tenant, "key")
    if client is None:
        return await not_found(request, tenant)
    return await panel_render(
        request,
        tenant,
        "panel/key_detail.html",
        section="keys",
        title=client.name,
        row=await row_of(request, client),
        overlaps=OVERLAPS,
        endpoints=_endpoints(request),
    )


def _endpoints(request: Request) -> list[tuple[str, str]]:
    """Where this server issues ``client_credentials`` tokens, by dialect."""
    s = ctx_of(request).settings
    found = [("OAuth 2.0 (RFC 6749)", s.issuer_url + "/oauth/token")]
    found += [(f"{name} compatible", s.issuer_url + DIALECT_PATHS[name]) for name in s.compat]
    return found


@panel_page(edit=True, platform=True)
async def rotate_key(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await do_rotate(request, tenant, form, "key")


@panel_page(edit=True, platform=True)
async def confirm_revoke_key(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await confirm_revoke(request, tenant, "key")


@panel_page(edit=True, platform=True)
async def revoke_key(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await do_revoke(request, tenant, "key")


def key_routes() -> list[BaseRoute]:
    return [
        Route("/panel/keys", list_keys, methods=["GET"]),
        Route("/panel/keys", create_key, methods=["POST"]),
        Route("/panel/keys/new", new_key, methods=["GET"]),
        Route("/panel/keys/{client_id}", show_key, methods=["GET"]),
        Route("/panel/keys/{client_id}/rotate", rotate_key, methods=["POST"]),
        Route("/panel/keys/{client_id}/revoke", confirm_revoke_key, methods=["GET"]),
        Route("/panel/keys/{client_id}/revoke", revoke_key, methods=["POST"]),
    ]
