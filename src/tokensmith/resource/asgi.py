"""Starlette / FastAPI integration: an ASGI middleware and a scope guard.

* :class:`BearerAuthMiddleware` reads ``Authorization: Bearer`` (RFC 6750 §2.1), validates
  the token and stores the :class:`AccessToken` in ``request.state.access_token``
  (``scope["state"]["access_token"]``; None for anonymous requests).
* :func:`require_scopes` returns a guard usable as ``Depends(require_scopes("write"))``
  in FastAPI and as a decorator on Starlette endpoints.

Failures follow RFC 6750 §3: 401 with a bare challenge when no token was sent,
400 ``invalid_request`` for a malformed header, 401 ``invalid_token``,
403 ``insufficient_scope`` with ``scope=``; 503 if the token cannot be checked at all.

With a validator whose ``dpop`` is ``allowed`` or ``required``, ``Authorization: DPoP``
is taken too (RFC 9449 §7): the proof is checked against the request's method and URL,
and the challenges follow RFC 9449 §7.1 (``invalid_dpop_proof``, ``use_dpop_nonce``).

With a validator whose ``mtls`` is ``allowed`` or ``required``, a certificate-bound token
(RFC 8705 §3) passes only with the certificate its TLS proxy forwarded; the header is read
only from the validator's ``trusted_proxies``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any, Protocol, TypeVar, overload

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .dpop import DEFAULT_DPOP_ALGORITHMS, DPoPVerifier
from .errors import (
    BearerError,
    InsufficientScope,
    InvalidRequest,
    MissingToken,
    Scheme,
    ValidationUnavailable,
)
from .mtls import CertificateBinding, refuse_bound
from .validator import AccessToken, refuse_bound_bearer

__all__ = [
    "AsyncValidator",
    "BearerAuthMiddleware",
    "ScopeGuard",
    "authenticate",
    "bearer_exception_handler",
    "extract_bearer",
    "extract_credentials",
    "render_for",
    "require_scopes",
]

logger = logging.getLogger("tokensmith.resource")

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MAX_HEADER = 16 * 1024
_F = TypeVar("_F", bound=Callable[..., Any])


class AsyncValidator(Protocol):
    """What the middleware and guards need from a validator."""

    realm: str | None

    def validate(self, token: str) -> Awaitable[AccessToken]:
        """Validate a bearer token string."""
        ...


def extract_credentials(values: Iterable[str], *, dpop: bool = False) -> tuple[Scheme, str] | None:
    """The scheme (``bearer``, or with ``dpop`` also ``dpop``) and the token from
    ``Authorization`` header values (RFC 6750 §2.1, RFC 9449 §7.1).

    Returns None when there is no such credential (another scheme counts as none);
    raises :class:`InvalidRequest` for a malformed one or several ``Authorization``
    headers.
    """
    values = list(values)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    value = values[0]
    if len(value) > _MAX_HEADER:
        raise InvalidRequest("Authorization header too long")
    name, _, rest = value.strip().partition(" ")
    scheme = name.lower()
    if scheme != "bearer" and not (dpop and scheme == "dpop"):
        return None
    token = rest.strip()
    if not token:
        raise InvalidRequest(f"empty {scheme} token")
    if not _TOKEN68.fullmatch(token):
        raise InvalidRequest(f"malformed {scheme} token")
    return ("dpop" if scheme == "dpop" else "bearer"), token


def extract_bearer(values: Iterable[str]) -> str | None:
    """The bearer token from ``Authorization`` header values (RFC 6750 §2.1); see
    :func:`extract_credentials`."""
    found = extract_credentials(values)
    return None if found is None else found[1]


def _header_values(scope: Scope, name: bytes = b"authorization") -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


def _dpop_verifier(validator: object) -> DPoPVerifier | None:
    """The validator's DPoP verifier when its ``dpop`` mode is on, else None."""
    verifier = getattr(validator, "dpop_verifier", None)
    if getattr(validator, "dpop", "off") == "off" or not isinstance(verifier, DPoPVerifier):
        return None
    return verifier


