"""Grant handlers, one module each, dispatched on ``grant_type`` (RFC 6749 §4)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokensmith.core.authorization_details import DEFAULT_TYPES, DetailsTypes
from tokensmith.core.clock import Clock
from tokensmith.core.models import Client, IssuedToken
from tokensmith.core.ports import GrantStore
from tokensmith.core.randomness import Randomness
from tokensmith.core.requests import TokenRequest
from tokensmith.core.tokens import IssuePolicy, TokenMinter

if TYPE_CHECKING:
    from tokensmith.core.consent_resources import ConsentResources
    from tokensmith.core.resources import ResourceRegistry

__all__ = ["Grant", "GrantContext"]


@dataclass(frozen=True, slots=True)
class GrantContext:
    """What every grant may use."""

    store: GrantStore
    minter: TokenMinter
    clock: Clock
    rand: Randomness
    policy: IssuePolicy
    #: The DPoP key the tokens of this request are bound to (RFC 9449 §5), if any.
    jkt: str | None = None
    #: The ``x5t#S256`` of the TLS client certificate they are bound to (RFC 8705 §3).
    x5t: str | None = None
    #: The ``authorization_details`` types accepted (RFC 9396 §6).
    details: DetailsTypes = DEFAULT_TYPES
    #: The registered resources (RFC 8707); ``None``: a ``resource`` is ``invalid_target``.
    resources: ResourceRegistry | None = None
    #: The consent resources (:mod:`tokensmith.core.consent_resources`): a code of a
    #: consent no longer authorized is refused.
    consents: ConsentResources | None = None


Grant = Callable[[GrantContext, TokenRequest, Client], Awaitable[IssuedToken]]
GrantTable = Mapping[str, Grant]
