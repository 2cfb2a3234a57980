"""Integration > API > Partner apps: the merchant's ``authorization_code`` clients.

Registering an app makes a confidential client with the ``authorization_code`` and
``refresh_token`` grants (T-Gate's "application account"); its page edits the name, the
redirect URIs (exact match, https or loopback http) and the ``form_uri``, shows the client
id and rotates the secret (shown once, like a key's). Its security settings (require PAR,
RFC 9126 §6; require DPoP, RFC 9449 §5.2; the FAPI 2.0 profile) change through
:meth:`~tokensmith.core.client_admin.ClientAdmin.change`, as ``tokensmith clients update``
does. It registers, replaces or removes the app's public keys (a JWK Set pasted, or its
``jwks_uri``) for ``private_key_jwt`` (RFC 7523 §2.2), checked as ``tokensmith clients
update --jwks`` checks them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tokensmith.core.admin import INHERIT, AdminError, ClientChanges, ClientSpec, check_client_spec
from tokensmith.core.models import AUTHORIZATION_CODE, REFRESH_TOKEN, Client
from tokensmith.core.profile import FAPI2
from tokensmith.core.uris import split_uri
from tokensmith.web.actors import by_user
from tokensmith.web.context import ctx_of
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
)
from tokensmith.web.panel.reveal import Secret, show_once
from tokensmith.web.panel.services import panel_of
from tokensmith.web.ui import redirect

__all__ = ["app_routes"]

MAX_URIS = 10
MAX_URI = 2000
GRANTS = (AUTHORIZATION_CODE, REFRESH_TOKEN)


class FormProblem(ValueError):
    """A field the user must correct: ``field`` and the message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _uris(raw: str) -> tuple[str, ...]:
    found = list(dict.fromkeys(line.strip() for line in raw.splitlines() if line.strip()))
    if not found:
        raise FormProblem("redirect_uris", "Add at least one redirect URI.")
    if len(found) > MAX_URIS or any(len(u) > MAX_URI for u in found):
        raise FormProblem("redirect_uris", f"At most {MAX_URIS} URIs of {MAX_URI} characters.")
    return tuple(found)


