"""Pushed authorization requests (RFC 9126), without HTTP.

A client posts its authorization request to ``/oauth/par`` (:meth:`PushedRequests.push`):
it authenticates as at the token endpoint (§2), the parameters are validated as
``/oauth/authorize`` validates them (§2.1; :mod:`tokensmith.core.authorize`), and it gets
a ``request_uri`` standing for them for ``par_lifetime`` seconds (§2.2). Its random part
carries 256 bits and only its hash is stored, with the parameters minus the client's
credentials (§2.1: those only authenticate the push).

At ``/oauth/authorize``, a request that names a ``request_uri`` and the ``client_id`` that
pushed it is the pushed request, and nothing else: every other parameter of the query is
ignored (§4; RFC 9101 §6.3) (:meth:`PushedRequests.resolve`). An unknown, expired, used or
another client's ``request_uri`` is ``invalid_request_uri``, shown to the user and never
redirected, since the redirect URI was in the pushed request.

The ``request_uri`` stays usable while the browser goes through the login and consent
pages, which carry it, and is spent by the decision (:meth:`PushedRequests.spend`): before
a code is issued or the denial is sent, once, by a conditional UPDATE of which concurrent
decisions win one (§4: one-time use).

Policy (§4-§6): with ``require_pushed_authorization_requests`` every client, and a client
whose ``require_par`` is set, or that follows the FAPI 2.0 profile
(:mod:`tokensmith.core.profile`), that client, must push its requests; one sent in the
query is refused with ``invalid_request`` (:meth:`PushedRequests.validate`).

A push may carry a DPoP proof (RFC 9449 §10.1): the code issued for it is then bound to
the proof's key, as with ``dpop_jkt`` (§10), which, if sent too, must name the same key.
The thumbprint is kept with the pushed parameters as ``dpop_jkt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tokensmith.core.authn import ClientAuthenticator
from tokensmith.core.authorization_details import DEFAULT_TYPES, DetailsTypes
from tokensmith.core.authorize import (
    AuthorizationRequest,
    AuthorizationTarget,
    resolve_target,
    validate_request,
)
from tokensmith.core.clock import Clock
from tokensmith.core.consent_resources import ConsentResources
from tokensmith.core.credentials import new_token, token_key
from tokensmith.core.dpop import DpopVerifier
from tokensmith.core.errors import (
    InvalidDpopProof,
    InvalidRequest,
    InvalidRequestUri,
    InvalidTarget,
    OAuthError,
)
from tokensmith.core.families import PartnerPolicy
from tokensmith.core.models import Client, PushedRequest
from tokensmith.core.ports import ClientStore, PushedRequestStore
from tokensmith.core.profile import ProfilePolicy
from tokensmith.core.randomness import Randomness
from tokensmith.core.requests import ClientCredentials, DpopRequest
from tokensmith.core.resources import RESOURCE, ResourceRegistry

__all__ = [
    "CLIENT_AUTHENTICATION",
    "REQUEST_URI_PREFIX",
    "ParPolicy",
    "Pushed",
    "PushedRequests",
    "ResolvedRequest",
]

Params = Mapping[str, Sequence[str]]

#: RFC 9126 §2.2: the ``request_uri`` is this URN and a random reference.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: Parameters of a push that only authenticate the client (§2.1); never stored.
CLIENT_AUTHENTICATION = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


@dataclass(frozen=True, slots=True)
class ParPolicy:
    """``lifetime``: seconds a ``request_uri`` stays usable (``par_lifetime``);
    ``required``: every client must push (``require_pushed_authorization_requests``)."""

    lifetime: int = 60
    required: bool = False


@dataclass(frozen=True, slots=True)
class Pushed:
    """RFC 9126 §2.2: the answer to a push."""

    request_uri: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    """An authorization request's parameters, and the ``request_uri`` they were pushed
    under (``None``: they came in the query)."""

    params: Params
    request_uri: str | None = field(default=None, repr=False)


def _single(params: Params, name: str) -> str | None:
    """RFC 6749 §3.1: a parameter appears once; an empty value counts as absent."""
    values = params.get(name, ())
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name!r} is repeated")
    return values[0] if values and values[0] else None


class PushedRequests:
    """The PAR endpoint and the authorization endpoint's use of what it stored."""

    def __init__(
        self,
        store: PushedRequestStore,
        clients: ClientStore,
        authenticator: ClientAuthenticator,
        clock: Clock,
        rand: Randomness,
        partner: PartnerPolicy,
        policy: ParPolicy,
        issuer_tag: str,
        types: DetailsTypes = DEFAULT_TYPES,
        resources: ResourceRegistry | None = None,
        *,
        profiles: ProfilePolicy | None = None,
        dpop: DpopVerifier | None = None,
        consents: ConsentResources | None = None,
    ) -> None:
        self._store = store
        #: The consent resources a request may name (``consent_id``); ``None`` refuses one.
        self.consents = consents
        #: Which clients follow FAPI 2.0 (and so must push, RFC 9126 §5).
        self.profiles = profiles or ProfilePolicy()
        #: Checks a DPoP proof sent with a push (RFC 9449 §10.1); ``None`` refuses one.
        self.dpop = dpop
        self._clients = clients
        self._authenticator = authenticator
        self._clock = clock
        self._rand = rand
        self._partner = partner
        self.policy = policy
        self._issuer_tag = issuer_tag
        #: The ``authorization_details`` types accepted (RFC 9396 §2).
        self.types = types
        #: The registered resources (RFC 8707); without it, ``resource`` is refused.
        self._resources = resources

    def required_for(self, client: Client) -> bool:
        """Whether ``client`` may send its authorization requests only by PAR (§4): so the
        server says, or the client's ``require_par``, or the FAPI 2.0 profile."""
        return self.policy.required or client.require_par or self.profiles.fapi2(client)

    # -- the PAR endpoint ----------------------------------------------------------------

    async def push(
        self,
        form: Mapping[str, str],
        creds: ClientCredentials | None,
        source: str,
        dpop: DpopRequest | None = None,
    ) -> Pushed:
        """RFC 9126 §2.1: authenticate the client as the token endpoint does, refuse a
        ``request_uri`` and a ``client_id`` other than the client's, validate the request as
        the authorization endpoint would, and store it; with a DPoP proof (RFC 9449
        §10.1), bound to its key. Raises the error to answer (§2.3)."""
        client = await self._authenticator.authenticate(creds, source)
        try:
            params = _request_of(form, client)
            target = await resolve_target(self._clients, params, self.profiles)
            fapi2 = self.profiles.fapi2(client)
            request = validate_request(target, params, self._partner, self.types, fapi2=fapi2)
            await self._with_resources(request, params)
            await self._with_consent(request)
            kept = dict(form)
            if dpop is not None:
                kept["dpop_jkt"] = await self._proof_key(dpop, form.get("dpop_jkt"))
            return await self._keep(client, kept)
        except OAuthError as exc:
            exc.client_id = client.client_id
            raise

    async def _proof_key(self, dpop: DpopRequest, dpop_jkt: str | None) -> str:
        """RFC 9449 §10.1: the thumbprint of the push's DPoP proof, which must be the
        ``dpop_jkt`` the push names, if it names one."""
        if self.dpop is None:
            raise InvalidDpopProof("DPoP is not enabled on this server", reason="dpop_disabled")
        jkt = (await self.dpop.verify(dpop)).jkt
        if dpop_jkt and dpop_jkt != jkt:
            raise InvalidDpopProof(
                "dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 §10.1)",
                reason="dpop_jkt_mismatch",
            )
        return jkt

    async def _keep(self, client: Client, form: Mapping[str, str]) -> Pushed:
        now = self._clock.now()
        reference = new_token(self._rand, now)
        lifetime = self.policy.lifetime
        kept = tuple((k, v) for k, v in form.items() if k not in CLIENT_AUTHENTICATION)
        await self._store.add_pushed_request(
            PushedRequest(
                request_hash=token_key(reference),
                client_id=client.client_id,
                params=kept,
                issuer_tag=self._issuer_tag,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        return Pushed(REQUEST_URI_PREFIX + reference, lifetime)

    # -- the authorization endpoint ------------------------------------------------------

    async def resolve(self, params: Params) -> ResolvedRequest:
        """The request's parameters: with a ``request_uri``, those pushed under it (only
        they count, §4); else its own. Raises ``invalid_request_uri`` for a ``request_uri``
        that is not the ``client_id``'s, or is expired or used: errors shown to the user."""
        request_uri = _single(params, "request_uri")
        if request_uri is None:
            return ResolvedRequest(params)
        client_id = _single(params, "client_id")
        if client_id is None:
            raise InvalidRequest("client_id is missing")
        pushed = await self._find(request_uri)
        if pushed is None or pushed.client_id != client_id:
            raise InvalidRequestUri("the request_uri is not one this app pushed")
        if pushed.used_at is not None:
            raise InvalidRequestUri("the request_uri was already used")
        if self._clock.now() >= pushed.expires_at:
            raise InvalidRequestUri("the request_uri has expired")
        return ResolvedRequest({k: [v] for k, v in pushed.params}, request_uri)

    async def validate(
        self, target: AuthorizationTarget, resolved: ResolvedRequest
    ) -> AuthorizationRequest:
        """:func:`~tokensmith.core.authorize.validate_request` on the resolved parameters,
        after the policy: a client that must push and did not is ``invalid_request`` (§4);
        then its resources (RFC 8707). Errors are redirected to the client."""
        if resolved.request_uri is None and self.required_for(target.client):
            raise InvalidRequest(
                "this app must push its authorization requests to the PAR endpoint (RFC 9126)"
            )
        fapi2 = self.profiles.fapi2(target.client)
        request = validate_request(target, resolved.params, self._partner, self.types, fapi2=fapi2)
        request = await self._with_resources(request, resolved.params)
        request = await self._with_consent(request)
        return replace(request, request_uri=resolved.request_uri)

    async def _with_consent(self, request: AuthorizationRequest) -> AuthorizationRequest:
        """The request with the details of the consent resource it names, which must be
        the client's and awaiting authorization (``invalid_request`` otherwise)."""
        if request.consent_id is None:
            return request
        if self.consents is None:
            raise InvalidRequest("consent resources are not enabled on this server")
        consent = await self.consents.awaiting(request.client.client_id, request.consent_id)
        return replace(request, authorization_details=consent.authorization_details)

    async def _with_resources(
        self, request: AuthorizationRequest, params: Params
    ) -> AuthorizationRequest:
        """RFC 8707 §2: the request with the resources it names, checked (``invalid_target``)."""
        if RESOURCE not in params:
            return request
        if self._resources is None:
            raise InvalidTarget("resource indicators (RFC 8707) are not supported here")
        return await self._resources.authorize(request, params)

    async def spend(self, request: AuthorizationRequest) -> None:
        """Mark the request's ``request_uri`` used (§4), at the decision, before the code
        is issued or the denial sent: of concurrent decisions one gets through and the
        others ``invalid_request_uri``. Nothing to do for a request sent in the query."""
        if request.request_uri is None:
            return
        key = _key(request.request_uri)
        now = self._clock.now()
        if key is None or not await self._store.use_pushed_request(
            key, request.client.client_id, now
        ):
            raise InvalidRequestUri("the request_uri was already used, or has expired")

    async def _find(self, request_uri: str) -> PushedRequest | None:
        key = _key(request_uri)
        if key is None:
            return None
        pushed = await self._store.find_pushed_request(key)
        return pushed if pushed is not None and pushed.issuer_tag == self._issuer_tag else None


def _key(request_uri: str) -> str | None:
    """The stored key of a ``request_uri`` of ours (the hash of its reference), else None."""
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        return None
    reference = request_uri[len(REQUEST_URI_PREFIX) :]
    return token_key(reference) if reference else None


def _request_of(form: Mapping[str, str], client: Client) -> Params:
    """The pushed authorization request's parameters (§2.1): no ``request_uri``, and the
    ``client_id`` of the client that authenticated."""
    if "request_uri" in form:
        raise InvalidRequest("request_uri must not be pushed (RFC 9126 §2.1)")
    client_id = form.get("client_id")
    if client_id is None:
        raise InvalidRequest("client_id is missing")
    if client_id != client.client_id:
        raise InvalidRequest("client_id is not the authenticated client's")
    return {k: [v] for k, v in form.items() if k not in CLIENT_AUTHENTICATION}
