"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

A client registers by posting its metadata (RFC 7591 §2) to ``/oauth/register``; the
server checks it (:func:`spec_from_metadata`), makes the client through
:class:`~tokensmith.core.client_admin.ClientAdmin`, and answers its id, its secret (once)
and a *registration access token* (RFC 7592 §1), stored only as a hash, with which the
client reads (``GET``), replaces (``PUT``) and deletes (``DELETE``) its registration at
``registration_client_uri``. Every ``PUT`` issues a new registration access token and
the old one is refused from then on.

Who may register is the mode's (``registration``): ``off`` (no endpoint), ``open``
(anyone, so the endpoint is rate-limited per address), or ``initial_access_token``: the
request carries a Bearer token made with ``tokensmith registration token create``
(RFC 7591 §3), stored as a hash; a client registered with a token that names a merchant
belongs to that merchant. A *software statement* (RFC 7591 §2.3), a JWT signed by a key
the server trusts, vouches for metadata: its claims take precedence over the request's.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import jwt
import orjson

from tokensmith.core.admin import (
    AUTH_METHODS,
    GRANT_TYPES,
    AdminError,
    ClientSpec,
    check_redirect_uri,
)
from tokensmith.core.audit import Audit, By
from tokensmith.core.client_admin import ClientAdmin
from tokensmith.core.client_assertion import check_jwks_uri, parse_jwks
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret, new_client_id, new_secret
from tokensmith.core.errors import InvalidToken, OAuthError, RateLimited
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.core.models import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    REFRESH_TOKEN,
    Client,
    InitialAccessToken,
)
from tokensmith.core.ports import InitialTokenStore
from tokensmith.core.randomness import Randomness
from tokensmith.core.scopes import parse_scope
from tokensmith.core.uris import split_uri

__all__ = [
    "MODES",
    "InitialTokens",
    "InvalidClientMetadata",
    "InvalidRedirectUri",
    "InvalidSoftwareStatement",
    "Mode",
    "Registration",
    "RegistrationPolicy",
    "Registrations",
    "UnapprovedSoftwareStatement",
    "client_metadata",
    "spec_from_metadata",
]

Mode = Literal["off", "open", "initial_access_token"]
MODES: tuple[Mode, ...] = ("off", "open", "initial_access_token")

MAX_NAME = 200
MAX_URI = 2000
MAX_REDIRECT_URIS = 20
MAX_CONTACTS = 10
MAX_STATEMENT = 16384
#: Metadata kept only to be read back (RFC 7591 §2), with the longest value of each.
_URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
_TEXT_FIELDS = {"software_id": 200, "software_version": 200}
#: JWT claims of a software statement that are not client metadata (RFC 7519 §4.1).
_JWT_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
_STATEMENT_ALGS = {
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "EdDSA": "OKP",
}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2 ``invalid_redirect_uri``."""

    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2 ``invalid_client_metadata``."""

    error = "invalid_client_metadata"


class InvalidSoftwareStatement(OAuthError):
    """RFC 7591 §3.2.2 ``invalid_software_statement``: malformed, unsigned, expired."""

    error = "invalid_software_statement"


class UnapprovedSoftwareStatement(OAuthError):
    """RFC 7591 §3.2.2 ``unapproved_software_statement``: signed by no trusted key."""

    error = "unapproved_software_statement"


@dataclass(frozen=True, slots=True)
class RegistrationPolicy:
    """Who may register, which scopes a client may ask for, which statements are trusted."""

    mode: Mode = "off"
    #: Scopes a registered client may have; its default is all of them.
    scopes: tuple[str, ...] = ("read",)
    #: Public keys (JWKs) that sign trusted software statements.
    statement_keys: tuple[dict[str, Any], ...] = ()
    require_statement: bool = False
    #: Registration requests one address may make in ``window`` seconds.
    per_address: int = 20
    window: int = 3600
    leeway: int = 5


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered client; the secrets are set only when just issued (shown once)."""

    client: Client
    client_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)


def _string(body: Mapping[str, Any], name: str, longest: int) -> str | None:
    """A printable string (no control characters: it is shown on pages and in logs)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= longest or not value.isprintable():
        raise InvalidClientMetadata(f"{name} must be 1 to {longest} printable characters")
    return value


