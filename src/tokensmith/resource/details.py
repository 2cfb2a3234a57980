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
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from .asgi import AsyncValidator, ScopeGuard, _mark_coroutine_function, render_for
from .errors import BearerError, InsufficientScope
from .validator import AccessToken

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
    ) -> None:
        super().__init__(scopes, validator=validator, realm=realm)
        self.type = type_
        self.predicate = check
        self.__signature__ = self.__signature__.replace(return_annotation=DetailsToken)

    def __repr__(self) -> str:
        return f"require_authorization_details({self.type!r}, scopes={self.scopes!r})"

    async def check(self, conn: HTTPConnection) -> DetailsToken:
        """The request's token with the details that allow it, or a :class:`BearerError`."""
        token = await super().check(conn)
        allowed = [d for d in details_of(token) if d.get("type") == self.type]
        if self.predicate is not None:
            allowed = [d for d in allowed if await self._accepts(d, conn)]
        if not allowed:
            denied = InsufficientScope(
                f"the token's authorization_details do not allow this request ({self.type})"
            )
            validator = self._validator_for(conn)
            error: BearerError = render_for(denied, validator, conn.scope)
            raise error.with_realm(self._realm(validator))
        conn.scope.setdefault("state", {})["authorization_details"] = tuple(allowed)
        return DetailsToken(
            sub=token.sub,
            client_id=token.client_id,
            scopes=token.scopes,
            exp=token.exp,
            claims=token.claims,
            kind=token.kind,
            details=tuple(allowed),
        )

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
) -> DetailsGuard:
    """A guard requiring a valid token (with every scope of ``scopes``) whose RFC 9396
    ``authorization_details`` hold an object of ``type_`` that ``check(detail, request)``
    (sync or async; none: any) accepts. FastAPI: ``Depends(...)`` gives a
    :class:`DetailsToken`; Starlette: ``@require_authorization_details(...)`` puts the
    objects in ``request.state.authorization_details``. Else 403 ``insufficient_scope``."""
    return DetailsGuard(type_, check=check, scopes=scopes, validator=validator, realm=realm)
