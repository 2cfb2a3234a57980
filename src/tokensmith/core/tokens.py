"""Minting access tokens: JWT (RFC 9068) or opaque, stored only as a hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tokensmith.core.authorization_details import load
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import new_token, new_token_id, token_key
from tokensmith.core.dpop import DPOP_TOKEN_TYPE
from tokensmith.core.issuers import IssuerBinding
from tokensmith.core.jwt_codec import JwtCodec
from tokensmith.core.models import AccessTokenRecord, Client, IssuedToken, TokenFormat
from tokensmith.core.ports import TokenStore
from tokensmith.core.randomness import Randomness
from tokensmith.core.scopes import format_scope

if TYPE_CHECKING:
    from tokensmith.core.resources import Target

__all__ = ["CodecSource", "IssuePolicy", "TokenMinter"]


@dataclass(frozen=True, slots=True)
class IssuePolicy:
    """Defaults an endpoint (or dialect) supplies; a client's own settings override them."""

    token_format: TokenFormat = "jwt"
    access_token_ttl: int = 3600

    def format_for(self, client: Client) -> TokenFormat:
        return client.token_format or self.token_format

    def ttl_for(self, client: Client) -> int:
        return client.access_token_ttl or self.access_token_ttl


class CodecSource(Protocol):
    """Where the current signing codec comes from (:class:`tokensmith.core.keyring.KeyRing`:
    it reloads the keys as they rotate)."""

    async def codec(self) -> JwtCodec: ...


class TokenMinter:
    """Issues access tokens. A JWT without a family is not written anywhere; a stored token
    carries the issuer's tag (:mod:`tokensmith.core.issuers`).  ``legacy_issuer`` names
    the issuer of the tokens stored before migration 0006.  JWTs are signed with the codec
    ``codecs`` holds when each is minted."""

    def __init__(
        self,
        codecs: CodecSource,
        tokens: TokenStore,
        clock: Clock,
        rand: Randomness,
        issuer: str,
        audience: str,
        *,
        legacy_issuer: str | None = None,
    ) -> None:
        self._codecs = codecs
        self._tokens = tokens
        self._clock = clock
        self._rand = rand
        self.issuer = issuer
        self.audience = audience
        #: Which stored tokens are this issuer's.
        self.binding = IssuerBinding.of(issuer, legacy_issuer)

    async def mint(
        self,
        client: Client,
        subject: str,
        scopes: tuple[str, ...],
        policy: IssuePolicy,
        family_id: str | None = None,
        jkt: str | None = None,
        x5t: str | None = None,
        details: str | None = None,
        target: Target | None = None,
        consent_id: str | None = None,
    ) -> IssuedToken:
        """Mint one access token (RFC 6749 §5.1 fields, RFC 9068 claims) and store its record
        if it has one."""
        issued, record = await self.prepare(
            client, subject, scopes, policy, family_id, jkt, x5t, details, target, consent_id
        )
        if record is not None:
            await self._tokens.add_access_token(record)
        return issued

    async def prepare(
        self,
        client: Client,
        subject: str,
        scopes: tuple[str, ...],
        policy: IssuePolicy,
        family_id: str | None = None,
        jkt: str | None = None,
        x5t: str | None = None,
        details: str | None = None,
        target: Target | None = None,
        consent_id: str | None = None,
    ) -> tuple[IssuedToken, AccessTokenRecord | None]:
        """The token and the record to store with it, written by the caller (in the same
        transaction as a refresh-token rotation, say).  A JWT outside a family has no record:
        it is not written anywhere.  With ``jkt`` the token is bound to that DPoP key (RFC
        9449 §6): a JWT carries ``cnf.jkt`` (§6.1), a record keeps it (§6.2), and its
        ``token_type`` is ``DPoP`` (§5.1).  With ``x5t`` it is bound to that TLS client
        certificate (RFC 8705 §3): ``cnf`` ``x5t#S256``, and it stays a ``Bearer`` token.
        ``details``: RFC 9396 ``authorization_details`` (canonical JSON text), in the JWT's
        claim of that name (§9.1), the record and the token response (§7). With a ``target``
        (RFC 8707) the token is for its resources: its ``aud`` names them (RFC 9068 §3),
        their lifetime and format apply. ``consent_id``: the consent resource the token acts
        under, in the JWT's claim of that name and the token response."""
        clock_now = self._clock.now()
        now = int(clock_now)
        ttl = policy.ttl_for(client)
        token_format = policy.format_for(client)
        audience: str | list[str] = self.audience
        stored_audience: str | None = None
        if target is not None:
            ttl = target.ttl or ttl
            token_format = target.token_format or token_format
            audience = target.audience
            stored_audience = " ".join(target.identifiers)
        scope = format_scope(scopes)
        jti = new_token_id(self._rand, clock_now)
        token_hash: str | None = None
        if token_format == "jwt":
            claims: dict[str, object] = {
                "iss": self.issuer,
                "sub": subject,
                "aud": audience,
                "client_id": client.client_id,
                "scope": scope,
                "iat": now,
                "exp": now + ttl,
                "jti": jti,
            }
            if jkt is not None or x5t is not None:
                claims["cnf"] = _cnf(jkt, x5t)
            if details is not None:
                claims["authorization_details"] = load(details)
            if consent_id is not None:
                claims["consent_id"] = consent_id
            token = (await self._codecs.codec()).encode(claims)
        else:
            token = new_token(self._rand, clock_now)
            token_hash = token_key(token)
        record = None
        if token_hash is not None or family_id is not None:
            record = AccessTokenRecord(
                jti=jti,
                client_id=client.client_id,
                subject=subject,
                scope=scope,
                issued_at=now,
                expires_at=now + ttl,
                token_hash=token_hash,
                family_id=family_id,
                issuer_tag=self.binding.tag,
                jkt=jkt,
                x5t_s256=x5t,
                authorization_details=details,
                audience=stored_audience,
            )
        issued = IssuedToken(
            access_token=token,
            expires_in=ttl,
            scope=scope,
            issued_at=now,
            jti=jti,
            client_id=client.client_id,
            subject=subject,
            token_type="Bearer" if jkt is None else DPOP_TOKEN_TYPE,
            authorization_details=details,
            consent_id=consent_id,
            token_format=token_format,
            binding=_BINDINGS[jkt is not None, x5t is not None],
        )
        return issued, record


#: The ``binding`` of a token by (DPoP-bound, certificate-bound).
_BINDINGS = {
    (False, False): "bearer",
    (True, False): "dpop",
    (False, True): "mtls",
    (True, True): "dpop+mtls",
}


def _cnf(jkt: str | None, x5t: str | None) -> dict[str, str]:
    """RFC 7800 ``cnf``: the DPoP key (RFC 9449 §6.1) and the certificate (RFC 8705 §3.1)."""
    cnf = {} if jkt is None else {"jkt": jkt}
    if x5t is not None:
        cnf["x5t#S256"] = x5t
    return cnf