def _strings(body: Mapping[str, Any], name: str, most: int, longest: int) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > most
        or not all(isinstance(v, str) and 0 < len(v) <= longest for v in value)
    ):
        raise InvalidClientMetadata(f"{name} must be a list of at most {most} strings")
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name} must be true or false")
    return value


def _web_uri(name: str, uri: str) -> None:
    """A URL shown to people: absolute https (http on loopback), no credentials."""
    parts = split_uri(uri)
    if parts is None or not parts.hostname or parts.username is not None:
        raise InvalidClientMetadata(f"{name} must be an absolute https URL")
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidClientMetadata(f"{name} must be an https URL")


def _grants(body: Mapping[str, Any]) -> tuple[tuple[str, ...], list[str]]:
    """RFC 7591 §2.1: ``grant_types`` (default ``authorization_code``) and
    ``response_types`` (default ``code`` where the code grant is asked for) agree."""
    grants = _strings(body, "grant_types", 3, 64) or [AUTHORIZATION_CODE]
    unknown = [g for g in grants if g not in GRANT_TYPES]
    if unknown:
        raise InvalidClientMetadata(f"grant_types must be among {', '.join(GRANT_TYPES)}")
    coded = AUTHORIZATION_CODE in grants
    responses = _strings(body, "response_types", 3, 64)
    if responses is None:
        responses = ["code"] if coded else []
    if any(r != "code" for r in responses):
        raise InvalidClientMetadata("response_types may only be code")
    if ("code" in responses) != coded:
        raise InvalidClientMetadata(
            "response_types code and grant_types authorization_code go together (RFC 7591 §2.1)"
        )
    if REFRESH_TOKEN in grants and not coded:
        raise InvalidClientMetadata("refresh_token is issued only with authorization_code")
    return tuple(dict.fromkeys(grants)), responses


def _redirects(body: Mapping[str, Any], coded: bool) -> tuple[str, ...]:
    uris = body.get("redirect_uris", [])
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise InvalidRedirectUri("redirect_uris must be a list of strings")
    if len(uris) > MAX_REDIRECT_URIS or any(len(u) > MAX_URI for u in uris):
        raise InvalidRedirectUri(f"at most {MAX_REDIRECT_URIS} redirect URIs of {MAX_URI} chars")
    if coded and not uris:
        raise InvalidRedirectUri("authorization_code clients need at least one redirect URI")
    for uri in uris:
        try:
            check_redirect_uri(uri)
        except AdminError as exc:
            raise InvalidRedirectUri(str(exc)) from None
    return tuple(dict.fromkeys(uris))


