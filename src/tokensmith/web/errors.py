"""What no endpoint answers: unknown paths and methods, the last-resort 500, and the 503
of a database outage.

Every response of the server is in the dialect of where it was sent: JSON for the OAuth
endpoints and everything else, an HTML page under the browser pages' paths
(:data:`~tokensmith.web.ui.PAGE_ROOTS`). Starlette's plain-text 404/405 and its bare 500
never reach a client.

Error map (what reaches this module, and the answer it becomes; the ``error`` codes and
statuses of the ``OAuthError`` classes are mapped in :mod:`tokensmith.core.errors`)::

    Exception                        500 server_error, RFC 6749 JSON (LastResortMiddleware)
     +-- HTTPException               404 not_found / 405 invalid_request, RFC 6749 JSON;
     |                               405 on a token endpoint: its dialect, Allow: POST;
     |                               404/405 under a page path: an HTML page
     +-- ClientDisconnect            no answer: the client left
     +-- OAuthError                  (tokensmith.core.errors)
          +-- TemporarilyUnavailable 503 temporarily_unavailable, Retry-After: the token
          |                          endpoint's dialect, the HTML 503 page for a page,
          |                          else RFC 6749 JSON
          +-- MethodNotAllowed       405 invalid_request in the token endpoint's dialect
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.web.context import ctx_of_scope
from tokensmith.web.dialects import Dialect
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.dialects.oauth import json_response, render_error
from tokensmith.web.endpoints.token import MethodNotAllowed
from tokensmith.web.observe import method_label, route_label
from tokensmith.web.ui import error_page, is_page_path
from tokensmith.web.ui.pages import make_environment, unavailable_page

__all__ = [
    "LastResortMiddleware",
    "http_exception",
    "server_error",
    "unavailable",
]

log = logging.getLogger("tokensmith.web")


def _dialect_of(request: Request) -> Dialect | None:
    """The dialect of the token endpoint the request reached, if it reached one."""
    ctx = ctx_of_scope(request.scope)
    path = route_label(request.scope)
    for name, dialect_path in DIALECT_PATHS.items():
        if dialect_path == path and ctx is not None and name in ctx.dialects:
            dialect: Dialect = ctx.dialects[name]
            return dialect
    return None


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 (any ``HTTPException``): an HTML page under the pages' paths;
    in the endpoint's dialect when the path is a token endpoint (a method no route lists);
    else RFC 6749-style JSON."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 405:
        headers["allow"] = _allowed(request) or headers.get("allow", "")
    if is_page_path(request.scope.get("path", "")) and ctx_of_scope(request.scope) is not None:
        response = error_page(request, status, *_PAGE_WORDS.get(status, _PAGE_WORDS[400]))
        response.headers.update(headers)
        return response
    dialect = _dialect_of(request)
    if dialect is not None and status == 405:
        response = dialect.render_error(MethodNotAllowed("use POST"))
        response.headers["allow"] = "POST"
        return response
    body = {
        "error": "not_found" if status == 404 else "invalid_request",
        "error_description": "no such endpoint" if status == 404 else str(exc.detail),
    }
    return json_response(body, status, headers)


def unavailable(request: Request, exc: TemporarilyUnavailable) -> Response:
    """RFC 6749 §4.1.2.1 ``temporarily_unavailable``, 503 with ``Retry-After``, in the form
    of what the request reached: a token endpoint's dialect, the HTML 503 page for a page
    (``app.page_paths``), else RFC 6749 JSON."""
    dialect = _dialect_of(request)
    if dialect is not None:
        return dialect.render_error(exc)
    if route_label(request.scope) in getattr(request.app, "page_paths", ()):
        ctx = ctx_of_scope(request.scope)
        templates = ctx.ui.templates if ctx is not None else make_environment()
        return unavailable_page(templates, exc.retry_after)
    return render_error(exc)


def _allowed(request: Request) -> str:
    """Every method the routes of this path take (RFC 9110 §15.5.6); Starlette lists only
    the first route's when several share a path (one per method)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


_PAGE_WORDS = {
    400: ("Bad request", "The browser sent a request this page can\u2019t read."),
    404: ("Not found", "There is no page at this address."),
    405: ("Not allowed", "This page can\u2019t be used that way. Go back and try again."),
}


def server_error(scope: Scope) -> Response:
    """Log the exception being handled and answer RFC 6749 ``server_error`` without details."""
    log.exception(
        "unhandled error",
        extra={"event": "server.error", "route": route_label(scope), "method": method_label(scope)},
    )
    return json_response(
        {"error": "server_error", "error_description": "internal error"},
        500,
        {"cache-control": "no-store"},
    )


class LastResortMiddleware:
    """Turns an unhandled exception into an RFC 6749 ``server_error`` and logs it, and a
    database outage that got this far into its 503 (:func:`unavailable`).

    Nothing a client sends should get here; the fuzz tests check that it never does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        def send_tracking(message: Message) -> Awaitable[None]:
            # not a coroutine of its own: the app awaits ``send``'s, one frame fewer a send
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            return send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            return  # the client left; there is no one to answer
        except TemporarilyUnavailable as exc:
            if started:
                raise
            await unavailable(Request(scope, receive), exc)(scope, receive, send)
        except Exception:
            if started:
                log.exception("unhandled error after the response started")
                raise
            await server_error(scope)(scope, receive, send)
