"""RFC 6749 §4.4: the client credentials grant."""

from __future__ import annotations

from tokensmith.core.errors import UnauthorizedClient
from tokensmith.core.grants import GrantContext
from tokensmith.core.models import Client, IssuedToken
from tokensmith.core.requests import TokenRequest
from tokensmith.core.scopes import resolve_scope

__all__ = ["client_credentials"]


async def client_credentials(ctx: GrantContext, req: TokenRequest, client: Client) -> IssuedToken:
    """§4.4.2: only confidential clients; §4.4.3: no refresh token is issued. RFC 9396
    §6.1: ``authorization_details`` of the types the client may use go into the token."""
    if client.public:
        raise UnauthorizedClient("public clients cannot use client_credentials")
    scopes = resolve_scope(req.params.get("scope"), client.scopes, client.granted_default_scopes())
    raw = req.params.get("authorization_details")
    details = None if raw is None else ctx.details.parse(raw, client.authorization_details_types)
    return await ctx.minter.mint(
        client, client.subject, scopes, ctx.policy, jkt=ctx.jkt, x5t=ctx.x5t, details=details
    )