def _keys(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """RFC 7591 §2: ``jwks`` (an object) or ``jwks_uri`` (a URL), not both."""
    jwks, uri = body.get("jwks"), body.get("jwks_uri")
    if jwks is not None and uri is not None:
        raise InvalidClientMetadata("jwks and jwks_uri must not both be present (RFC 7591 §2)")
    if jwks is not None:
        if not isinstance(jwks, dict):
            raise InvalidClientMetadata("jwks must be a JWK Set object")
        text = json.dumps(jwks)
        try:
            parse_jwks(text)
        except ValueError as exc:
            raise InvalidClientMetadata(str(exc)) from None
        return text, None
    if uri is not None:
        if not isinstance(uri, str) or len(uri) > MAX_URI:
            raise InvalidClientMetadata("jwks_uri must be a URL")
        try:
            check_jwks_uri(uri)
        except ValueError as exc:
            raise InvalidClientMetadata(str(exc)) from None
        _public_host(uri)
    return None, uri


def _public_host(uri: str) -> None:
    """A registered ``jwks_uri`` is fetched by the server for whoever registered it: https
    to a name or a public address only, never loopback, private, link-local (cloud
    metadata) or otherwise reserved addresses (server-side request forgery)."""
    parts = split_uri(uri)
    host = (parts.hostname or "").lower() if parts is not None else ""
    refused = InvalidClientMetadata("a registered jwks_uri must be an https URL of a public host")
    if parts is None or parts.scheme != "https" or not host:
        raise refused
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name: not localhost, not a single label (an intranet name)
        if host == "localhost" or host.endswith(".localhost") or "." not in host.strip("."):
            raise refused from None
        return
    if not address.is_global:
        raise refused


def _scope(body: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    value = body.get("scope")
    if value is None:
        return " ".join(allowed)
    if not isinstance(value, str) or len(value) > MAX_URI:
        raise InvalidClientMetadata("scope must be a space-separated string")
    try:
        scopes = parse_scope(value)
    except OAuthError:
        raise InvalidClientMetadata("scope is not a valid scope string") from None
    extra = [s for s in scopes if s not in allowed]
    if extra or not scopes:
        raise InvalidClientMetadata(f"scope must be among: {' '.join(allowed)}")
    return " ".join(scopes)


def _extras(body: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata kept only to be read back."""
    kept: dict[str, Any] = {}
    for name in _URI_FIELDS:
        uri = _string(body, name, MAX_URI)
        if uri is not None:
            _web_uri(name, uri)
            kept[name] = uri
    for name, longest in _TEXT_FIELDS.items():
        text = _string(body, name, longest)
        if text is not None:
            kept[name] = text
    contacts = _strings(body, "contacts", MAX_CONTACTS, 320)
    if contacts is not None:
        kept["contacts"] = contacts
    return kept


def spec_from_metadata(
    body: Mapping[str, Any], allowed_scopes: tuple[str, ...], merchant_id: str | None
) -> ClientSpec:
    """The client RFC 7591 §2 metadata describes, every rule checked: redirect URIs
    (https or loopback http, no fragment, present for the code grant), grant and response
    types that agree, a supported ``token_endpoint_auth_method`` fitting the keys,
    ``jwks`` or ``jwks_uri`` (not both), scopes among ``allowed_scopes``. Unknown fields
    are ignored (§2). Raises :class:`InvalidRedirectUri` or :class:`InvalidClientMetadata`."""
    grants, responses = _grants(body)
    redirects = _redirects(body, AUTHORIZATION_CODE in grants)
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    if method == "none" and CLIENT_CREDENTIALS in grants:
        raise InvalidClientMetadata("a public client (none) cannot use client_credentials")
    jwks, jwks_uri = _keys(body)
    extras = _extras(body) | {"response_types": responses}
    spec = ClientSpec(
        name=_string(body, "client_name", MAX_NAME) or "Registered client",
        scope=_scope(body, allowed_scopes),
        grant_types=grants,
        merchant_id=merchant_id,
        redirect_uris=redirects,
        public=method == "none",
        require_par=_flag(body, "require_pushed_authorization_requests"),
        require_dpop=_flag(body, "dpop_bound_access_tokens"),
        jwks=jwks,
        jwks_uri=jwks_uri,
        auth_method=method,
        registration_metadata=json.dumps(extras, separators=(",", ":")),
    )
    return spec


def client_metadata(client: Client, endpoint: str) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the client's registered metadata."""
    extras: dict[str, Any] = json.loads(client.registration_metadata or "{}")
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "token_endpoint_auth_method": client.auth_methods[0],
        "scope": " ".join(client.scopes),
        "registration_client_uri": f"{endpoint}/{client.client_id}",
        **extras,
    }
    if client.secrets:
        body["client_secret_expires_at"] = 0
    if client.jwks is not None:
        body["jwks"] = json.loads(client.jwks)
    if client.jwks_uri is not None:
        body["jwks_uri"] = client.jwks_uri
    if client.require_dpop:
        body["dpop_bound_access_tokens"] = True
    if client.require_par:
        body["require_pushed_authorization_requests"] = True
    return body


# -- software statements (RFC 7591 §2.3) -----------------------------------------------------


def _segment(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidSoftwareStatement("the software statement is not a well-formed JWT")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _object(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidSoftwareStatement("the software statement is not a well-formed JWT")
    return value


def _verifies(jwk: dict[str, Any], alg: str, signing_input: bytes, sig: bytes) -> bool:
    if jwk.get("kty") != _STATEMENT_ALGS[alg] or jwk.get("alg", alg) != alg:
        return False
    try:
        key = jwt.PyJWK(jwk, alg)
        return bool(key.Algorithm.verify(signing_input, key.key, sig))
    except (jwt.PyJWTError, ValueError, TypeError):
        return False


def statement_claims(statement: Any, policy: RegistrationPolicy, now: float) -> dict[str, Any]:
    """The metadata a software statement vouches for: a JWS (never ``none`` nor an HMAC)
    signed by a trusted key, not expired (``exp``) nor early (``nbf``, ``iat``)."""
    if not isinstance(statement, str) or len(statement) > MAX_STATEMENT:
        raise InvalidSoftwareStatement("the software statement is not a JWT")
    if statement.count(".") != 2:
        raise InvalidSoftwareStatement("the software statement is not a signed JWT")
    head, body, sig = statement.split(".")
    header, claims = _object(_segment(head)), _object(_segment(body))
    signature = _segment(sig)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _STATEMENT_ALGS or not signature or "crit" in header:
        raise InvalidSoftwareStatement("the software statement must be signed (RS, PS, ES, EdDSA)")
    signing_input = f"{head}.{body}".encode("ascii")
    if not any(_verifies(k, alg, signing_input, signature) for k in policy.statement_keys):
        raise UnapprovedSoftwareStatement("the software statement is not signed by a trusted key")
    _check_statement_time(claims, now, policy.leeway)
    return {k: v for k, v in claims.items() if k not in _JWT_CLAIMS}


def _check_statement_time(claims: Mapping[str, Any], now: float, leeway: int) -> None:
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidSoftwareStatement(f"the software statement's {name} is not a number")
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if exp is not None and exp <= now - leeway:
        raise InvalidSoftwareStatement("the software statement has expired")
    if (nbf is not None and nbf > now + leeway) or (iat is not None and iat > now + leeway):
        raise InvalidSoftwareStatement("the software statement is not valid yet")


# -- the service -----------------------------------------------------------------------------


def _bearer_refused(description: str) -> InvalidToken:
    return InvalidToken(description, reason="registration_token")


def _same(stored: str | None, presented: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, hash_secret(presented))


class InitialTokens:
    """RFC 7591 §3 initial access tokens: made by an operator, shown once, stored hashed."""

    def __init__(self, store: InitialTokenStore, clock: Clock, rand: Randomness) -> None:
        self._store = store
        self._clock = clock
        self._rand = rand

    async def create(
        self, expires_in: int | None = None, merchant_id: str | None = None
    ) -> tuple[InitialAccessToken, str]:
        """A new token and its value, shown once."""
        if expires_in is not None and expires_in <= 0:
            raise AdminError("--expires-in must be positive")
        now = self._clock.now()
        plain = new_secret(self._rand)
        token = InitialAccessToken(
            token_id="rt_" + new_client_id(self._rand),
            token_hash=hash_secret(plain),
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
            merchant_id=merchant_id,
        )
        await self._store.add_initial_token(token)
        return token, plain

    async def listing(self) -> list[InitialAccessToken]:
        return await self._store.list_initial_tokens()

    async def revoke(self, token_id: str) -> bool:
        return await self._store.revoke_initial_token(token_id, self._clock.now())

    async def usable(self, plain: str) -> InitialAccessToken | None:
        """The live token with this value, else ``None``."""
        token = await self._store.find_initial_token(hash_secret(plain))
        if token is None or not token.usable_at(self._clock.now()):
            return None
        return token


class Registrations:
    """``POST /oauth/register`` (RFC 7591 §3) and ``GET``/``PUT``/``DELETE`` of
    ``registration_client_uri`` (RFC 7592 §2); each audited."""

    def __init__(
        self,
        admin: ClientAdmin,
        tokens: InitialTokens,
        clock: Clock,
        rand: Randomness,
        policy: RegistrationPolicy,
        audit: Audit,
        limiter: FailureLimiter,
        fingerprints: Fingerprints,
    ) -> None:
        self._admin = admin
        self.tokens = tokens
        self._clock = clock
        self._rand = rand
        self.policy = policy
        self._audit = audit
        self._limiter = limiter
        self._fingerprints = fingerprints

    async def register(
        self, body: Mapping[str, Any], bearer: str | None, source: str
    ) -> Registration:
        """RFC 7591 §3.1-§3.2: check who asks and what, make the client, return it with its
        secret and registration access token (both shown once, stored hashed)."""
        await self._throttle(source)
        try:
            merchant_id, actor = await self._registrant(bearer)
            spec = self._spec(body, merchant_id)
            access = new_secret(self._rand)
            spec = _with(spec, registration_token_hash=hash_secret(access))
            try:
                client, secret = await self._admin.create(
                    spec, by=By(actor, source), event="client.registered"
                )
            except AdminError as exc:
                raise InvalidClientMetadata(str(exc)) from None
        except OAuthError as exc:
            await self._refused("client.registered", "anonymous", source, exc)
            raise
        return Registration(client, secret, access)

    async def read(self, client_id: str, bearer: str | None) -> Registration:
        """RFC 7592 §2.1."""
        return Registration(await self._managed(client_id, bearer))

    async def update(
        self, client_id: str, bearer: str | None, body: Mapping[str, Any], source: str
    ) -> Registration:
        """RFC 7592 §2.2: replace the metadata, checked as at registration; the client's id
        must be in the body, a ``client_secret`` in it must be the current one. A new
        registration access token replaces the old one."""
        client = await self._managed(client_id, bearer)
        if body.get("client_id") != client_id:
            raise InvalidClientMetadata("the body's client_id must be the client's")
        secret = body.get("client_secret")
        if secret is not None and not (
            isinstance(secret, str)
            and any(
                _same(s.secret_hash, secret)
                for s in client.secrets
                if s.valid_at(self._clock.now())
            )
        ):
            raise InvalidClientMetadata("client_secret is not the client's current secret")
        spec = self._spec(body, client.merchant_id)
        access = new_secret(self._rand)
        spec = _with(spec, registration_token_hash=hash_secret(access))
        try:
            changed = await self._admin.replace(
                client_id,
                spec,
                by=_as_client(client_id, source),
                event="client.registration_updated",
            )
        except AdminError as exc:
            raise InvalidClientMetadata(str(exc)) from None
        return Registration(changed, None, access)

    async def delete(self, client_id: str, bearer: str | None, source: str) -> None:
        """RFC 7592 §2.3: the client, its secrets and its tokens are gone."""
        await self._managed(client_id, bearer)
        await self._admin.delete(
            client_id, by=_as_client(client_id, source), event="client.registration_deleted"
        )

    async def _throttle(self, source: str) -> None:
        """An unauthenticated endpoint: at most ``per_address`` requests a window."""
        keys = [("reg:" + self._fingerprints.key(source), self._limit)]
        wait = await self._limiter.reserve(keys)
        if wait is not None:
            raise RateLimited(wait, "too many registration requests")

    @property
    def _limit(self) -> Limit:
        return Limit(self.policy.per_address, self.policy.window)

    async def _registrant(self, bearer: str | None) -> tuple[str | None, str]:
        """The merchant a registered client gets, and the actor to audit."""
        if bearer is None:
            if self.policy.mode != "open":
                raise _bearer_refused("an initial access token is required (RFC 7591 §3)")
            return None, "anonymous"
        token = await self.tokens.usable(bearer)
        if token is None:
            raise _bearer_refused("the initial access token is unknown, expired or revoked")
        return token.merchant_id, f"initial_access:{token.token_id}"

    def _spec(self, body: Mapping[str, Any], merchant_id: str | None) -> ClientSpec:
        statement = body.get("software_statement")
        if statement is None and self.policy.require_statement:
            raise InvalidSoftwareStatement("a software statement is required (RFC 7591 §2.3)")
        metadata = dict(body)
        if statement is not None:
            claims = statement_claims(statement, self.policy, self._clock.now())
            metadata.update(claims)  # §2.3: the statement's values take precedence
        spec = spec_from_metadata(metadata, self.policy.scopes, merchant_id)
        if statement is not None:
            extras = json.loads(spec.registration_metadata or "{}")
            extras["software_statement"] = statement
            spec = _with(spec, registration_metadata=json.dumps(extras, separators=(",", ":")))
        return spec

    async def _managed(self, client_id: str, bearer: str | None) -> Client:
        """The client if ``bearer`` is its registration access token; RFC 7592 §2.1: 401
        alike for an unknown client, a wrong or old token, a revoked client."""
        if not bearer:
            raise _bearer_refused("the registration access token is required (RFC 7592 §2)")
        client = await self._admin.get(client_id)
        if client is None or not client.active or not _same(client.registration_token_hash, bearer):
            raise _bearer_refused("the registration access token is not valid for this client")
        return client

    async def _refused(self, type_: str, actor: str, source: str, exc: OAuthError) -> None:
        await self._audit.record(
            type_, actor=actor, outcome="failure", source=source, reason=exc.error
        )


def _as_client(client_id: str, source: str) -> By:
    """RFC 7592 §2: the client acts, by its registration access token."""
    return By(f"client:{client_id}", source)


def _with(spec: ClientSpec, **changes: Any) -> ClientSpec:
    return replace(spec, **changes)
