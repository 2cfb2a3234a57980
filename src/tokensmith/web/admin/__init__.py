"""The admin REST API under ``/admin/v1`` (docs/admin-api.md): JSON operations
(:mod:`tokensmith.web.admin.resources`), its OpenAPI 3.1 document and an offline docs
page. Mounted beside the other routes, not on the token endpoints' hot path."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from tokensmith.web.admin.framework import PREFIX, Operation, problem
from tokensmith.web.admin.openapi import admin_openapi
from tokensmith.web.admin.resources import OPERATIONS
from tokensmith.web.context import ctx_of
from tokensmith.web.dialects.oauth import json_response
from tokensmith.web.ui.pages import security_headers

__all__ = ["admin_mount"]

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_DOCS = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tokensmith admin API</title>
<link rel="stylesheet" href="/static/admin-docs.css">
<script src="/static/admin-docs.js" defer></script>
</head>
<body>
<header>
<h1>tokensmith admin API <small>/admin/v1</small></h1>
<p>Every operation of <a href="/admin/v1/openapi.json">openapi.json</a>. Get an access token
with <code>client_credentials</code> from <code>/oauth/token</code> for a client registered
with the admin scopes, paste it here, and try an operation. See docs/admin-api.md.</p>
<label>Access token <input id="token" type="password" autocomplete="off" size="60"></label>
</header>
<main id="operations"><p>Loading the operations...</p></main>
</body>
</html>
"""


async def openapi(request: Request) -> Response:
    document = admin_openapi(ctx_of(request).settings.issuer_url)
    return json_response(document, 200, {"cache-control": "no-cache"})


async def docs(request: Request) -> Response:
    headers = security_headers()
    headers["content-security-policy"] += "; script-src 'self'; connect-src 'self'"
    return HTMLResponse(_DOCS, headers=headers)


async def unknown(request: Request) -> Response:
    """A path under ``/admin/v1`` that names no operation, or a method it lacks."""
    return problem(404, "not_found", "no such admin operation", instance=request.url.path)


class _Path:
    """The operations of one path by method; another method is 405 with ``Allow``."""

    def __init__(self, operations: dict[str, Operation]) -> None:
        self._operations = operations
        self._allow = ", ".join(sorted(operations))

    async def serve(self, request: Request) -> Response:
        op = self._operations.get(request.method)
        if op is None:
            return problem(
                405,
                "method_not_allowed",
                f"use {self._allow}",
                instance=request.url.path,
                headers={"allow": self._allow},
            )
        return await op.endpoint(request)


class _AnyCharacterMount(Mount):
    """A mount whose paths may hold any character. Starlette's path patterns use ``.``,
    which stops at a newline (``%0A`` in a URL): such a request would fall out of the
    mount to the app's plain-JSON 404 instead of this API's problem+json one."""

    def __init__(self, path: str, routes: list[BaseRoute]) -> None:
        super().__init__(path, routes=routes)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


class _AnyCharacterRoute(Route):
    """:class:`_AnyCharacterMount`'s catch-all: ``{rest:path}`` matching a newline too."""

    def __init__(self, path: str, endpoint: Any, methods: list[str]) -> None:
        super().__init__(path, endpoint, methods=methods)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def admin_mount() -> BaseRoute:
    """``/admin/v1``: the operations, ``openapi.json`` and ``docs``; anything else 404."""
    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    by_path: dict[str, dict[str, Operation]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.path, {})[op.method] = op
    routes += [Route(path, _Path(ops).serve, methods=_METHODS) for path, ops in by_path.items()]
    routes.append(_AnyCharacterRoute("/{rest:path}", unknown, methods=_METHODS))
    return _AnyCharacterMount(PREFIX, routes=routes)
