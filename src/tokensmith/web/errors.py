"""JSON for what no endpoint answers: unknown paths and methods, and the last-resort 500.

Every response of the server is JSON in a dialect; Starlette's plain-text 404/405 and
its bare 500 never reach a client.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.web.dialects.oauth import json_response

__all__ = ["LastResortMiddleware", "http_exception", "method_label", "route_label"]

log = logging.getLogger("tokensmith.web")

#: Methods that get their own metrics label; any other is counted as ``other``.
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

_HTTP_ERRORS = {404: "not_found", 405: "invalid_request"}


def method_label(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in KNOWN_METHODS else "other"


def route_label(scope: Scope) -> str:
    """The matched route's template, or ``other``: never the raw path (unbounded, may hold
    anything a client typed)."""
    return str(getattr(scope.get("route"), "path", "other"))


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 (and any other ``HTTPException``) as RFC 6749-style JSON."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    body = {
        "error": _HTTP_ERRORS.get(status, "invalid_request"),
        "error_description": "no such endpoint" if status == 404 else str(exc.detail),
    }
    headers = dict(exc.headers or {})
    return json_response(body, status, headers)


class LastResortMiddleware:
    """Turns an unhandled exception into an RFC 6749 ``server_error`` and logs it.

    Nothing a client sends should get here; the fuzz tests check that it never does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            return  # the client left; there is no one to answer
        except Exception:
            log.exception(
                "unhandled error",
                extra={
                    "event": "server.error",
                    "route": route_label(scope),
                    "method": method_label(scope),
                },
            )
            if started:
                raise
            response = json_response(
                {"error": "server_error", "error_description": "internal error"},
                500,
                {"cache-control": "no-store"},
            )
            await response(scope, receive, send)