def _form_uri(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    parts = split_uri(value)
    if parts is None or len(value) > MAX_URI or not parts.netloc or parts.fragment:
        raise FormProblem("form_uri", "The form URI must be an absolute URL without a fragment.")
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not loopback:
        raise FormProblem("form_uri", "The form URI must use https (http only on loopback).")
    return value


def _spec(form: dict[str, str], scopes: tuple[str, ...], merchant_id: str | None) -> ClientSpec:
    """The app the form describes; raises :class:`FormProblem`."""
    name = form.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        raise FormProblem("name", f"Give the app a name (1 to {MAX_NAME} characters).")
    if not scopes:
        raise FormProblem("scopes", "Choose at least one scope.")
    spec = ClientSpec(
        name=name,
        scope=" ".join(scopes),
        grant_types=GRANTS,
        merchant_id=merchant_id,
        redirect_uris=_uris(form.get("redirect_uris", "")),
        form_uri=_form_uri(form.get("form_uri", "")),
    )
    try:
        check_client_spec(spec, 86400)
    except AdminError as exc:
        raise FormProblem("redirect_uris", str(exc)) from exc
    return spec


@panel_page(platform=True)
async def list_apps(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    rows = await client_rows(request, tenant, "app")
    return await panel_render(
        request, tenant, "panel/apps.html", section="apps", title="Partner apps", rows=rows
    )


async def _new_form(
    request: Request,
    tenant: Tenant,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    allowed = panel_of(request).scopes
    return await panel_render(
        request,
        tenant,
        "panel/app_new.html",
        status,
        section="apps",
        title="Register a partner app",
        scopes=allowed,
        errors=errors or {},
        values=values if values is not None else {f"scope_{allowed[0]}": "on"},
    )


@panel_page(edit=True)
async def new_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await _new_form(request, tenant)


@panel_page(edit=True)
async def create_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    try:
        spec = _spec(form, chosen_scopes(form, panel_of(request).scopes), tenant.merchant_id)
        client, secret = await ctx_of(request).client_admin.create(
            spec, by=by_user(request, tenant.user)
        )
    except (FormProblem, AdminError) as exc:
        field = exc.field if isinstance(exc, FormProblem) else "name"
        return await _new_form(request, tenant, 400, {field: str(exc)}, form)
    assert secret is not None
    return await show_once(
        request,
        Secret(
            title=f"\u201c{client.name}\u201d is registered",
            id_label="Client ID",
            ident=client.client_id,
            secret_label="Client secret",
            secret=secret,
            back=f"/panel/apps/{client.client_id}",
            back_label="I have saved the secret \u2014 continue",
            section="apps",
        ),
    )


def _authorize_example(request: Request, client: Client) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uris[0] if client.redirect_uris else "",
            "scope": " ".join(client.scopes),
            "state": "STATE",
        }
    )
    return f"{ctx_of(request).settings.issuer_url}/oauth/authorize?{query}"


def _registered_keys(client: Client) -> list[dict[str, Any]]:
    """The registered JWK Set's keys, for display (kid, kty, crv, alg)."""
    if client.jwks is None:
        return []
    keys = json.loads(client.jwks).get("keys", [])
    shown = ("kid", "kty", "crv", "alg")
    return [{k: key[k] for k in shown if k in key} for key in keys if isinstance(key, dict)]


async def _app_page(
    request: Request,
    tenant: Tenant,
    client: Client,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    key_errors: dict[str, str] | None = None,
    key_values: dict[str, str] | None = None,
) -> Response:
    return await panel_render(
        request,
        tenant,
        "panel/app_detail.html",
        status,
        section="apps",
        title=client.name,
        row=await row_of(request, client),
        overlaps=OVERLAPS,
        errors=errors or {},
        values=values
        or {
            "name": client.name,
            "redirect_uris": "\n".join(client.redirect_uris),
            "form_uri": client.form_uri or "",
        },
        authorize_url=_authorize_example(request, client),
        token_url=ctx_of(request).settings.issuer_url + "/oauth/token",
        server_fapi2=ctx_of(request).settings.profile == FAPI2,
        fapi2=(client.profile or ctx_of(request).settings.profile) == FAPI2,
        key_errors=key_errors or {},
        key_values=key_values or {},
        registered_keys=_registered_keys(client),
    )


@panel_page(platform=True)
async def show_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    client = await own_client(request, tenant, "app")
    if client is None:
        return await not_found(request, tenant)
    return await _app_page(request, tenant, client)


@panel_page(edit=True, platform=True)
async def update_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/apps/{client_id}``: name, redirect URIs, form URI."""
    client = await own_client(request, tenant, "app")
    if client is None or not client.active:
        return await not_found(request, tenant)
    try:
        spec = _spec(form, client.scopes, client.merchant_id)
    except FormProblem as exc:
        return await _app_page(request, tenant, client, 400, {exc.field: str(exc)}, form)
    changed = client.evolve(
        name=spec.name, redirect_uris=spec.redirect_uris, form_uri=spec.form_uri
    )
    await ctx_of(request).client_admin.update(changed, by=by_user(request, tenant.user))
    return redirect(request, f"/panel/apps/{client.client_id}?done=app-saved")


@panel_page(edit=True)
async def update_security(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/apps/{client_id}/security``: require PAR, require DPoP, FAPI 2.0.
    Under the server's FAPI 2.0 profile the app's profile is not the merchant's to change."""
    client = await own_client(request, tenant, "app")
    if client is None or not client.active:
        return await not_found(request, tenant)
    ctx = ctx_of(request)
    profile = None
    if ctx.settings.profile != FAPI2:
        profile = FAPI2 if form.get("fapi2") == "on" else INHERIT
    changes = ClientChanges(
        require_par=form.get("require_par") == "on",
        require_dpop=form.get("require_dpop") == "on",
        profile=profile,
    )
    try:
        await ctx.client_admin.change(client.client_id, changes)
    except AdminError as exc:
        return await _app_page(request, tenant, client, 400, {"security": str(exc)})
    return redirect(request, f"/panel/apps/{client.client_id}?done=security-saved")


@panel_page(edit=True)
async def set_app_keys(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    """``POST /panel/apps/{client_id}/keys``: register or replace the app's public keys (a
    pasted JWK Set or a ``jwks_uri``), or remove them (``clear``)."""
    client = await own_client(request, tenant, "app")
    if client is None or not client.active:
        return await not_found(request, tenant)
    jwks = form.get("jwks", "").strip() or None
    jwks_uri = form.get("jwks_uri", "").strip() or None
    clear = form.get("clear") == "1"
    field = "jwks_uri" if jwks_uri is not None else "jwks"
    try:
        if not clear and jwks is None and jwks_uri is None:
            raise AdminError("Paste the app's JWK Set or give the URL where it is published.")
        if clear and (jwks is not None or jwks_uri is not None):
            raise AdminError("Remove the keys, or register new ones: not both at once.")
        await ctx_of(request).client_admin.set_keys(client.client_id, jwks=jwks, jwks_uri=jwks_uri)
    except AdminError as exc:
        values = {"jwks": jwks or "", "jwks_uri": jwks_uri or ""}
        return await _app_page(
            request, tenant, client, 400, key_errors={field: str(exc)}, key_values=values
        )
    done = "app-keys-cleared" if clear else "app-keys-saved"
    return redirect(request, f"/panel/apps/{client.client_id}?done={done}")


@panel_page(edit=True, platform=True)
async def rotate_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await do_rotate(request, tenant, form, "app")


@panel_page(edit=True, platform=True)
async def confirm_revoke_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await confirm_revoke(request, tenant, "app")


@panel_page(edit=True, platform=True)
async def revoke_app(request: Request, tenant: Tenant, form: dict[str, str]) -> Response:
    return await do_revoke(request, tenant, "app")


def app_routes() -> list[BaseRoute]:
    return [
        Route("/panel/apps", list_apps, methods=["GET"]),
        Route("/panel/apps", create_app, methods=["POST"]),
        Route("/panel/apps/new", new_app, methods=["GET"]),
        Route("/panel/apps/{client_id}", show_app, methods=["GET"]),
        Route("/panel/apps/{client_id}", update_app, methods=["POST"]),
        Route("/panel/apps/{client_id}/security", update_security, methods=["POST"]),
        Route("/panel/apps/{client_id}/rotate", rotate_app, methods=["POST"]),
        Route("/panel/apps/{client_id}/keys", set_app_keys, methods=["POST"]),
        Route("/panel/apps/{client_id}/revoke", confirm_revoke_app, methods=["GET"]),
        Route("/panel/apps/{client_id}/revoke", revoke_app, methods=["POST"]),
    ]
