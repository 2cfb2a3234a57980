"""RFC 6749 §6: the refresh token grant, with rotation and reuse detection (RFC 9700 §4.14.2).

A public client's refresh token bound to a DPoP key is exchanged only with a proof of that
key (RFC 9449 §5); a confidential client's is not bound (its authentication binds it), but
the access token it is exchanged for is bound to the proof sent, if any.

Only a refresh token this issuer issued is exchanged (:mod:`tokensmith.core.issuers`); one
of another issuer on the same database is unknown here, and presenting it spends nothing.

Each exchange spends the presented token and issues a new one in the same transaction (a
conditional UPDATE ``... WHERE spent_at IS NULL``), so of N parallel exchanges of one
token exactly one succeeds. A spent token presented again revokes the family, except for
the one replay the grace window allows (see :mod:`tokensmith.core.families`).
"""

from __future__ import annotations

import dataclasses

from tokensmith.core.authorization_details import narrow
from tokensmith.core.credentials import token_key
from tokensmith.core.dpop import check_refresh_binding
from tokensmith.core.errors import (
    InvalidAuthorizationDetails,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
)
from tokensmith.core.families import PartnerPolicy, new_refresh
from tokensmith.core.grants import GrantContext
from tokensmith.core.models import (
    AccessTokenRecord,
    Client,
    IssuedToken,
    RefreshGrant,
    RefreshTokenRecord,
    TokenFamily,
)
from tokensmith.core.mtls import check_refresh_certificate
from tokensmith.core.requests import TokenRequest
from tokensmith.core.resources import RESOURCE, Target, token_target
from tokensmith.core.scopes import parse_scope
from tokensmith.core.tokens import IssuePolicy

__all__ = ["RefreshTokenGrant", "merchant_live", "narrow_details", "prepare_in_family"]


async def merchant_live(ctx: GrantContext, merchant_id: str) -> bool:
    merchant = await ctx.store.get_merchant(merchant_id)
    return merchant is not None and merchant.active


async def prepare_in_family(
    ctx: GrantContext,
    client: Client,
    family: TokenFamily,
    scopes: tuple[str, ...],
    policy: PartnerPolicy,
    details: str | None = None,
    target: Target | None = None,
) -> tuple[IssuedToken, AccessTokenRecord]:
    """An access token recorded with the family, so revoking the family deactivates it;
    the caller stores the record in the transaction that spends the code or refresh token,
    so a token is stored exactly when it is answered.  Its ``sub`` is the merchant; it is
    bound to the request's DPoP key, if any (RFC 9449 §5), carries ``details``, the
    RFC 9396 ``authorization_details`` it was granted, and is for ``target``'s
    resources, if any (RFC 8707)."""
    issue = IssuePolicy(ctx.policy.token_format, policy.access_token_ttl)
    issued, record = await ctx.minter.prepare(
        client,
        family.merchant_id,
        scopes,
        issue,
        family.family_id,
        ctx.jkt,
        ctx.x5t,
        details,
        target,
        family.consent_id,
    )
    assert record is not None  # a token in a family always has a record
    return issued, record


async def narrow_to_target(
    ctx: GrantContext, req: TokenRequest, family: TokenFamily, scopes: tuple[str, ...]
) -> tuple[tuple[str, ...], Target | None]:
    """RFC 8707 §2.2: the resources of the request, among those the grant named (all of
    them when it names none), and the scopes narrowed to theirs."""
    if family.resources is None and RESOURCE not in req.params:
        return scopes, None  # the common case: no coroutine, one lookup
    target = await token_target(ctx.resources, req.params, family.resources)
    if target is None:
        return scopes, None
    requested = req.params.get("scope")
    explicit = requested is not None and bool(requested.strip(" "))
    return target.narrow(scopes, explicit=explicit), target


def narrow_scope(requested: str | None, family: TokenFamily, client: Client) -> tuple[str, ...]:
    """§6: the scope may narrow, never widen; omitted means everything originally granted
    (less any scope the client has since lost)."""
    granted = tuple(s for s in parse_scope(family.scope) if s in client.scopes)
    if requested is None or not requested.strip(" "):
        if not granted:
            raise InvalidScope("none of the granted scopes is still allowed for this client")
        return granted
    scopes = parse_scope(requested)
    extra = [s for s in scopes if s not in granted]
    if extra or not scopes:
        raise InvalidScope(f"scope exceeds what was granted: {' '.join(extra)}")
    return scopes


def narrow_details(
    ctx: GrantContext, granted: str | None, raw: str | None, client: Client
) -> str | None:
    """RFC 9396 §6.1, §6.2: the ``authorization_details`` a token request asks for, of those
    granted (all of them without the parameter); none granted and some asked for is
    ``invalid_authorization_details``."""
    if raw is None:
        return granted
    if granted is None:
        raise InvalidAuthorizationDetails("no authorization_details were granted (RFC 9396 §6.2)")
    return narrow(ctx.details, granted, raw, client.authorization_details_types)


