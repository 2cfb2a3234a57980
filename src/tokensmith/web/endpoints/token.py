"""Token endpoints: RFC 6749 §3.2 ``/oauth/token`` and the seed dialects' paths.

A ``DPoP`` header (RFC 9449 §5) is handed to the core with the URI its proof must name:
this endpoint's path at the issuer URL, whatever host the request came in on."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.core.credentials import hash_secret
from tokensmith.core.errors import InvalidRequest, OAuthError, UnsupportedGrantType
from tokensmith.core.requests import TokenRequest
from tokensmith.web.context import AppContext, ctx_of, source_address
from tokensmith.web.dialects import Dialect
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.dialects.oauth import NO_STORE, json_response
from tokensmith.web.dialects.problem import ApiKeyRejected
from tokensmith.web.dpop import DPOP_NONCE_HEADER, dpop_request
from tokensmith.web.forms import client_credentials_from, read_form
from tokensmith.web.mtls import with_certificate

__all__ = ["MethodNotAllowed", "TokenEndpoint"]


class MethodNotAllowed(OAuthError):
    """HTTP 405: token endpoints take POST only (RFC 6749 §3.2)."""

    error = "invalid_request"
    status = 405


class TokenEndpoint:
    """One token endpoint in one dialect."""

    def __init__(self, dialect: str, require_apikey: bool = False) -> None:
        self.dialect_name = dialect
        self.require_apikey = require_apikey

    async def handle(self, request: Request) -> Response:
        ctx = ctx_of(request)
        dialect = ctx.dialects[self.dialect_name]
        source = source_address(request, ctx.settings.trusted_proxies)
        grant, client_id, dpop = dialect.implicit_grant or "", None, None
        try:
            if request.method != "POST":
                raise MethodNotAllowed("use POST")
            if self.require_apikey:
                await _check_apikey(ctx, request)
            form = await read_form(request, ctx.settings.max_body_bytes)
            grant = _grant_type(form, dialect)
            # the URL assertions and proofs name: this endpoint at the issuer
            url = ctx.settings.issuer_url + DIALECT_PATHS[dialect.name]
            creds = client_credentials_from(request.headers.get("authorization"), form, url)
            creds = with_certificate(creds, request, ctx.settings)
            client_id = creds.client_id if creds else None
            dpop = dpop_request(request, url)
            _, issued = await ctx.service.token(
                TokenRequest(grant, form, creds, source, dpop), dialect.policy
            )
        except OAuthError as exc:
            label = _grant_label(grant, ctx)
            known = _known(ctx, exc, client_id)
            ctx.observer.refused(dialect.name, label, exc.reason, client_id, source, known=known)
            response = dialect.render_error(exc)
            if isinstance(exc, MethodNotAllowed):
                response.headers["allow"] = "POST"
            return response
        ctx.observer.issued(
            dialect.name,
            grant,
            issued.client_id,
            issued.scope,
            source,
            issued.jti,
            token_format=issued.token_format,
            binding=issued.binding,
            refresh=issued.refresh_token is not None,
        )
        headers = NO_STORE
        nonce = ctx.service.dpop.nonce if dpop is not None and ctx.service.dpop else None
        if nonce:  # RFC 9449 §8.2: the nonce the client's next proof must carry
            headers = NO_STORE | {DPOP_NONCE_HEADER: nonce}
        return json_response(dialect.render_token(issued), 200, headers)


def _known(ctx: AppContext, exc: OAuthError, client_id: str | None) -> bool:
    """Whether the presented client_id is a client's: the refusal says so once the client
    was looked up; before (throttled, a bad apikey or grant type), the client cache may
    know it. Otherwise it is written as a fingerprint."""
    if exc.client_id is not None:
        return True
    return client_id is not None and ctx.clients.cached(client_id) is not None


def _grant_label(grant: str, ctx: AppContext) -> str:
    """The grant for metrics and audit: a registered one, else ``other``, so a client
    cannot grow the metric label set with made-up grant types."""
    return grant if not grant or grant in ctx.service.grants else "other"


def _grant_type(form: dict[str, str], dialect: Dialect) -> str:
    grant = form.get("grant_type") or dialect.implicit_grant
    if not grant:
        raise InvalidRequest("grant_type is required")
    if dialect.grants is not None and grant not in dialect.grants:
        raise UnsupportedGrantType(f"grant_type {grant!r} is not supported here")
    return grant


async def _check_apikey(ctx: AppContext, request: Request) -> None:
    """The TBC document's ``apikey`` header: a live developer app key (read through
    ``ctx.api_keys``, so a warm key costs no database round trip)."""
    presented = request.headers.get("apikey")
    if not presented:
        raise ApiKeyRejected("the apikey header is required", reason="missing_apikey")
    key = await ctx.api_keys.get(hash_secret(presented))
    if key is None or key.revoked_at is not None:
        raise ApiKeyRejected("the apikey is not valid", reason="invalid_apikey")