def _used_scheme(values: list[str]) -> Scheme:
    first = values[0].strip().partition(" ")[0].lower() if len(values) == 1 else ""
    return "dpop" if first == "dpop" else "bearer"


def render_for(exc: BearerError, validator: object, scope: Scope) -> BearerError:
    """``exc`` with the challenges of the validator's DPoP mode (RFC 9449 §7.1)."""
    verifier = _dpop_verifier(validator)
    if verifier is None:
        return exc
    mode = getattr(validator, "dpop", "allowed")
    algs = verifier.algorithms or DEFAULT_DPOP_ALGORITHMS
    return exc.with_dpop(mode, algs, _used_scheme(_header_values(scope)))


def _request_target(scope: Scope) -> tuple[str, str]:
    """The request URL without query (scheme and authority as Starlette sees them, the
    path as received) and that raw path: what ``htu`` is checked against."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else scope.get("path", "/")
    path = path.split("?", 1)[0]
    base = URL(scope={**scope, "path": "/", "query_string": b""})
    return f"{base.scheme}://{base.netloc}{path}", path


async def authenticate(validator: AsyncValidator, scope: Scope) -> AccessToken | None:
    """The request's validated token, or None when it carries no credential this API
    takes.  Raises :class:`BearerError`, not yet rendered for DPoP (see
    :func:`render_for`)."""
    verifier = _dpop_verifier(validator)
    found = extract_credentials(_header_values(scope), dpop=verifier is not None)
    if found is None:
        return None
    scheme, raw = found
    binding = getattr(validator, "mtls", None)
    if not isinstance(binding, CertificateBinding):
        binding = None
    if verifier is None:
        result = refuse_bound_bearer(await validator.validate(raw))
        if binding is None:
            refuse_bound(result.claims)
        else:
            binding.check(result.claims, _certificate(binding, scope))
        return result
    url, path = _request_target(scope)
    method = scope.get("method", "GET")
    check: Callable[..., Awaitable[AccessToken]] = getattr(validator, "authenticate")  # noqa: B009
    extra = {} if binding is None else {"certificate": _certificate(binding, scope)}
    return await check(
        scheme,
        raw,
        method=method,
        url=url,
        path=path,
        dpop_proofs=_header_values(scope, b"dpop"),
        **extra,
    )


def _certificate(binding: CertificateBinding, scope: Scope) -> Any:
    """The TLS client certificate the request's proxy forwarded (RFC 8705 §3), if any."""
    if binding.mode == "off":
        return None
    client = scope.get("client")
    peer = client[0] if client else None
    return binding.certificate(scope.get("headers", ()), peer)


