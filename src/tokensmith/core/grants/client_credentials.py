"""RFC 6749 §4.4: the client credentials grant."""

from __future__ import annotations

from tokensmith.core.errors import UnauthorizedClient
from tokensmith.core.grants import GrantContext
from tokensmith.core.models import Client, IssuedToken
from tokensmith.core.requests import TokenRequest
from tokensmith.core.resources import RESOURCE, token_target
from tokensmith.core.scopes import resolve_scope

__all__ = ["client_credentials"]


async def client_credentials(ctx: GrantContext, req: TokenRequest, client: Client) -> IssuedToken:
    """§4.4.2: only confidential clients; §4.4.3: no refresh token is issued. RFC 9396
    §6.1: ``authorization_details`` of the types the client may use go into the token.
    With ``resource`` (RFC 8707 §2), a token for those resources, of their scopes."""
    if client.public:
        raise UnauthorizedClient("public clients cannot use client_credentials")
    requested = req.params.get("scope")
    scopes = resolve_scope(requested, client.scopes, client.granted_default_scopes())
    target = None
    if RESOURCE in req.params:  # the common case costs this lookup only
        target = await token_target(ctx.resources, req.params)
        explicit = requested is not None and bool(requested.strip(" "))
        scopes = target.narrow(scopes, explicit=explicit) if target else scopes
    raw = req.params.get("authorization_details")
    details = None if raw is None else ctx.details.parse(raw, client.authorization_details_types)
    return await ctx.minter.mint(
        client,
        client.subject,
        scopes,
        ctx.policy,
        jkt=ctx.jkt,
        x5t=ctx.x5t,
        details=details,
        target=target,
    )
