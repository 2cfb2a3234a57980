"""Dynamic client registration (RFC 7591 §3), ``POST /oauth/register``, and client
registration management (RFC 7592 §2), ``GET``/``PUT``/``DELETE /oauth/register/{id}``.

The routes exist only when ``registration`` is not ``off``. Bodies are JSON objects of at
most ``registration_max_body_bytes`` (413 beyond); errors are RFC 7591 §3.2.2 JSON
(``invalid_redirect_uri``, ``invalid_client_metadata``, ``invalid_software_statement``,
``unapproved_software_statement``, 400), a missing or wrong initial or registration
access token 401 ``invalid_token`` with ``WWW-Authenticate: Bearer`` (RFC 6750 §3), too
many requests from one address 429. Every answer is ``no-store``. The rules are
:mod:`tokensmith.core.registration`'s.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import InvalidToken, OAuthError
from tokensmith.core.registration import (
    InvalidClientMetadata,
    Registration,
    client_metadata,
)
from tokensmith.web.context import AppContext, ctx_of, source_address
from tokensmith.web.dialects.oauth import NO_STORE, json_response, render_error
from tokensmith.web.endpoints.token import MethodNotAllowed
from tokensmith.web.forms import read_json_object

__all__ = ["REGISTER_PATH", "manage", "register"]

REGISTER_PATH = "/oauth/register"


def _bearer(request: Request) -> str | None:
    """The Bearer token of the ``Authorization`` header (RFC 6750 §2.1); ``None`` without
    the header, ``""`` (refused) for another scheme."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(exc: OAuthError, allow: str) -> Response:
    response = render_error(exc)
    if isinstance(exc, MethodNotAllowed):
        response.headers["allow"] = allow
    if isinstance(exc, InvalidToken):
        response.headers["www-authenticate"] = 'Bearer error="invalid_token"'
    return response


def _body(ctx: AppContext, registration: Registration) -> dict[str, Any]:
    body = client_metadata(registration.client, ctx.settings.issuer_url + REGISTER_PATH)
    if registration.client_secret is not None:
        body["client_secret"] = registration.client_secret
    if registration.access_token is not None:
        body["registration_access_token"] = registration.access_token
    return body


async def _json(request: Request, ctx: AppContext) -> dict[str, Any]:
    limit = ctx.settings.registration_max_body_bytes
    return await read_json_object(request, limit, InvalidClientMetadata)


async def register(request: Request) -> Response:
    """RFC 7591 §3.1: 201 with the client's metadata, secret and registration access token."""
    ctx = ctx_of(request)
    try:
        if request.method != "POST":
            raise MethodNotAllowed("use POST")
        source = source_address(request, ctx.settings.trusted_proxies)
        bearer = _bearer(request)
        body = await _json(request, ctx)
        registration = await ctx.registrations.register(body, bearer, source)
    except OAuthError as exc:
        return _error(exc, "POST")
    return json_response(_body(ctx, registration), 201, NO_STORE)


async def manage(request: Request) -> Response:
    """RFC 7592 §2.1 read (200), §2.2 update (200, a new registration access token), §2.3
    delete (204)."""
    ctx = ctx_of(request)
    client_id = request.path_params["client_id"]
    bearer = _bearer(request)
    source = source_address(request, ctx.settings.trusted_proxies)
    try:
        if len(client_id) > 64:
            raise InvalidToken("the registration access token is not valid for this client")
        if request.method == "GET":
            registration = await ctx.registrations.read(client_id, bearer)
        elif request.method == "PUT":
            body = await _json(request, ctx)
            registration = await ctx.registrations.update(client_id, bearer, body, source)
        elif request.method == "DELETE":
            await ctx.registrations.delete(client_id, bearer, source)
            return Response(status_code=204, headers=NO_STORE)
        else:
            raise MethodNotAllowed("use GET, PUT or DELETE")
    except OAuthError as exc:
        return _error(exc, "GET, PUT, DELETE")
    return json_response(_body(ctx, registration), 200, NO_STORE)
