"""A client calling with this server's own access token (RFC 6750 §2.1 ``Bearer``, RFC 9449
§7.1 ``DPoP``): the admin API (``/admin/v1``) and the consent resource endpoints
(``/oauth/consents``) read the ``Authorization`` header here, and have the token checked
by :class:`~tokensmith.core.admin_api.AdminAccess` (its signature or row, revocation,
the client's state, ``cnf.jkt`` and the DPoP proof)."""

from __future__ import annotations

from starlette.requests import Request

from tokensmith.core.admin_api import AdminDenied, AdminPrincipal
from tokensmith.core.requests import DpopRequest
from tokensmith.web.context import AppContext
from tokensmith.web.dpop import dpop_request

__all__ = ["challenge", "own_token_principal"]


async def own_token_principal(ctx: AppContext, request: Request) -> AdminPrincipal:
    """RFC 6750 §2.1 / RFC 9449 §7.1: one ``Authorization`` header, ``Bearer`` or
    ``DPoP`` and a token; no token at all is 401 without an error code (RFC 6750 §3.1)."""
    values = request.headers.getlist("authorization")
    if not values:
        raise AdminDenied(401, "missing_token", "send an access token (Authorization: Bearer)")
    if len(values) > 1:
        raise AdminDenied(401, "invalid_request", "send one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    kind = {"bearer": "Bearer", "dpop": "DPoP"}.get(scheme.lower())
    if kind is None or not token or len(token) > 8192:
        raise AdminDenied(401, "invalid_token", "use the Bearer or DPoP scheme with a token")
    dpop: DpopRequest | None = dpop_request(request, ctx.settings.issuer_url + request.url.path)
    return await ctx.admin_api.access.authenticate(
        "DPoP" if kind == "DPoP" else "Bearer", token, dpop
    )


def challenge(ctx: AppContext, exc: AdminDenied, realm: str) -> str:
    """RFC 6750 §3 and RFC 9449 §7.1: both schemes, the error on each, the algorithms."""
    algs = " ".join(ctx.settings.dpop_signing_algs)
    error = f', error="{exc.error}", error_description="{_quoted(exc.description)}"'
    if exc.error == "missing_token":  # RFC 6750 §3.1: no error code without a token
        return f'Bearer realm="{realm}", DPoP algs="{algs}"'
    if exc.error == "insufficient_scope":
        return f'Bearer realm="{realm}"{error}'
    return f'Bearer realm="{realm}"{error}, DPoP algs="{algs}"{error}'


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")
