"""A guard for RFC 9396 ``authorization_details``: :func:`require_authorization_details`.

An access token issued for a rich authorization request carries the details the user
approved, in the JWT claim ``authorization_details`` or in the introspection answer
(RFC 9396 §9.1). The guard finds the token as :func:`~.asgi.require_scopes` does, keeps
the token's objects of the required ``type`` that the endpoint's ``check`` accepts (a
payment's amount, the account it reads...), and hands them to the endpoint: FastAPI gets a
:class:`DetailsToken` (an :class:`AccessToken` with ``details``), a Starlette endpoint finds
them in ``request.state.authorization_details``.

RFC 9396 defines no error for a resource server (its §12 leaves the decision to it); a
token whose details do not allow the request is answered as RFC 6750 §3.1 answers a token
without the privileges a request needs: 403 ``insufficient_scope``, here without
``scope=`` (more scope would not help) and with an ``error_description`` naming the type.

With ``consume=True`` the details must also come from a single-use consent (a payment)
that the server agrees to spend for this request: after the check accepts, the guard
calls the validator's ``consume`` (the issuer's ``/oauth/consents/consume``), and the
endpoint runs only if the server answers that it spent the consent now. A consent spent
before, revoked or expired is 403 ``insufficient_scope`` (:class:`ConsentNotActive`); a
server that cannot be asked is 503, and the endpoint never runs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from .asgi import (
    AsyncValidator,
    ScopeGuard,
    _header_values,
    _mark_coroutine_function,
    extract_credentials,
    render_for,
)
from .errors import BearerError, ConsentNotActive, InsufficientScope, ValidationUnavailable
from .validator import AccessToken

logger = logging.getLogger("tokensmith.resource")

__all__ = [
    "DetailsCheck",
    "DetailsGuard",
    "DetailsToken",
    "details_of",
    "require_authorization_details",
]

#: Whether one ``authorization_details`` object allows this request: sync or async.
DetailsCheck = Callable[[Mapping[str, Any], HTTPConnection], bool | Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class DetailsToken(AccessToken):
    """A validated token, with the ``authorization_details`` objects that allow the request
    (of the guard's type, accepted by its check), in the token's order."""

    details: tuple[Mapping[str, Any], ...] = ()
    #: With ``consume=True``: the consent the server spent for this request.
    consent: Mapping[str, Any] | None = None


def details_of(token: AccessToken) -> list[Mapping[str, Any]]:
    """The token's ``authorization_details`` objects (RFC 9396 §9.1); none if it has none."""
    found = token.claims.get("authorization_details")
    if not isinstance(found, list):
        return []
    return [d for d in found if isinstance(d, Mapping)]


class DetailsGuard(ScopeGuard):
    """Requires a valid token with ``scopes`` and an ``authorization_details`` object of
    ``type`` that ``check`` accepts; see :func:`require_authorization_details`."""

    def __init__(
        self,
        type_: str,
        *,
        check: DetailsCheck | None = None,
        scopes: Iterable[str] = (),
        validator: AsyncValidator | None = None,
        realm: str | None = None,
        consume: bool = False,
    ) -> None:
        super().__init__(scopes, validator=validator, realm=realm)
        self.type = type_
        self.predicate = check
        self.consume = consume
        self.__signature__ = self.__signature__.replace(return_annotation=DetailsToken)

    def __repr__(self) -> str:
        consume = ", consume=True" if self.consume else ""
        return f"require_authorization_details({self.type!r}, scopes={self.scopes!r}{consume})"

    async def check(self, conn: HTTPConnection) -> DetailsToken:
        """The request's token with the details that allow it, or a :class:`BearerError`."""
        token = await super().check(conn)
        allowed = [d for d in details_of(token) if d.get("type") == self.type]
        if self.predicate is not None:
            allowed = [d for d in allowed if await self._accepts(d, conn)]
        validator = self._validator_for(conn)
        try:
            if not allowed:
                raise InsufficientScope(
                    f"the token's authorization_details do not allow this request ({self.type})"
                )
            consent = await self._consume(token, conn, validator) if self.consume else None
        except BearerError as exc:
            error: BearerError = render_for(exc, validator, conn.scope)
            raise error.with_realm(self._realm(validator)) from None
        state = conn.scope.setdefault("state", {})
        state["authorization_details"] = tuple(allowed)
        if consent is not None:
            state["consent"] = consent
        return DetailsToken(
            sub=token.sub,
            client_id=token.client_id,
            scopes=token.scopes,
            exp=token.exp,
            claims=token.claims,
            kind=token.kind,
            details=tuple(allowed),
            consent=consent,
        )

    async def _consume(
        self, token: AccessToken, conn: HTTPConnection, validator: AsyncValidator | None
    ) -> Mapping[str, Any]:
        """Have the server spend the token's consent for this request; raises unless it
        answers that it did, now."""
        consent_id = token.claims.get("consent_id")
        if not isinstance(consent_id, str) or not consent_id:
            raise ConsentNotActive("the token carries no consent")
        consume = getattr(validator, "consume", None)
        found = extract_credentials(_header_values(conn.scope), dpop=True)
        if not callable(consume) or found is None:
            logger.error("consume=True needs a validator with consume() and the request's token")
            raise ValidationUnavailable("consent cannot be checked")
        try:
            if inspect.iscoroutinefunction(consume):
                consent = await consume(found[1])
            else:  # SyncTokenValidator: its HTTP call blocks, keep it off the event loop
                consent = await run_in_threadpool(consume, found[1])
        except BearerError:
            raise
        except Exception:
            logger.exception("consuming consent %s failed", consent_id)
            raise ValidationUnavailable("consent cannot be checked") from None
        if not isinstance(consent, Mapping) or consent.get("consent_id") != consent_id:
            logger.error("the consume endpoint answered for another consent than %s", consent_id)
            raise ValidationUnavailable("consent cannot be checked")
        return consent

    async def _accepts(self, detail: Mapping[str, Any], conn: HTTPConnection) -> bool:
        assert self.predicate is not None
        result = self.predicate(detail, conn)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)


_mark_coroutine_function(DetailsGuard.__call__)


def require_authorization_details(
    type_: str,
    *,
    check: DetailsCheck | None = None,
    scopes: Iterable[str] = (),
    validator: AsyncValidator | None = None,
    realm: str | None = None,
    consume: bool = False,
) -> DetailsGuard:
    """A guard requiring a valid token (with every scope of ``scopes``) whose RFC 9396
    ``authorization_details`` hold an object of ``type_`` that ``check(detail, request)``
    (sync or async; none: any) accepts. FastAPI: ``Depends(...)`` gives a
    :class:`DetailsToken`; Starlette: ``@require_authorization_details(...)`` puts the
    objects in ``request.state.authorization_details``. Else 403 ``insufficient_scope``.

    ``consume=True``: the token's single-use consent is then spent at the server
    (``validator.consume``) before the endpoint runs, which it does only if the server
    spent it now (the consent is in ``request.state.consent`` / ``DetailsToken.consent``);
    spent before, revoked or expired: 403 ``insufficient_scope``; server unreachable:
    503."""
    return DetailsGuard(
        type_, check=check, scopes=scopes, validator=validator, realm=realm, consume=consume
    )
