"""The hot path (:mod:`tokensmith.web.fastpath`): declared by the routes, wrapped by the
app's middleware like every other route, and answering its errors the same way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.conftest import Harness, WithState, make_settings
from tokensmith.web.app import create_app, middleware
from tokensmith.web.context import STATE_KEY
from tokensmith.web.dialects.compat import DIALECT_PATHS
from tokensmith.web.fastpath import HotRoute, TokensmithApp

#: The token endpoints, and the PAR endpoint (RFC 9126), which authenticates clients as they do.
TOKEN_ENDPOINTS = {
    "/oauth/token",
    "/oauth/introspect",
    "/oauth/revoke",
    "/oauth/par",
    *DIALECT_PATHS.values(),
}


class Recorder:
    """A middleware that notes each request it sees."""

    seen: list[tuple[str, str]]

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def _gone(request: Request) -> Response:
    raise ClientDisconnect()


def test_the_hot_routes_are_the_token_endpoints_the_app_declares(tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"))
    hot = {r.path for r in app.routes if isinstance(r, HotRoute)}
    assert hot == TOKEN_ENDPOINTS


async def test_a_middleware_given_to_the_app_sees_the_hot_posts_too() -> None:
    seen: list[tuple[str, str]] = []
    app = TokensmithApp(
        routes=[HotRoute("/t", _ok, methods=["GET", "POST"]), Route("/other", _ok)],
        middleware=[Middleware(Recorder, seen=seen)],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://x") as c:
        assert (await c.post("/t")).text == "ok"
        assert (await c.get("/t")).text == "ok"
        assert (await c.get("/other")).text == "ok"
    assert seen == [("POST", "/t"), ("GET", "/t"), ("GET", "/other")]


async def test_a_bug_on_the_hot_path_is_a_logged_server_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    app = TokensmithApp(
        routes=[HotRoute("/oauth/token", _boom, methods=["POST"])], middleware=middleware()
    )
    async with _client(app, harness) as c:
        r = await c.post("/oauth/token")
    assert r.status_code == 500
    assert r.json() == {"error": "server_error", "error_description": "internal error"}
    assert any(rec.exc_info and "a bug" in str(rec.exc_info[1]) for rec in caplog.records)


async def test_a_client_that_left_the_hot_path_gets_no_answer(harness: Harness) -> None:
    app = TokensmithApp(
        routes=[HotRoute("/oauth/token", _gone, methods=["POST"])], middleware=middleware()
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/oauth/token",
        "headers": [],
        "query_string": b"",
        "state": {STATE_KEY: harness.ctx},
    }
    await app(scope, receive, send)
    assert sent == []


def _client(app: ASGIApp, harness: Harness) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(WithState(app, {STATE_KEY: harness.ctx}))
    return httpx.AsyncClient(transport=transport, base_url="https://auth.example.test")
