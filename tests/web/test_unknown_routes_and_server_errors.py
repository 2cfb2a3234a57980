"""Unknown paths and methods answer JSON 404/405, an HTML page under the browser pages'
paths; an unhandled error answers ``server_error``."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.conftest import Harness


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "allow"),
    [
        ("GET", "/nope", 404, "not_found", None),
        ("POST", "/oauth/token/extra", 404, "not_found", None),
        ("DELETE", "/.well-known/openid-configuration", 404, "not_found", None),
        ("POST", "/healthz", 405, "invalid_request", "GET, HEAD"),
        ("PUT", "/metrics", 405, "invalid_request", "GET, HEAD"),
        ("POST", "/.well-known/jwks.json", 405, "invalid_request", "GET, HEAD"),
        ("TRACE", "/oauth/token", 405, "invalid_request", "POST"),
        ("FOO", "/o/token/", 405, "invalid_request", "POST"),
        ("GET", "/oauth/introspect", 405, "invalid_request", None),
    ],
    ids=lambda v: str(v),
)
async def test_unknown_paths_and_methods_answer_rfc6749_json(
    harness: Harness, method: str, path: str, status: int, error: str, allow: str | None
) -> None:
    r = await harness.http.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == error and set(body) <= {"error", "error_description"}
    if allow is not None:
        assert set(r.headers["allow"].split(", ")) == set(allow.split(", "))


@pytest.mark.parametrize("method", ["TRACE", "FOO", "GET", "PUT"])
async def test_wrong_method_on_tbc_path_is_problem_json(harness: Harness, method: str) -> None:
    r = await harness.http.request(method, "/v2/tpay/access-token")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["allow"] == "POST"
    body = r.json()
    assert set(body) == {"type", "title", "status", "detail", "systemCode", "code"}
    assert body["status"] == "405" and body["systemCode"].startswith("tpay-access-token.405.")


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("PUT", "/login", 405, "GET, HEAD, POST"),
        ("GET", "/logout", 405, "POST"),
        ("DELETE", "/oauth/authorize", 405, "GET, HEAD"),
        ("GET", "/oauth/authorize/decision", 405, "POST"),
        ("POST", "/account/apps", 405, "GET, HEAD"),
        ("GET", "/oauth/consents/abc/withdraw", 405, "POST"),
        ("PATCH", "/panel/keys", 405, "GET, HEAD, POST"),
        ("GET", "/panel/nope", 404, None),
        ("GET", "/account/nope", 404, None),
    ],
    ids=lambda v: str(v),
)
async def test_unknown_paths_and_methods_under_the_pages_answer_an_html_page(
    harness: Harness, method: str, path: str, status: int, allow: str | None
) -> None:
    r = await harness.http.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "form-action 'self';" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers  # no session is made for a request no page takes
    if allow is not None:
        assert set(r.headers["allow"].split(", ")) == set(allow.split(", "))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_unhandled_error_is_logged_and_answers_server_error_without_details(
    harness: Harness,
) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("internal detail that must not leak")

    harness.app.router.routes.append(Route("/boom", boom))
    web_log, sink = logging.getLogger("tokensmith.web"), _Records()
    web_log.addHandler(sink)
    try:
        r = await harness.http.get("/boom")
    finally:
        web_log.removeHandler(sink)
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": "server_error", "error_description": "internal error"}
    assert b"internal detail" not in r.content
    [record] = sink.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.route == "/boom"  # type: ignore[attr-defined]


class _HalfSent:
    """A raw ASGI endpoint that fails after it started its response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")


async def test_unhandled_error_after_the_response_started_is_not_masked(harness: Harness) -> None:
    """Once headers are out a second response cannot be sent; the error propagates."""
    harness.app.router.routes.append(Route("/half", _HalfSent()))
    with pytest.raises(RuntimeError, match="mid-stream"):
        await harness.http.get("/half")
