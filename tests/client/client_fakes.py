"""A small, scriptable, misbehaving authorization server + API for client tests.

One logic object (``FakeAS``) with three adapters: a sync ``httpx.MockTransport``
handler, an async one, and a Starlette app (for ``httpx.ASGITransport`` and uvicorn).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CLIENT_ID = "svc:payments"  # contains a ':' on purpose (RFC 6749 §2.3.1 encoding)
CLIENT_SECRET = "s3cr3t+pass word%/xyz"  # '+', ' ', '%', '/' on purpose
APIKEY = "tbc-apikey-0123456789"
ISSUER = "https://as.test"


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Drop(Exception):
    """Script action: process the request, then lose the response."""


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class RefreshState:
    active: bool = True
    rotated_at: float | None = None
    replays: int = 0


@dataclass
class FakeAS:
    clock: Callable[[], float] = time.time
    lifetime: int = 3600
    grace: float = 10.0
    delay: float = 0.0
    auth_methods: list[str] = field(
        default_factory=lambda: ["client_secret_basic", "client_secret_post"]
    )
    issuer: str = ISSUER
    echo_secret_in_errors: bool = False

    def __post_init__(self) -> None:
        self.script: deque[Any] = deque()
        self.recorded: list[Recorded] = []
        self.tokens: dict[str, float] = {}
        self.revoked: set[str] = set()
        self.refresh: dict[str, RefreshState] = {}
        self.codes: dict[str, str] = {}
        self.api_calls: list[str | None] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    # -- helpers used by tests -----------------------------------------------------
    @property
    def token_requests(self) -> list[Recorded]:
        return [r for r in self.recorded if r.method == "POST" and not r.path.startswith("/api/")]

    def issue_code(self, code: str = "the-code") -> str:
        self.codes[code] = "issued"
        return code

    def give_refresh_token(self, rt: str = "rt-0") -> str:
        self.refresh[rt] = RefreshState()
        return rt

    # -- core --------------------------------------------------------------------------
    def dispatch(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        form = dict(parse_qsl(body.decode())) if body else {}
        with self._lock:
            self.recorded.append(Recorded(method, path, headers, form))
            if method == "GET" and path == "/.well-known/oauth-authorization-server":
                return 200, {}, self.metadata()
            if path.startswith("/api/"):
                return self._api(headers)
            action = self.script.popleft() if self.script and method == "POST" else None
            if isinstance(action, tuple) and action[0] == 429:
                return 429, {"Retry-After": str(action[1])}, {"error": "slow_down"}
            if isinstance(action, int):
                return action, {}, {"error": "server_error", "error_description": "boom"}
            if action == "html502":
                return 502, {"content-type": "text/html"}, "<html>bad gateway</html>"
            if action == "connect":
                raise httpx.ConnectError("connection refused")
            result = self._token(path, headers, form)
            if action == "drop":
                raise httpx.ReadError("connection reset after the request was processed")
            return result

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": self.issuer + "/o/token/",
            "authorization_endpoint": self.issuer + "/o/authorize/",
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "grant_types_supported": ["client_credentials", "authorization_code"],
        }

    def _api(self, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            self.api_calls.append(None)
            return 401, {"WWW-Authenticate": 'Bearer realm="api"'}, {"error": "missing"}
        token = auth[7:]
        self.api_calls.append(token)
        exp = self.tokens.get(token)
        if exp is None or token in self.revoked or self.clock() >= exp:
            return (
                401,
                {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
                {"error": "invalid_token"},
            )
        return 200, {}, {"ok": True}

    def _client_ok(self, headers: dict[str, str], form: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode()
            cid, _, secret = raw.partition(":")
            return unquote_plus(cid) == CLIENT_ID and unquote_plus(secret) == CLIENT_SECRET
        return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET

    def _new_access(self) -> tuple[str, float]:
        n = next(self._counter)
        token = f"at-{n}-" + "x" * 20
        self.tokens[token] = self.clock() + self.lifetime
        return token, self.tokens[token]

    def _error(
        self, status: int, code: str, desc: str, received: str = ""
    ) -> tuple[int, dict[str, str], Any]:
        if self.echo_secret_in_errors:
            desc += f" (got secret {received})"  # a careless server echoing what it got
        return status, {}, {"error": code, "error_description": desc}

    @staticmethod
    def _received_secret(headers: dict[str, str], form: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            return unquote_plus(base64.b64decode(auth[6:]).decode().partition(":")[2])
        return form.get("client_secret", "")

    def _token(
        self, path: str, headers: dict[str, str], form: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        if path == "/oauth/auth":  # tpay
            if "grant_type" in form or not self._client_ok({}, form):
                return 401, {}, {"error": "invalid_client"}
            token, _ = self._new_access()
            return (
                200,
                {},
                {
                    "issued_at": int(self.clock()),
                    "scope": form.get("scope", "read"),
                    "token_type": "Bearer",
                    "expires_in": self.lifetime,
                    "access_token": token,
                },
            )
        if path == "/v2/tpay/access-token":  # TBC
            problem = {"content-type": "application/problem+json"}
            if headers.get("apikey") != APIKEY:
                return (
                    401,
                    problem,
                    {
                        "type": "https://developers.tbcbank.ge/errors",
                        "title": "Unauthorized",
                        "status": 401,
                        "detail": "Invalid apikey",
                        "systemCode": "tpay-access-token.401.001",
                        "code": "invalid_apikey",
                    },
                )
            if not self._client_ok({}, form):
                return (
                    400,
                    problem,
                    {
                        "type": "https://developers.tbcbank.ge/errors",
                        "title": "Bad Request",
                        "status": "400",
                        "detail": "Invalid client credentials",
                        "systemCode": "tpay-access-token.400.001",
                        "code": "invalid_client",
                    },
                )
            token, exp = self._new_access()
            jwt = _unsigned_jwt({"exp": int(exp), "sub": CLIENT_ID})
            self.tokens[jwt] = exp
            return 200, {}, {"access_token": jwt, "expires_in": 86400, "token_type": "Bearer"}
        # RFC 6749 token endpoint
        if not self._client_ok(headers, form):
            return self._error(
                401,
                "invalid_client",
                "client authentication failed",
                self._received_secret(headers, form),
            )
        grant = form.get("grant_type")
        if grant == "client_credentials":
            token, _ = self._new_access()
            body: dict[str, Any] = {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.lifetime,
            }
            if "scope" in form:
                body["scope"] = form["scope"]
            return 200, {"Cache-Control": "no-store"}, body
        if grant == "authorization_code":
            code = form.get("code", "")
            if self.codes.pop(code, None) != "issued":
                return self._error(400, "invalid_grant", "code invalid or used")
            return 200, {}, self._user_tokens()
        if grant == "refresh_token":
            rt = form.get("refresh_token", "")
            state = self.refresh.get(rt)
            if state is None:
                return self._error(400, "invalid_grant", "unknown refresh token")
            if not state.active:
                within = (
                    state.rotated_at is not None and self.clock() - state.rotated_at <= self.grace
                )
                if not within or state.replays >= 1:
                    return self._error(400, "invalid_grant", "refresh token reused")
                state.replays += 1
            state.active = False
            state.rotated_at = self.clock()
            return 200, {}, self._user_tokens()
        return self._error(400, "unsupported_grant_type", f"grant {grant!r}")

    def _user_tokens(self) -> dict[str, Any]:
        token, _ = self._new_access()
        rt = f"rt-{next(self._counter)}"
        self.refresh[rt] = RefreshState()
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "refresh_token": rt,
            "scope": "payments:read",
        }

    # -- adapters ------------------------------------------------------------------------
    def _response(self, status: int, headers: dict[str, str], body: Any) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, headers=headers, text=body)
        return httpx.Response(status, headers=headers, json=body)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.delay and request.method == "POST":
            time.sleep(self.delay)
        status, headers, body = self.dispatch(
            request.method, request.url.path, dict(request.headers), request.read()
        )
        return self._response(status, headers, body)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        if self.delay and request.method == "POST":
            await asyncio.sleep(self.delay)
        status, headers, body = self.dispatch(
            request.method, request.url.path, dict(request.headers), await request.aread()
        )
        return self._response(status, headers, body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.async_handler)

    def asgi_app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            if self.delay and request.method == "POST":
                await asyncio.sleep(self.delay)
            try:
                status, headers, body = self.dispatch(
                    request.method,
                    request.url.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    await request.body(),
                )
            except (Drop, httpx.TransportError):
                status, headers, body = 500, {}, {"error": "server_error"}
            if isinstance(body, str):
                return Response(body, status, headers)
            headers.setdefault("content-type", "application/json")
            return Response(json.dumps(body), status, headers)

        return Starlette(
            routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])],
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.sig"


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
