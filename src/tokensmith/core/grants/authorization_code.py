"""RFC 6749 §4.1.3: the authorization code grant, with PKCE (RFC 7636 §4.5) and the
code's DPoP key binding (RFC 9449 §10)."""

from __future__ import annotations

import dataclasses

from tokensmith.core.consent_resources import single_use
from tokensmith.core.credentials import token_key
from tokensmith.core.dpop import check_code_binding
from tokensmith.core.errors import InvalidGrant, InvalidRequest
from tokensmith.core.families import PartnerPolicy, new_refresh
from tokensmith.core.grants import GrantContext
from tokensmith.core.grants.refresh_token import (
    merchant_live,
    narrow_details,
    narrow_to_target,
    prepare_in_family,
)
from tokensmith.core.models import (
    REFRESH_TOKEN,
    AuthorizationCode,
    Client,
    IssuedToken,
    RefreshTokenRecord,
    TokenFamily,
)
from tokensmith.core.pkce import verify
from tokensmith.core.requests import TokenRequest
from tokensmith.core.scopes import parse_scope

__all__ = ["AuthorizationCodeGrant"]


class AuthorizationCodeGrant:
    """Exchanges a code for an access token and (if the client may refresh) a refresh token."""

    def __init__(self, policy: PartnerPolicy) -> None:
        self.policy = policy

    async def __call__(self, ctx: GrantContext, req: TokenRequest, client: Client) -> IssuedToken:
        code = await self._code(ctx, req, client)
        check_code_binding(code.dpop_jkt, ctx.jkt)
        _check_redirect_uri(code, req.params.get("redirect_uri"))
        verify(code.code_challenge, req.params.get("code_verifier"))
        if not await merchant_live(ctx, code.merchant_id):
            raise InvalidGrant("the merchant that authorized this app is disabled")
        if code.consent_id is not None and (
            ctx.consents is None or not await ctx.consents.active(code.consent_id)
        ):
            raise InvalidGrant("the consent is no longer authorized", reason="consent_inactive")
        family = self._family(ctx, code, client)
        details = code.authorization_details
        asked = req.params.get("authorization_details")
        if details is not None or asked is not None:  # RFC 9396 §6.1: may narrow
            details = narrow_details(ctx, details, asked, client)
        scopes, target = await narrow_to_target(ctx, req, family, parse_scope(code.scope))
        issued, access = await prepare_in_family(
            ctx, client, family, scopes, self.policy, details, target
        )
        refresh: str | None = None
        first: RefreshTokenRecord | None = None
        if REFRESH_TOKEN in client.grant_types and not once(code):
            refresh, first = new_refresh(
                ctx.rand, family, family.created_at, self.policy, issued.jti, ctx.minter.binding.tag
            )
        if not await ctx.store.redeem_code(code.code_hash, ctx.clock.now(), family, first, access):
            await ctx.store.revoke_family(code.family_id, ctx.clock.now())
            raise InvalidGrant("the authorization code was already used", reason="code_reused")
        return dataclasses.replace(issued, refresh_token=refresh)

    async def _code(
        self, ctx: GrantContext, req: TokenRequest, client: Client
    ) -> AuthorizationCode:
        """§4.1.3: the code exists, was issued by this issuer to this client, is unused and
        unexpired. §4.1.2: a second use revokes every token issued from the code."""
        raw = req.params.get("code")
        if not raw:
            raise InvalidRequest("code is required")
        code = await ctx.store.find_code(token_key(raw))
        if (
            code is None
            or code.client_id != client.client_id
            or not ctx.minter.binding.issued(code.issuer_tag)
        ):
            raise InvalidGrant("the authorization code is not valid", reason="unknown_code")
        now = ctx.clock.now()
        if code.used_at is not None:
            await ctx.store.revoke_family(code.family_id, now)
            raise InvalidGrant("the authorization code was already used", reason="code_reused")
        if now >= code.expires_at:
            raise InvalidGrant("the authorization code has expired", reason="code_expired")
        return code

    def _family(self, ctx: GrantContext, code: AuthorizationCode, client: Client) -> TokenFamily:
        """RFC 9449 §5, RFC 8705 §4: a public client's refresh tokens are bound to its DPoP
        key and to its TLS client certificate."""
        now = ctx.clock.now()
        absolute = now + self.policy.refresh_absolute_ttl
        return TokenFamily(
            family_id=code.family_id,
            client_id=code.client_id,
            merchant_id=code.merchant_id,
            user_id=code.user_id,
            scope=code.scope,
            created_at=now,
            expires_at=min(now + self.policy.refresh_idle_ttl, absolute),
            absolute_expires_at=absolute,
            jkt=ctx.jkt if client.public else None,
            x5t_s256=ctx.x5t if client.public else None,
            authorization_details=code.authorization_details,
            resources=code.resources,
            consent_id=code.consent_id,
        )


def once(code: AuthorizationCode) -> bool:
    """A code of a single-use consent (one payment) gets no refresh token."""
    return code.consent_id is not None and single_use(code.authorization_details)


def _check_redirect_uri(code: AuthorizationCode, presented: str | None) -> None:
    """§4.1.3: ``redirect_uri`` must be identical to the authorization request's when that
    request carried one; when it did not, a value sent now must still be the registered one."""
    if presented is None:
        if code.redirect_uri_sent:
            raise InvalidRequest("redirect_uri is required: the authorization request had one")
        return
    if presented != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
