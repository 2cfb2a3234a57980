"""Resource indicators (RFC 8707): access tokens restricted to the APIs they are for.

An API is registered as a :class:`Resource`: its identifier (an absolute URI without a
fragment, §2), a name for the consent page, the scopes that mean something to it, and
optionally its own access-token lifetime and format. A client names the resources it wants
a token for with ``resource`` (repeatable) at the authorization endpoint, the PAR endpoint
(RFC 9126) and the token endpoint; the token's ``aud`` is then those identifiers (RFC 9068
§3: one resource, a string), its scope the requested scopes that those resources define,
its lifetime the shortest the resources set.

Which client may have a token for which resource is decided by scope: a client obtains a
token for a resource only for scopes it holds that the resource defines, and every
resource named must get at least one (else ``invalid_target``). An explicit ``scope``
naming a scope none of the named resources defines is ``invalid_scope``.

At the token endpoint a ``resource`` must be one the grant named, when the authorization
request named any (§2.2): a refresh token granted for A and B gives a token for A alone
(downscoping), never for C. A grant that named none may be narrowed to any registered
resource. Without ``resource`` a token from such a grant is for every resource granted.

Several values may be sent as repeated ``resource`` parameters; where one parameter value
must carry them (a form field, a stored pushed request), they are separated by spaces,
which no URI contains (RFC 3986 §2).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tokensmith.core.admin import AdminError
from tokensmith.core.clock import Clock
from tokensmith.core.errors import InvalidScope, InvalidTarget
from tokensmith.core.models import Resource, TokenFormat
from tokensmith.core.ports import ResourceReader, ResourceStore
from tokensmith.core.scopes import parse_scope
from tokensmith.core.uris import split_uri

if TYPE_CHECKING:
    from tokensmith.core.authorize import AuthorizationRequest

__all__ = [
    "MAX_RESOURCES",
    "RESOURCE",
    "Resource",
    "ResourceAdmin",
    "ResourceRegistry",
    "Target",
    "check_identifier",
    "format_resources",
    "parse_resources",
    "token_target",
]

#: The parameter (RFC 8707 §2).
RESOURCE = "resource"
#: The most resources one request may name.
MAX_RESOURCES = 16
#: RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def check_identifier(value: str) -> str:
    """RFC 8707 §2: an absolute URI (RFC 3986 §4.3) without a fragment; else
    ``invalid_target``."""
    parts = split_uri(value)
    if parts is None or not _SCHEME.fullmatch(parts.scheme) or value[-1:] == ":":
        raise InvalidTarget("a resource must be an absolute URI (RFC 8707 §2)")
    if "#" in value:
        raise InvalidTarget("a resource must not have a fragment (RFC 8707 §2)")
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        raise InvalidTarget("a resource must be an absolute URI (RFC 8707 §2)")
    return value


def parse_resources(values: Iterable[str]) -> tuple[str, ...]:
    """The resources ``values`` name (each value one URI, or several separated by spaces),
    in order, without repeats; each checked by :func:`check_identifier`."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(" "):
            if part:
                seen[check_identifier(part)] = None
    if len(seen) > MAX_RESOURCES:
        raise InvalidTarget(f"at most {MAX_RESOURCES} resources may be named")
    return tuple(seen)


def format_resources(identifiers: Sequence[str]) -> str | None:
    """Identifiers as stored (space-separated), ``None`` for none."""
    return " ".join(identifiers) or None


@dataclass(frozen=True, slots=True)
class Target:
    """The registered resources one access token is for."""

    resources: tuple[Resource, ...]

    @property
    def identifiers(self) -> tuple[str, ...]:
        return tuple(r.identifier for r in self.resources)

    @property
    def audience(self) -> str | list[str]:
        """The JWT ``aud``: a string for one resource, else an array (RFC 9068 §3)."""
        ids = self.identifiers
        return ids[0] if len(ids) == 1 else list(ids)

    @property
    def ttl(self) -> int | None:
        """The shortest lifetime a resource sets, ``None`` if none sets one."""
        ttls = [r.access_token_ttl for r in self.resources if r.access_token_ttl]
        return min(ttls) if ttls else None

    @property
    def token_format(self) -> TokenFormat | None:
        """``opaque`` if any resource asks for it (nothing is readable in it), else ``jwt``
        if one asks for that, else ``None`` (the client's or server's)."""
        formats = {r.token_format for r in self.resources}
        if "opaque" in formats:
            return "opaque"
        return "jwt" if "jwt" in formats else None

    def narrow(self, scopes: Sequence[str], *, explicit: bool) -> tuple[str, ...]:
        """The scopes of ``scopes`` these resources define. ``explicit``: the request named
        them, and one no resource defines is ``invalid_scope``; else they are the defaults
        or the grant's, and the others are dropped. Every resource must keep at least one
        scope (a client holding none of a resource's scopes gets no token for it)."""
        defined = {s for r in self.resources for s in r.scopes}
        if explicit:
            extra = [s for s in scopes if s not in defined]
            if extra:
                raise InvalidScope(f"scope not defined by the resource: {' '.join(extra)}")
        kept = tuple(s for s in scopes if s in defined)
        for resource in self.resources:
            if not any(s in resource.scopes for s in kept):
                raise InvalidTarget(f"no scope of {resource.identifier} is granted to this client")
        return kept


