"""RFC 6749 JSON: §5.1 successful responses, §5.2 errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from tokensmith.core.errors import InvalidClient, OAuthError, RateLimited, TemporarilyUnavailable
from tokensmith.core.models import IssuedToken

__all__ = ["NO_STORE", "JsonResponse", "json_response", "render_error", "render_token"]

#: RFC 6749 §5.1: token responses must not be cached.
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


class JsonResponse(Response):
    """A JSON answer rendered with orjson (every token answer is one of these): Starlette's
    ``Response`` built through its public constructor, with :meth:`render` serializing
    the content."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, media: str = ""
) -> Response:
    return JsonResponse(
        content=body, status_code=status, headers=headers, media_type=media or "application/json"
    )


def error_headers(exc: OAuthError) -> dict[str, str]:
    """``WWW-Authenticate`` after a failed Basic login (§5.2), ``Retry-After`` on 429 and
    on 503 ``temporarily_unavailable`` (RFC 9110 §10.2.3)."""
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient) and exc.basic:
        headers["www-authenticate"] = 'Basic realm="tokensmith", charset="UTF-8"'
    if isinstance(exc, RateLimited | TemporarilyUnavailable):
        headers["retry-after"] = str(exc.retry_after)
    return headers


def render_error(exc: OAuthError) -> Response:
    """RFC 6749 §5.2 error body."""
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    return json_response(body, exc.status, error_headers(exc))


def render_token(t: IssuedToken) -> dict[str, Any]:
    """RFC 6749 §5.1 fields."""
    body: dict[str, Any] = {
        "access_token": t.access_token,
        "token_type": t.token_type,
        "expires_in": t.expires_in,
        "scope": t.scope,
    }
    if t.refresh_token is not None:
        body["refresh_token"] = t.refresh_token
    return body
