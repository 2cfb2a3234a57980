"""Who acts in a request, as the core's services record it in audit events
(:class:`~tokensmith.core.audit.By`): the logged-in user and the peer address."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from tokensmith.core.audit import By
from tokensmith.core.models import User
from tokensmith.web.context import ctx_of, source_address

__all__ = ["by_user", "source_of"]


def source_of(request: HTTPConnection) -> str:
    """The peer address (behind trusted proxies, the client's)."""
    return source_address(request, ctx_of(request).settings.trusted_proxies)


def by_user(request: HTTPConnection, user: User) -> By:
    """``user:<id>`` from this request's address."""
    return By.user(user.user_id, source_of(request))
