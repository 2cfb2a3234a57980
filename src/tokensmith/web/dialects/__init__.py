"""Wire dialects: how a token and an error look on each endpoint.

One render function per error dialect (RFC 6749 JSON, RFC 7807 problem+json) and
one token shape per seed document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from tokensmith.core.errors import OAuthError
from tokensmith.core.models import IssuedToken
from tokensmith.core.tokens import IssuePolicy

__all__ = ["Dialect"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """An endpoint's wire format and defaults."""

    name: str
    policy: IssuePolicy
    render_token: Callable[[IssuedToken], dict[str, Any]]
    render_error: Callable[[OAuthError], Response]
    #: The grant used when the request names none (tpay sends no ``grant_type``).
    implicit_grant: str | None = None
    #: Grants this endpoint accepts; ``None`` accepts every registered grant.
    grants: frozenset[str] | None = None
