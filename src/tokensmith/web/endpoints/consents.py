"""The consent resource endpoints (:mod:`tokensmith.core.consent_resources`).

``POST /oauth/consents`` lodges a consent, ``GET`` and ``DELETE /oauth/consents/{id}``
read and revoke one: the partner calls with its own access token from the
``client_credentials`` grant (RFC 6750 §2.1 ``Bearer``, or RFC 9449 §7.1 ``DPoP`` with
a proof), which must carry the scope ``consents``. Refusals are RFC 6750 §3.1: 401
``invalid_token`` with ``WWW-Authenticate``, 403 ``insufficient_scope``; then RFC 6749
§5.2 style JSON: 400 ``invalid_request`` or ``invalid_authorization_details`` (RFC 9396
§5), 404 ``not_found``.

``POST /oauth/consents/consume`` is the resource server's: it authenticates as at
``/oauth/introspect`` (RFC 7662 §2.1), with the same right to see the token (§4), and
reports that the access token it received was used for the consent's one payment.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.admin_api import AdminDenied
from tokensmith.core.audit import By
from tokensmith.core.consent_resources import (
    CONSENTS_SCOPE,
    ConsentNotActive,
    consent_json,
)
from tokensmith.core.errors import InvalidToken, OAuthError
from tokensmith.core.models import Client
from tokensmith.web.context import AppContext, ctx_of, source_address
from tokensmith.web.dialects.oauth import NO_STORE, json_response, render_error
from tokensmith.web.dpop import DPOP_NONCE_HEADER
from tokensmith.web.endpoints.token import MethodNotAllowed
from tokensmith.web.endpoints.tokens_admin import client_caller
from tokensmith.web.forms import read_json_object
from tokensmith.web.own_token import challenge, own_token_principal

__all__ = ["CONSENTS_PATH", "consent", "consents", "consume"]

CONSENTS_PATH = "/oauth/consents"
#: The fields of a lodging request's body.
_FIELDS = frozenset({"authorization_details", "expires_in"})


def _error(code: int, error: str, description: str, current: str | None = None) -> Response:
    """RFC 6749 §5.2 style JSON; a consent that is not active adds its ``status``."""
    body: dict[str, Any] = {"error": error, "error_description": description}
    if current is not None:
        body["status"] = current
    return json_response(body, code, NO_STORE)


def _denied(ctx: AppContext, exc: AdminDenied) -> Response:
    """RFC 6750 §3.1: 401 with ``WWW-Authenticate`` (no error code there without a
    token), 403 ``insufficient_scope``, 400 ``invalid_request``."""
    error = "invalid_token" if exc.error == "missing_token" else exc.error
    status = 400 if error == "invalid_request" else exc.status
    response = _error(status, error, exc.description)
    response.headers["www-authenticate"] = challenge(ctx, exc, "tokensmith")
    if exc.nonce is not None:
        response.headers[DPOP_NONCE_HEADER] = exc.nonce
    return response


async def _partner(ctx: AppContext, request: Request) -> Client:
    """The client whose own token (``client_credentials``) authorizes the request, with
    the scope ``consents``."""
    principal = await own_token_principal(ctx, request)
    if CONSENTS_SCOPE not in principal.scopes:
        raise AdminDenied(403, "insufficient_scope", f"this needs the {CONSENTS_SCOPE} scope")
    client = await ctx.clients.get_client(principal.client_id)
    if client is None or not client.active:  # pragma: no cover - the token check refused it
        raise AdminDenied(401, "invalid_token", "the access token is not active")
    return client


def _by(ctx: AppContext, request: Request, client: Client) -> By:
    return By(f"client:{client.client_id}", source_address(request, ctx.settings.trusted_proxies))


def _method_not_allowed(allowed: str) -> Response:
    response = render_error(MethodNotAllowed(f"use {allowed}"))
    response.headers["allow"] = allowed
    return response


async def consents(request: Request) -> Response:
    """``POST /oauth/consents``: 201 with the consent awaiting authorization, and its
    ``Location``."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    ctx = ctx_of(request)
    try:
        client = await _partner(ctx, request)
    except AdminDenied as exc:
        return _denied(ctx, exc)
    try:
        body = await read_json_object(request, ctx.settings.max_body_bytes)
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            return _error(400, "invalid_request", f"unknown field {unknown[0]!r}")
        lodged = await ctx.consents.lodge(
            client,
            body.get("authorization_details"),
            body.get("expires_in"),
            by=_by(ctx, request, client),
        )
    except OAuthError as exc:
        return render_error(exc)
    headers = NO_STORE | {"location": f"{CONSENTS_PATH}/{lodged.consent_id}"}
    return json_response(consent_json(lodged, ctx.consents.now()), 201, headers)


async def consent(request: Request) -> Response:
    """``GET /oauth/consents/{consent_id}``: the consent with its current status;
    ``DELETE``: the partner revokes it (204). Another client's consent is 404."""
    if request.method not in ("GET", "DELETE"):
        return _method_not_allowed("GET, DELETE")
    ctx = ctx_of(request)
    try:
        client = await _partner(ctx, request)
    except AdminDenied as exc:
        return _denied(ctx, exc)
    consent_id = request.path_params["consent_id"]
    if request.method == "GET":
        found = await ctx.consents.of_client(client.client_id, consent_id)
        if found is None:
            return _error(404, "not_found", "no consent of this app has that id")
        return json_response(consent_json(found, ctx.consents.now()), 200, NO_STORE)
    try:
        revoked = await ctx.consents.cancel(client, consent_id, by=_by(ctx, request, client))
    except ConsentNotActive as exc:
        return _error(409, exc.error, exc.description, current=exc.current)
    if revoked is None:
        return _error(404, "not_found", "no consent of this app has that id")
    return Response(status_code=204, headers=NO_STORE)


async def consume(request: Request) -> Response:
    """``POST /oauth/consents/consume``, form ``token``: the consent of the token moves
    from ``authorized`` to ``consumed`` (of parallel calls one succeeds) and its tokens
    stop working. 400 ``invalid_token`` for a token that is not active, 400
    ``invalid_request`` for one without a single-use consent, 409 ``consent_not_active``
    with the consent's ``status`` when it is no longer ``authorized``."""
    ctx = ctx_of(request)
    try:
        caller, form, source = await client_caller(ctx, request)
        found = await ctx.service.consent_token(form.get("token", ""), caller)
        if found is None:
            return _error(400, "invalid_token", "the token is not an active access token")
        done = await ctx.consents.consume(
            found.consent_id, found.revoked, by=By(f"client:{caller.client_id}", source)
        )
    except InvalidToken as exc:
        return _error(400, exc.error, exc.description)
    except ConsentNotActive as exc:
        return _error(409, exc.error, exc.description, current=exc.current)
    except OAuthError as exc:
        response = render_error(exc)
        if isinstance(exc, MethodNotAllowed):
            response.headers["allow"] = "POST"
        return response
    body = consent_json(done, ctx.consents.now())
    answer = {k: body[k] for k in ("consent_id", "status", "authorization_details", "client_id")}
    return json_response(answer, 200, NO_STORE)