class BearerAuthMiddleware:
    """ASGI middleware validating bearer tokens.

    A request without a bearer token passes through with ``access_token = None`` unless
    ``required=True`` (then 401, except for ``exempt_paths``); a request *with* a token
    that does not validate is answered here (RFC 6750 §3).  The validator is also put in
    ``scope["state"]["token_validator"]`` for the guards.
    """

    def __init__(
        self,
        app: ASGIApp,
        validator: AsyncValidator,
        *,
        realm: str | None = None,
        required: bool = False,
        exempt_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.validator = validator
        self.realm = realm if realm is not None else getattr(validator, "realm", None)
        self.required = required
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["token_validator"] = self.validator
        try:
            token = await authenticate(self.validator, scope)
            if token is None and self.required and scope.get("path") not in self.exempt_paths:
                raise MissingToken()
            state["access_token"] = token
        except BearerError as exc:
            exc = render_for(exc, self.validator, scope)
            await exc.to_response(self.realm)(scope, receive, send)
            return
        except Exception:
            logger.exception("bearer token validation failed unexpectedly")
            await ValidationUnavailable("validation error").to_response(self.realm)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


def _mark_coroutine_function(func: Callable[..., Any]) -> None:
    """Make ``asyncio.iscoroutinefunction`` / ``inspect.iscoroutinefunction`` report
    ``func`` as a coroutine function, so that FastAPI awaits what it returns."""
    marker = getattr(asyncio.coroutines, "_is_coroutine", None)
    if marker is not None:
        func._is_coroutine = marker  # type: ignore[attr-defined]
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(func)


class ScopeGuard:
    """Requires a valid bearer token carrying every scope in ``scopes``.

    * FastAPI: ``token: AccessToken = Depends(require_scopes("write"))``.
    * Starlette: ``@require_scopes("write")`` on an endpoint (function or method);
      errors become RFC 6750 responses.
    * Anywhere: ``token = await guard.check(request)``.

    The token comes from :class:`BearerAuthMiddleware` when installed; otherwise the
    guard validates the header itself with its ``validator`` (or
    ``request.app.state.token_validator``).
    """

    def __init__(
        self,
        scopes: Iterable[str],
        *,
        validator: AsyncValidator | None = None,
        realm: str | None = None,
    ) -> None:
        self.scopes = tuple(scopes)
        self.validator = validator
        self.realm = realm
        # What FastAPI sees: one parameter, the Starlette Request.
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(
                    "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
                )
            ],
            return_annotation=AccessToken,
        )

    def __repr__(self) -> str:
        return f"require_scopes{self.scopes!r}"

    def _realm(self, validator: AsyncValidator | None) -> str | None:
        if self.realm is not None:
            return self.realm
        return getattr(validator, "realm", None) if validator is not None else None

    def _validator_for(self, conn: HTTPConnection) -> AsyncValidator | None:
        if self.validator is not None:
            return self.validator
        state = conn.scope.get("state") or {}
        found = state.get("token_validator")
        if found is None and "app" in conn.scope:
            found = getattr(conn.app.state, "token_validator", None)
        return found

    async def check(self, conn: HTTPConnection) -> AccessToken:
        """Return the request's token or raise a :class:`BearerError` (with realm)."""
        validator = self._validator_for(conn)
        realm = self._realm(validator)
        state = conn.scope.setdefault("state", {})
        try:
            if "access_token" in state:
                token: AccessToken | None = state["access_token"]
            else:
                if validator is None:
                    raise RuntimeError(
                        "require_scopes: install BearerAuthMiddleware, pass validator=, "
                        "or set app.state.token_validator"
                    )
                token = await authenticate(validator, conn.scope)
                state["access_token"] = token
            if token is None:
                raise MissingToken()
            if not token.scopes.issuperset(self.scopes):
                raise InsufficientScope("the token lacks a required scope", scope=self.scopes)
        except BearerError as exc:
            raise render_for(exc, validator, conn.scope).with_realm(realm) from None
        return token

    @overload
    def __call__(self, request: HTTPConnection) -> Awaitable[AccessToken]: ...

    @overload
    def __call__(self, request: _F) -> _F: ...

    def __call__(self, request: Any) -> Any:
        if isinstance(request, HTTPConnection):
            return self.check(request)
        if callable(request):
            return self._decorate(request)
        raise TypeError("require_scopes(...) guards a request or decorates an endpoint")

    def _decorate(self, endpoint: _F) -> _F:
        is_async = inspect.iscoroutinefunction(endpoint)

        @functools.wraps(endpoint)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            conn = next((a for a in reversed(args) if isinstance(a, HTTPConnection)), None)
            if conn is None:
                conn = next(v for v in kwargs.values() if isinstance(v, HTTPConnection))
            try:
                await self.check(conn)
            except BearerError as exc:
                return exc.to_response()
            if is_async:
                return await endpoint(*args, **kwargs)
            return await run_in_threadpool(endpoint, *args, **kwargs)

        return guarded  # type: ignore[return-value]


_mark_coroutine_function(ScopeGuard.__call__)


def require_scopes(
    *scopes: str, validator: AsyncValidator | None = None, realm: str | None = None
) -> ScopeGuard:
    """A guard requiring a valid token with all of ``scopes`` (RFC 6750 §3.1)."""
    return ScopeGuard(scopes, validator=validator, realm=realm)


async def bearer_exception_handler(request: Request, exc: Exception) -> Response:
    """Optional Starlette/FastAPI exception handler rendering :class:`BearerError` with an
    RFC 6749-style JSON body: ``app.add_exception_handler(BearerError, ...)``."""
    if isinstance(exc, BearerError):
        return exc.to_response()
    raise exc
