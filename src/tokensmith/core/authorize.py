"""The authorization endpoint's rules (RFC 6749 §4.1.1-§4.1.2), without HTTP.

Validation has two phases. :func:`resolve_target` finds the client and the redirect URI;
its errors must be shown to the user and never redirected (RFC 6749 §4.1.2.1, RFC 9700
§4.1). :func:`validate_request` checks the rest; its errors are redirected to the
client with ``error``, ``state`` and ``iss`` (RFC 9207).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from tokensmith.core.authorization_details import DEFAULT_TYPES, DetailsTypes, load
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import new_token, token_key
from tokensmith.core.errors import (
    InvalidClient,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from tokensmith.core.extensions import refuse_unsupported
from tokensmith.core.families import PartnerPolicy, new_family_id
from tokensmith.core.models import AUTHORIZATION_CODE, AuthorizationCode, Client, Consent, User
from tokensmith.core.pkce import check_challenge
from tokensmith.core.ports import ClientReader, CodeWriter, ConsentStore
from tokensmith.core.profile import FAPI2_CODE_TTL, ProfilePolicy
from tokensmith.core.randomness import Randomness
from tokensmith.core.scopes import format_scope, parse_scope, resolve_scope
from tokensmith.core.uris import split_uri

__all__ = [
    "SCOPE_DESCRIPTIONS",
    "AuthorizationRequest",
    "AuthorizationTarget",
    "consent_covers",
    "describe_scope",
    "issue_code",
    "redirect_uri_matches",
    "remember_consent",
    "resolve_target",
    "response_uri",
    "valid_client_id",
    "validate_request",
]

Params = Mapping[str, Sequence[str]]

MAX_STATE_LENGTH = 2048
#: RFC 9449 §10 ``dpop_jkt``: an RFC 7638 SHA-256 thumbprint, 43 base64url characters.
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
#: RFC 6749 Appendix A.1: client_id = *VSCHAR.
_VSCHARS = re.compile(r"[\x20-\x7e]{1,200}")


def valid_client_id(value: str) -> bool:
    """Whether ``value`` can name a client at all (and so may reach the database)."""
    return _VSCHARS.fullmatch(value) is not None


#: What each scope lets an app do, in words for the consent page.
SCOPE_DESCRIPTIONS = {
    "read": "See your orders, payments, customers and account details",
    "write": "Create and change orders, payments and refunds on your behalf",
    "admin": "Manage your account settings, users and API keys",
}


def describe_scope(scope: str) -> str:
    return SCOPE_DESCRIPTIONS.get(scope, f"Use the \u201c{scope}\u201d permission")


@dataclass(frozen=True, slots=True)
class AuthorizationTarget:
    """A known, active client and one of its registered redirect URIs."""

    client: Client
    redirect_uri: str
    redirect_uri_sent: bool


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A fully validated authorization request."""

    target: AuthorizationTarget
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    prompt: str | None = None
    #: The ``request_uri`` the request was pushed under (RFC 9126 §4); the decision spends
    #: it (:meth:`tokensmith.core.par.PushedRequests.spend`). ``None``: sent in the query.
    request_uri: str | None = field(default=None, repr=False)
    #: RFC 9449 §10: the thumbprint of the DPoP key the code is to be bound to.
    dpop_jkt: str | None = None
    #: The FAPI 2.0 rules apply (:mod:`tokensmith.core.profile`): the code lives at most
    #: ``FAPI2_CODE_TTL`` seconds.
    fapi2: bool = False
    #: RFC 9396 ``authorization_details``, validated, as canonical JSON text (``None``:
    #: none requested). What the consent page shows and the code carries.
    authorization_details: str | None = None
    #: RFC 8707 §2: the registered resources the request names
    #: (:meth:`tokensmith.core.resources.ResourceRegistry.authorize`).
    resources: tuple[str, ...] = ()
    #: Their names, for the consent page.
    resource_names: tuple[str, ...] = ()
    #: The consent resource the request names instead of ``authorization_details``
    #: (:mod:`tokensmith.core.consent_resources`); its details are the request's.
    consent_id: str | None = None

    @property
    def client(self) -> Client:
        return self.target.client

    @property
    def details(self) -> list[dict[str, Any]]:
        """The ``authorization_details`` objects (RFC 9396 §2), none if none requested."""
        return [] if self.authorization_details is None else load(self.authorization_details)

    @property
    def scope(self) -> str:
        return format_scope(self.scopes)


