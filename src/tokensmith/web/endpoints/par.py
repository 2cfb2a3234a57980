"""RFC 9126 pushed authorization request endpoint, ``POST /oauth/par``.

Client authentication, form reading and errors are the token endpoint's (RFC 9126 §2,
§2.3): RFC 6749 §5.2 JSON, 401 ``invalid_client`` with ``WWW-Authenticate`` after a Basic
login, 405 for another method, 413 for a body over ``max_body_bytes``, 429 when the
failure limits are reached. Success is 201 with ``request_uri`` and ``expires_in``
(§2.2), never cached. The rules are :mod:`tokensmith.core.par`'s.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.errors import OAuthError
from tokensmith.web.context import ctx_of, source_address
from tokensmith.web.dialects.oauth import NO_STORE, json_response, render_error
from tokensmith.web.dpop import DPOP_NONCE_HEADER, dpop_request
from tokensmith.web.endpoints.token import MethodNotAllowed
from tokensmith.web.forms import client_credentials_from, read_form
from tokensmith.web.mtls import with_certificate

__all__ = ["push"]


async def push(request: Request) -> Response:
    """RFC 9126 §2.1-§2.3; a DPoP proof binds the code to its key (RFC 9449 §10.1)."""
    ctx = ctx_of(request)
    dpop = None
    try:
        if request.method != "POST":
            raise MethodNotAllowed("use POST")
        form = await read_form(request, ctx.settings.max_body_bytes)
        endpoint = ctx.settings.issuer_url + request.url.path
        creds = client_credentials_from(request.headers.get("authorization"), form, endpoint)
        creds = with_certificate(creds, request, ctx.settings)
        source = source_address(request, ctx.settings.trusted_proxies)
        dpop = dpop_request(request, endpoint)  # RFC 9449 §10.1
        pushed = await ctx.par.push(form, creds, source, dpop)
    except OAuthError as exc:
        ctx.observer.endpoint_refused("par", exc.reason)
        response = render_error(exc)
        if isinstance(exc, MethodNotAllowed):
            response.headers["allow"] = "POST"
        return response
    ctx.observer.pushed()
    body = {"request_uri": pushed.request_uri, "expires_in": pushed.expires_in}
    nonce = ctx.service.dpop.nonce if dpop is not None and ctx.service.dpop else None
    headers = NO_STORE | {DPOP_NONCE_HEADER: nonce} if nonce else NO_STORE
    return json_response(body, 201, headers)