class ResourceRegistry:
    """Looks resources up (through a read-through cache in the server) and applies them to
    authorization and token requests."""

    def __init__(
        self, reader: ResourceReader, close: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._reader = reader
        self._close = close

    async def aclose(self) -> None:
        """Let the reader's background reads finish (a cache's, at shutdown)."""
        if self._close is not None:
            await self._close()

    async def target(self, identifiers: Sequence[str]) -> Target:
        """The registered resources of ``identifiers``; an unknown one is ``invalid_target``."""
        found: list[Resource] = []
        for identifier in identifiers:
            resource = await self._reader.get_resource(identifier)
            if resource is None:
                raise InvalidTarget(f"the resource {identifier!r} is not registered")
            found.append(resource)
        return Target(tuple(found))

    async def authorize(
        self, request: AuthorizationRequest, params: Mapping[str, Sequence[str]]
    ) -> AuthorizationRequest:
        """§2 at the authorization endpoint: ``request`` with the resources its parameters
        name, and its scopes narrowed to theirs (:meth:`Target.narrow`)."""
        identifiers = parse_resources(params.get(RESOURCE, ()))
        if not identifiers:
            return request
        target = await self.target(identifiers)
        explicit = any(v.strip(" ") for v in params.get("scope", ()))
        scopes = target.narrow(request.scopes, explicit=explicit)
        names = tuple(r.name for r in target.resources)
        return replace(request, scopes=scopes, resources=identifiers, resource_names=names)

    async def for_token(self, requested: str | None, granted: str | None) -> Target | None:
        """§2.2 at the token endpoint: the resources the request names, each among those
        ``granted`` when the grant named some; without ``resource``, the granted ones."""
        allowed = tuple(granted.split(" ")) if granted else ()
        identifiers = parse_resources((requested,)) if requested else ()
        if not identifiers:
            return await self.target(allowed) if allowed else None
        if allowed:
            extra = [i for i in identifiers if i not in allowed]
            if extra:
                raise InvalidTarget(f"resource not granted: {' '.join(extra)}")
        return await self.target(identifiers)


async def token_target(
    registry: ResourceRegistry | None, params: Mapping[str, str], granted: str | None = None
) -> Target | None:
    """The target of a token request, ``None`` when neither it nor its grant names one
    (the common case: one dictionary lookup)."""
    requested = params.get(RESOURCE)
    if requested is None and granted is None:
        return None
    if registry is None:
        raise InvalidTarget("resource indicators (RFC 8707) are not supported here")
    return await registry.for_token(requested, granted)


class ResourceAdmin:
    """Registering APIs (the CLI). Errors are :class:`~tokensmith.core.admin.AdminError`
    saying what is wrong."""

    def __init__(self, store: ResourceStore, clock: Clock, max_ttl: int | None = None) -> None:
        self._store = store
        self._clock = clock
        self._max_ttl = max_ttl

    async def add(
        self,
        identifier: str,
        name: str,
        scopes: Sequence[str],
        access_token_ttl: int | None = None,
        token_format: TokenFormat | None = None,
    ) -> Resource:
        """Register an API: an absolute URI without a fragment (RFC 8707 §2), a name, at
        least one scope (RFC 6749 §3.3 tokens), a lifetime within ``max_ttl``."""
        try:
            check_identifier(identifier)
            parsed = parse_scope(" ".join(scopes))
        except (InvalidTarget, InvalidScope) as exc:
            raise AdminError(exc.description) from exc
        if not name.strip():
            raise AdminError("a resource needs a name")
        if not parsed:
            raise AdminError("a resource needs at least one scope")
        if access_token_ttl is not None and not 0 < access_token_ttl <= (self._max_ttl or 2**31):
            raise AdminError(
                f"the access-token lifetime must be 1 to {self._max_ttl} seconds"
                if self._max_ttl
                else "the access-token lifetime must be a positive number of seconds"
            )
        resource = Resource(
            identifier, name.strip(), parsed, access_token_ttl, token_format, self._clock.now()
        )
        try:
            await self._store.add_resource(resource)
        except KeyError as exc:
            raise AdminError(f"the resource {identifier} is already registered") from exc
        return resource

    async def listing(self) -> list[Resource]:
        return await self._store.list_resources()

    async def remove(self, identifier: str) -> bool:
        """Unregister an API: requests naming it are ``invalid_target`` from then on (within
        ``client_cache_ttl`` at the servers), tokens already issued stay valid until they
        expire."""
        return await self._store.remove_resource(identifier)