def _one(params: Params, name: str) -> str | None:
    """RFC 6749 §3.1: parameters must not repeat; an empty value counts as absent."""
    values = [v for v in params.get(name, ()) if v != ""]
    if len(params.get(name, ())) > 1:
        raise InvalidRequest(f"parameter {name!r} is repeated")
    return values[0] if values else None


def _loopback(parts: SplitResult) -> bool:
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact string match (RFC 9700 §2.1), except that the port of a loopback IP redirect
    URI may vary (RFC 8252 §7.3). ``localhost`` gets no such leeway (RFC 8252 §8.3)."""
    if registered == presented:
        return True
    reg, pre = split_uri(registered), split_uri(presented)
    if reg is None or pre is None or not (_loopback(reg) and _loopback(pre)):
        return False
    same = (reg.hostname, reg.path, reg.query, reg.fragment, reg.username, reg.password)
    return same == (pre.hostname, pre.path, pre.query, pre.fragment, pre.username, pre.password)


async def resolve_target(
    clients: ClientReader, params: Params, profiles: ProfilePolicy | None = None
) -> AuthorizationTarget:
    """Phase one: the client and the redirect URI. Errors here are never redirected.
    For a FAPI 2.0 client (``profiles``) the request must name its ``redirect_uri``, and
    it must be a registered one exactly, loopback ports included (FAPI 2.0 §5.3.2.2)."""
    client_id = _one(params, "client_id")
    if client_id is None:
        raise InvalidRequest("client_id is missing")
    if not valid_client_id(client_id):
        raise InvalidClient("this app is not registered, or no longer active")
    client = await clients.get_client(client_id)
    if client is None or not client.active:
        raise InvalidClient("this app is not registered, or no longer active")
    presented = _one(params, "redirect_uri")
    fapi2 = profiles is not None and profiles.fapi2(client)
    if presented is None:
        if len(client.redirect_uris) != 1 or fapi2:
            raise InvalidRequest("redirect_uri is missing")
        return AuthorizationTarget(client, client.redirect_uris[0], False)
    if fapi2:
        if presented not in client.redirect_uris:
            raise InvalidRequest("redirect_uri is not registered for this app (exact match)")
    elif not any(redirect_uri_matches(r, presented) for r in client.redirect_uris):
        raise InvalidRequest("redirect_uri is not registered for this app")
    return AuthorizationTarget(client, presented, True)


def validate_request(
    target: AuthorizationTarget,
    params: Params,
    policy: PartnerPolicy,
    types: DetailsTypes = DEFAULT_TYPES,
    *,
    fapi2: bool = False,
) -> AuthorizationRequest:
    """Phase two (RFC 6749 §4.1.1, RFC 7636 §4.3). Errors are redirected to the client.
    Extensions that would change the request's meaning are refused, not ignored
    (:mod:`tokensmith.core.extensions`). ``authorization_details`` (RFC 9396 §2) is
    validated against ``types`` and the client's own (§10). ``fapi2``: the FAPI 2.0 rules
    (§5.3.2.2): PKCE with S256 from every client, and no public client. ``resource`` may
    repeat (RFC 8707 §2); no other parameter may."""
    for name in params:
        if name != "resource":
            _one(params, name)
    present = {n for n in params if n != "resource" and _one(params, n) is not None}
    refuse_unsupported(present, authorization=True)
    response_type = _one(params, "response_type")
    if response_type is None:
        raise InvalidRequest("response_type is missing")
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    client = target.client
    if AUTHORIZATION_CODE not in client.grant_types:
        raise UnauthorizedClient("this app may not use the authorization code flow")
    if fapi2 and client.public:
        raise UnauthorizedClient("public clients are not allowed under the FAPI 2.0 profile")
    state = _one(params, "state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise InvalidRequest(f"state is longer than {MAX_STATE_LENGTH} characters")
    scopes = resolve_scope(_one(params, "scope"), client.scopes, client.granted_default_scopes())
    challenge = check_challenge(
        _one(params, "code_challenge"),
        _one(params, "code_challenge_method"),
        required=client.public or policy.require_pkce or fapi2,
    )
    raw_details = _one(params, "authorization_details")
    consent_id = _one(params, "consent_id")
    if raw_details is not None and consent_id is not None:
        raise InvalidRequest("send authorization_details or consent_id, not both")
    details = None
    if raw_details is not None:
        details = types.parse(raw_details, client.authorization_details_types)
    return AuthorizationRequest(
        target,
        scopes,
        state,
        challenge,
        _one(params, "prompt"),
        dpop_jkt=_dpop_jkt(params),
        fapi2=fapi2,
        authorization_details=details,
        consent_id=consent_id,
    )


def _dpop_jkt(params: Params) -> str | None:
    """RFC 9449 §10: ``dpop_jkt``, the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key
    the code is to be bound to."""
    jkt = _one(params, "dpop_jkt")
    if jkt is not None and not _JKT.fullmatch(jkt):
        raise InvalidRequest("dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638, 43 characters)")
    return jkt


def response_uri(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """The redirect URI with ``params`` added to its query (RFC 6749 §3.1.2 keeps the
    existing query component)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


