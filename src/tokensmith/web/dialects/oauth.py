"""RFC 6749 JSON: §5.1 successful responses, §5.2 errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from tokensmith.core.errors import (
    InvalidClient,
    OAuthError,
    RateLimited,
    TemporarilyUnavailable,
    UseDpopNonce,
)
from tokensmith.core.models import IssuedToken

__all__ = ["NO_STORE", "JsonResponse", "json_response", "render_error", "render_token"]

#: RFC 6749 §5.1: token responses must not be cached.
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


class JsonResponse(Response):
    """A JSON answer (every token answer is one of these), built through Starlette's public
    ``Response`` constructor: :meth:`render` serializes the content with orjson, and
    :meth:`init_headers` builds the header list directly, the same headers Starlette's
    would send for a JSON body, without its general-purpose checks (a status without a
    body, a ``text/*`` charset, headers that set their own length or type)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        raw.append((b"content-length", b"%d" % len(self.body)))
        raw.append((b"content-type", self.media_type.encode("latin-1")))
        self.raw_headers = raw


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, media: str = ""
) -> Response:
    return JsonResponse(body, status, headers, media or "application/json")


def error_headers(exc: OAuthError) -> dict[str, str]:
    """``WWW-Authenticate`` after a failed Basic login (§5.2), ``Retry-After`` on 429 and
    on 503 ``temporarily_unavailable`` (RFC 9110 §10.2.3), ``DPoP-Nonce`` on
    ``use_dpop_nonce`` (RFC 9449 §8)."""
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient) and exc.basic:
        headers["www-authenticate"] = 'Basic realm="tokensmith", charset="UTF-8"'
    if isinstance(exc, RateLimited | TemporarilyUnavailable):
        headers["retry-after"] = str(exc.retry_after)
    if isinstance(exc, UseDpopNonce):  # RFC 9449 §8
        headers["dpop-nonce"] = exc.nonce
    return headers


def render_error(exc: OAuthError) -> Response:
    """RFC 6749 §5.2 error body."""
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    return json_response(body, exc.status, error_headers(exc))


def render_token(t: IssuedToken) -> dict[str, Any]:
    """RFC 6749 §5.1 fields, RFC 9396 §7 ``authorization_details`` when granted, and the
    ``consent_id`` of the consent resource the token was granted under."""
    body: dict[str, Any] = {
        "access_token": t.access_token,
        "token_type": t.token_type,
        "expires_in": t.expires_in,
        "scope": t.scope,
    }
    if t.refresh_token is not None:
        body["refresh_token"] = t.refresh_token
    if t.authorization_details is not None:
        body["authorization_details"] = orjson.loads(t.authorization_details)
    if t.consent_id is not None:  # the consent resource the token acts under
        body["consent_id"] = t.consent_id
    return body