class RefreshTokenGrant:
    """Exchanges a refresh token for a new access token and a new refresh token."""

    def __init__(self, policy: PartnerPolicy) -> None:
        self.policy = policy

    async def __call__(self, ctx: GrantContext, req: TokenRequest, client: Client) -> IssuedToken:
        raw = req.params.get("refresh_token")
        if not raw:
            raise InvalidRequest("refresh_token is required")
        found = await ctx.store.find_refresh_grant(token_key(raw))
        if (
            found is None
            or found.token.client_id != client.client_id
            or not ctx.minter.binding.issued(found.token.issuer_tag)
        ):
            raise InvalidGrant("the refresh token is not valid", reason="unknown_refresh_token")
        record = found.token
        family = self._family(ctx, found)
        if client.token_revoked(record.issued_at):  # every token of the client revoked
            raise InvalidGrant("the refresh token was revoked", reason="revoked_refresh_token")
        check_refresh_binding(family.jkt, ctx.jkt)
        check_refresh_certificate(family.x5t_s256, ctx.x5t)
        requested = req.params.get("scope")
        details = family.authorization_details
        asked = req.params.get("authorization_details")
        if details is not None or asked is not None:
            details = narrow_details(ctx, details, asked, client)
        if record.spent_at is None:
            scopes, target = await narrow_to_target(
                ctx, req, family, narrow_scope(requested, family, client)
            )
            issued = await self._rotate(ctx, client, family, record, scopes, details, target)
            if issued is not None:
                return issued
            record = await ctx.store.find_refresh_token(record.token_hash) or record
        return await self._replay(ctx, client, family, record, req, details)

    @staticmethod
    def _family(ctx: GrantContext, found: RefreshGrant) -> TokenFamily:
        record, family, merchant = found.token, found.family, found.merchant
        now = ctx.clock.now()
        if family is None or family.revoked_at is not None or record.revoked_at is not None:
            raise InvalidGrant("the refresh token was revoked", reason="revoked_refresh_token")
        if record.spent_at is None and (now >= record.expires_at or not family.live_at(now)):
            raise InvalidGrant("the refresh token has expired", reason="expired_refresh_token")
        if now >= family.absolute_expires_at:
            raise InvalidGrant("the refresh token has expired", reason="expired_refresh_token")
        if merchant is None or not merchant.active:
            raise InvalidGrant("the merchant that authorized this app is disabled")
        return family

    async def _rotate(
        self,
        ctx: GrantContext,
        client: Client,
        family: TokenFamily,
        record: RefreshTokenRecord,
        scopes: tuple[str, ...],
        details: str | None,
        target: Target | None = None,
    ) -> IssuedToken | None:
        """Spend ``record`` and store its successor atomically; ``None`` if it lost a race."""
        issued, access = await prepare_in_family(
            ctx, client, family, scopes, self.policy, details, target
        )
        now = ctx.clock.now()
        plain, new = new_refresh(
            ctx.rand, family, now, self.policy, issued.jti, ctx.minter.binding.tag
        )
        if await ctx.store.rotate_refresh_token(record.token_hash, new, now, access):
            return dataclasses.replace(issued, refresh_token=plain)
        return None

    def _may_replay(self, record: RefreshTokenRecord, now: float) -> bool:
        """The grace window: only a token spent by its own exchange (``rotated``), never
        replayed before, within ``refresh_grace`` seconds of being spent."""
        return (
            self.policy.refresh_grace > 0
            and record.spent_reason == "rotated"
            and record.replayed_at is None
            and record.replaced_by is not None
            and record.spent_at is not None
            and now - record.spent_at <= self.policy.refresh_grace
        )

    async def _replay(
        self,
        ctx: GrantContext,
        client: Client,
        family: TokenFamily,
        record: RefreshTokenRecord,
        req: TokenRequest,
        details: str | None,
    ) -> IssuedToken:
        """A spent token again: the one grace-window replay, else reuse, which revokes the
        family (RFC 9700 §4.14.2).  The store decides the replay in one transaction (the
        successor must still be unspent, the token never replayed), so of parallel
        replays at most one wins, and it withdraws the successor's pair with it."""
        now = ctx.clock.now()
        if self._may_replay(record, now):
            assert record.replaced_by is not None
            scopes, target = await narrow_to_target(
                ctx, req, family, narrow_scope(req.params.get("scope"), family, client)
            )
            issued, access = await prepare_in_family(
                ctx, client, family, scopes, self.policy, details, target
            )
            plain, new = new_refresh(
                ctx.rand, family, now, self.policy, issued.jti, ctx.minter.binding.tag
            )
            if await ctx.store.replay_refresh_token(
                record.token_hash, record.replaced_by, new, now, access
            ):
                return dataclasses.replace(issued, refresh_token=plain)
        await ctx.store.revoke_family(family.family_id, now)
        raise InvalidGrant(
            "the refresh token was already used; every token of this grant is revoked",
            reason="refresh_token_reused",
        )