async def issue_code(
    store: CodeWriter,
    clock: Clock,
    rand: Randomness,
    request: AuthorizationRequest,
    user: User,
    policy: PartnerPolicy,
    issuer_tag: str,
    family_id: str | None = None,
) -> str:
    """RFC 6749 §4.1.2: a single-use code, stored as a hash, bound to the issuer (its
    :func:`~tokensmith.core.issuers.issuer_tag`), client, redirect URI, PKCE challenge,
    merchant, user, scope, DPoP key (``dpop_jkt``, RFC 9449 §10) and consent resource;
    valid ``policy.code_ttl`` seconds, at most ``FAPI2_CODE_TTL`` under FAPI 2.0. Its
    redemption starts the token family ``family_id`` (a new one if ``None``)."""
    if user.merchant_id is None:
        raise ValueError("only a merchant's user can authorize an app")
    now = clock.now()
    plain = new_token(rand, now)
    ttl = min(policy.code_ttl, FAPI2_CODE_TTL) if request.fapi2 else policy.code_ttl
    await store.add_code(
        AuthorizationCode(
            code_hash=token_key(plain),
            client_id=request.client.client_id,
            redirect_uri=request.target.redirect_uri,
            redirect_uri_sent=request.target.redirect_uri_sent,
            code_challenge=request.code_challenge,
            merchant_id=user.merchant_id,
            user_id=user.user_id,
            scope=request.scope,
            family_id=family_id or new_family_id(rand),
            issued_at=now,
            expires_at=now + ttl,
            issuer_tag=issuer_tag,
            dpop_jkt=request.dpop_jkt,
            authorization_details=request.authorization_details,
            resources=" ".join(request.resources) or None,
            consent_id=request.consent_id,
        )
    )
    return plain


async def consent_covers(store: ConsentStore, user: User, request: AuthorizationRequest) -> bool:
    """Whether a remembered consent covers every requested scope. Public clients are never
    approved silently (RFC 8252 §8.6: their identity cannot be assured), nor is a request
    with ``prompt=consent``, nor one with ``authorization_details`` (RFC 9396: each payment
    or access is the user's to approve, shown as it is), nor one naming a consent resource."""
    if (
        request.client.public
        or request.prompt == "consent"
        or request.authorization_details
        or request.consent_id
    ):
        return False
    consent = await store.get_consent(user.user_id, request.client.client_id)
    return consent is not None and set(request.scopes) <= set(parse_scope(consent.scope))


async def remember_consent(
    store: ConsentStore, clock: Clock, user: User, request: AuthorizationRequest
) -> None:
    """Remember the approval, adding to what was approved before."""
    old = await store.get_consent(user.user_id, request.client.client_id)
    scopes = dict.fromkeys((*(parse_scope(old.scope) if old else ()), *request.scopes))
    await store.save_consent(
        Consent(user.user_id, request.client.client_id, format_scope(scopes), clock.now())
    )
