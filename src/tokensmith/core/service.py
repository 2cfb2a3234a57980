"""The token service: client authentication, grant dispatch, introspection, revocation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokensmith.client_cert import cnf_x5t
from tokensmith.core.audit import Audit
from tokensmith.core.authn import ClientAuthenticator
from tokensmith.core.authorization_details import DEFAULT_TYPES, DetailsTypes, load
from tokensmith.core.clock import Clock
from tokensmith.core.consent_resources import ConsentResources
from tokensmith.core.credentials import token_key
from tokensmith.core.dpop import DPOP_TOKEN_TYPE, DpopVerifier, jkt_of, proof_key
from tokensmith.core.errors import (
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokensmith.core.extensions import refuse_unsupported
from tokensmith.core.grants import GrantContext, GrantTable
from tokensmith.core.jwt_codec import looks_like_jwt
from tokensmith.core.keyring import KeyRing
from tokensmith.core.models import AccessTokenRecord, Client, IssuedToken
from tokensmith.core.mtls import bound_thumbprint
from tokensmith.core.ports import ClientStore, RevocationLookup, ServiceStore
from tokensmith.core.profile import FAPI2, check_sender_constrained
from tokensmith.core.randomness import Randomness
from tokensmith.core.requests import TokenRequest
from tokensmith.core.resources import ResourceRegistry
from tokensmith.core.tokens import IssuePolicy, TokenMinter

__all__ = ["INTROSPECTION_SCOPE", "ConsentToken", "TokenService"]

#: A client holding this scope may introspect tokens issued to other clients.
INTROSPECTION_SCOPE = "introspection"


#: Looks up a token another way (refresh tokens); returns its claims or ``None``.
Introspector = Callable[[str, Client], Awaitable[dict[str, Any] | None]]
#: Revokes a token another way; returns True if it knew the token.
Revoker = Callable[[str, Client], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class ConsentToken:
    """An access token reported consumed: its consent resource, and whether it was revoked."""

    consent_id: str | None
    revoked: bool


@dataclass(slots=True)
class _Found:
    record: AccessTokenRecord
    claims: dict[str, Any] = field(default_factory=dict)


class TokenService:
    """Everything the token, introspection and revocation endpoints do, minus HTTP."""

    def __init__(
        self,
        store: ServiceStore,
        clients: ClientStore,
        authenticator: ClientAuthenticator,
        minter: TokenMinter,
        keyring: KeyRing,
        clock: Clock,
        rand: Randomness,
        grants: GrantTable,
        *,
        revocations: RevocationLookup | None = None,
        introspectors: Sequence[Introspector] = (),
        revokers: Sequence[Revoker] = (),
        dpop: DpopVerifier | None = None,
        details: DetailsTypes = DEFAULT_TYPES,
        resources: ResourceRegistry | None = None,
        audit: Audit | None = None,
        consents: ConsentResources | None = None,
    ) -> None:
        self.store = store
        #: The consent resources: a token of a consent no longer ``authorized`` is inactive.
        self.consents = consents
        self.clients = clients
        self.authenticator = authenticator
        #: Which clients follow FAPI 2.0 (the authenticator's, which restricts their methods).
        self.profiles = authenticator.profiles
        self.minter = minter
        self.keyring = keyring
        self.clock = clock
        self.rand = rand
        self.grants = grants
        #: Answers "is this JWT revoked?" from memory; without it, the store is asked.
        self.revocations = revocations
        #: Checks DPoP proofs (RFC 9449 §5); without it, a request with one is refused.
        self.dpop = dpop
        #: The registered resources (RFC 8707); without it, ``resource`` is refused.
        self.resources = resources
        #: Look up and revoke the tokens that are not access tokens (refresh tokens).
        self.introspectors = tuple(introspectors)
        self.revokers = tuple(revokers)
        #: The ``authorization_details`` types accepted (RFC 9396 §6).
        self.details = details
        #: Records ``token.revoked`` (revocation only: issuing a token writes no event).
        self.audit = audit or Audit.null(clock, rand)

    async def token(self, req: TokenRequest, policy: IssuePolicy) -> tuple[Client, IssuedToken]:
        """RFC 6749 §3.2: authenticate the client, then run its grant."""
        grant = self.grants.get(req.grant_type)
        if grant is None:
            raise UnsupportedGrantType(f"grant_type {req.grant_type!r} is not supported")
        client = await self.authenticator.authenticate(req.credentials, req.source)
        try:
            refuse_unsupported(req.params, authorization=False)
            if req.grant_type not in client.grant_types:
                raise UnauthorizedClient(f"client may not use grant_type {req.grant_type!r}")
            jkt = x5t = None
            if req.dpop is not None or client.require_dpop:
                jkt = await proof_key(self.dpop, req, client)
            if client.cert_bound_tokens:  # RFC 8705 §3
                cert = req.credentials.certificate if req.credentials else None
                x5t = bound_thumbprint(client, cert)
            if (client.profile or self.profiles.default) == FAPI2:
                check_sender_constrained(req, jkt, x5t)  # FAPI 2.0 §5.3.2.1
            ctx = GrantContext(
                self.store,
                self.minter,
                self.clock,
                self.rand,
                policy,
                jkt,
                x5t,
                self.details,
                self.resources,
                self.consents,
            )
            return client, await grant(ctx, req, client)
        except OAuthError as exc:
            exc.client_id = client.client_id
            raise

    async def _find_access_token(self, token: str) -> _Found | None:
        """An access token of this issuer: a JWT whose signed ``iss`` is ours (RFC 9068
        §4), or a stored opaque token bearing our issuer tag."""
        now = self.clock.now()
        if looks_like_jwt(token):
            claims = (await self.keyring.codec()).decode(token, now)
            if claims is None:
                return None
            jti = str(claims.get("jti", ""))
            if self.revocations is not None:
                # The token's fields are in its signed claims; only revocation is looked up.
                stored, revoked_at = None, await self.revocations.revoked_at(jti)
            else:
                stored = await self.store.find_access_token_by_jti(jti)
                revoked_at = None
            record = stored or AccessTokenRecord(
                jti=jti,
                client_id=str(claims.get("client_id", "")),
                subject=str(claims.get("sub", "")),
                scope=str(claims.get("scope", "")),
                issued_at=float(claims.get("iat", 0)),
                expires_at=float(claims["exp"]),
                revoked_at=revoked_at,
                issuer_tag=self.minter.binding.tag,
            )
            return _Found(record, claims)
        opaque = await self.store.find_access_token(token_key(token))
        if opaque is None or not self.minter.binding.issued(opaque.issuer_tag):
            return None  # unknown, or another issuer's (its iss is not ours to vouch for)
        return _Found(opaque)

    async def introspect(self, token: str, caller: Client) -> dict[str, Any]:
        """RFC 7662 §2.2. Inactive for expired, revoked, unknown and foreign tokens (another
        issuer's too, on a shared database), and for tokens of a revoked client. A caller
        sees its own tokens, and any token of this server if it holds the ``introspection``
        scope (§4).  ``token_type`` says what the token is: ``Bearer`` for an access token
        here, ``DPoP`` with ``cnf.jkt`` for one bound to a DPoP key (RFC 9449 §6.2),
        with ``cnf`` ``x5t#S256`` for one bound to a TLS client certificate (RFC 8705 §3.2),
        ``refresh_token`` from the refresh-token hook.  ``aud`` is the token's: the resources
        it is for (RFC 8707), else the server's audience."""
        if not token:
            raise InvalidRequest("token is required")
        found = await self._find_access_token(token)
        if found is None:
            for introspector in self.introspectors:
                claims = await introspector(token, caller)
                if claims is not None:
                    return claims
            return {"active": False}
        if not self._may_see(caller, found.record.client_id):
            return {"active": False}
        return await self._active(found) or {"active": False}

    async def access_token_claims(self, token: str) -> dict[str, Any] | None:
        """RFC 7662 §2.2 for an active access token of this issuer, whoever it was issued
        to, else ``None`` (expired, revoked, unknown, another issuer's, a revoked client's,
        or not an access token: a refresh token is never one). The admin API's check."""
        found = await self._find_access_token(token)
        return None if found is None else await self._active(found)

    async def _active(self, found: _Found) -> dict[str, Any] | None:
        rec = found.record
        if not rec.active_at(self.clock.now()):
            return None
        owner = await self.clients.get_client(rec.client_id)
        if owner is None or not owner.active or owner.token_revoked(rec.issued_at):
            return None
        body: dict[str, Any] = {
            "active": True,
            "scope": rec.scope,
            "client_id": rec.client_id,
            "token_type": "Bearer",
            "exp": int(rec.expires_at),
            "iat": int(rec.issued_at),
            "sub": rec.subject,
            "aud": found.claims.get("aud") or _audience(rec) or self.minter.audience,
            "iss": self.minter.issuer,
            "jti": rec.jti,
        }
        jkt = rec.jkt or jkt_of(found.claims)
        if jkt is not None:  # RFC 9449 §6.2
            body |= {"token_type": DPOP_TOKEN_TYPE, "cnf": {"jkt": jkt}}
        x5t = rec.x5t_s256 or cnf_x5t(found.claims)
        if x5t is not None:  # RFC 8705 §3.2: still a Bearer token
            body["cnf"] = body.get("cnf", {}) | {"x5t#S256": x5t}
        details = found.claims.get("authorization_details")
        if details is None and rec.authorization_details is not None:
            details = load(rec.authorization_details)
        if details is not None:  # RFC 9396 §9.1
            body["authorization_details"] = details
        consent_id = await self._consent_of(found)
        if consent_id is not None:
            if self.consents is None or not await self.consents.active(consent_id):
                return None  # consumed, revoked or expired: its tokens no longer act
            body["consent_id"] = consent_id
        return body

    async def _consent_of(self, found: _Found) -> str | None:
        """The consent resource a token acts under: a JWT's claim, an opaque token's
        family's (only a token with ``authorization_details`` may have one)."""
        claimed = found.claims.get("consent_id")
        if claimed is not None:
            return str(claimed)
        rec = found.record
        if found.claims or rec.family_id is None or rec.authorization_details is None:
            return None
        family = await self.store.get_family(rec.family_id)
        return None if family is None else family.consent_id

    async def consent_token(self, token: str, caller: Client) -> ConsentToken | None:
        """The access token a resource server reports consumed: ``None`` if it is not an
        unexpired access token of this issuer that ``caller`` may introspect (RFC 7662
        §4); else its consent resource's id (``None``: it has none) and whether the token
        itself was revoked."""
        if not token:
            raise InvalidRequest("token is required")
        found = await self._find_access_token(token)
        if found is None or not self._may_see(caller, found.record.client_id):
            return None
        rec = found.record
        if self.clock.now() >= rec.expires_at:
            return None
        owner = await self.clients.get_client(rec.client_id)
        if owner is None or not owner.active or owner.token_revoked(rec.issued_at):
            return None
        return ConsentToken(await self._consent_of(found), rec.revoked_at is not None)

    @staticmethod
    def _may_see(caller: Client, owner_id: str) -> bool:
        return caller.client_id == owner_id or INTROSPECTION_SCOPE in caller.scopes

    async def revoke(self, token: str, caller: Client, source: str | None = None) -> None:
        """RFC 7009 §2.1. Unknown tokens are not an error (§2.2); another client's token is
        refused with ``unauthorized_client``. Each revocation is a ``token.revoked`` audit
        event by ``client:<id>``."""
        if not token:
            raise InvalidRequest("token is required")
        found = await self._find_access_token(token)
        if found is not None:
            if found.record.client_id != caller.client_id:
                raise UnauthorizedClient("the token was not issued to this client")
            if found.record.revoked_at is None:
                await self.store.revoke_access_token(found.record, self.clock.now())
                await self._revoked(caller, source, "access_token", found.record.jti)
            return
        for revoker in self.revokers:
            if await revoker(token, caller):
                await self._revoked(caller, source, "refresh_token", None)
                return

    async def _revoked(
        self, caller: Client, source: str | None, kind: str, jti: str | None
    ) -> None:
        await self.audit.record(
            "token.revoked",
            actor=f"client:{caller.client_id}",
            merchant_id=caller.merchant_id,
            source=source,
            subject=jti,
            kind=kind,
        )


def _audience(record: AccessTokenRecord) -> str | list[str] | None:
    """A stored token's resources (RFC 8707) as ``aud``: one a string, several a list."""
    if not record.audience:
        return None
    ids = record.audience.split(" ")
    return ids[0] if len(ids) == 1 else ids
