"""RFC 7662 introspection and RFC 7009 revocation."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import OAuthError
from tokensmith.core.models import Client
from tokensmith.web.context import AppContext, ctx_of, source_address
from tokensmith.web.dialects.oauth import NO_STORE, json_response, render_error
from tokensmith.web.endpoints.token import MethodNotAllowed
from tokensmith.web.forms import client_credentials_from, read_form
from tokensmith.web.mtls import with_certificate

__all__ = ["client_caller", "introspect", "revoke"]


async def client_caller(ctx: AppContext, request: Request) -> tuple[Client, dict[str, str], str]:
    if request.method != "POST":
        raise MethodNotAllowed("use POST")
    form = await read_form(request, ctx.settings.max_body_bytes)
    endpoint = ctx.settings.issuer_url + request.url.path
    creds = client_credentials_from(request.headers.get("authorization"), form, endpoint)
    creds = with_certificate(creds, request, ctx.settings)
    source = source_address(request, ctx.settings.trusted_proxies)
    return await ctx.service.authenticator.authenticate(creds, source), form, source


async def introspect(request: Request) -> Response:
    """RFC 7662 §2: the caller authenticates as a client."""
    ctx = ctx_of(request)
    try:
        caller, form, _ = await client_caller(ctx, request)
        body = await ctx.service.introspect(form.get("token", ""), caller)
    except OAuthError as exc:
        ctx.observer.endpoint_refused("introspect", exc.reason)
        return render_error(exc)
    ctx.observer.introspected(body.get("active") is True)
    return json_response(body, 200, NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009 §2: 200 with an empty body once the token is revoked or was unknown."""
    ctx = ctx_of(request)
    try:
        caller, form, source = await client_caller(ctx, request)
        await ctx.service.revoke(form.get("token", ""), caller, source)
    except OAuthError as exc:
        ctx.observer.endpoint_refused("revoke", exc.reason)
        return render_error(exc)
    ctx.observer.revoked()
    return Response(b"", 200, NO_STORE)
