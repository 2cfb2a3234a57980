"""Property-based tests: no request, however malformed, gets a 5xx or an error off-dialect.

Every example goes through the in-process ASGI client to one endpoint (or an unknown path),
with random bodies, headers, encodings, sizes and methods, and checks that the answer is
below 500 and, when it is an error, has exactly the shape of the endpoint's dialect:
RFC 6749 JSON everywhere except the TBC path, which answers RFC 7807 problem+json.
A handler on ``tokensmith.web`` records any use of the last-resort 500 handler; it must
stay unused.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Harness, make_settings, running_app
from tokensmith.core.admin import create_api_key
from tokensmith.core.clock import FrozenClock

TBC = "/v2/tpay/access-token"
TOKEN_PATHS = ["/oauth/token", "/oauth/auth", TBC, "/o/token/"]
FORM_PATHS = [*TOKEN_PATHS, "/oauth/introspect", "/oauth/revoke"]
READ_PATHS = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwks.json",
    "/healthz",
    "/metrics",
    "/openapi.json",
]
UNKNOWN_PATHS = ["/", "/oauth", "/oauth/token/", "/o/token", "/v2/tpay", "/.well-known/x", "/admin"]
ALL_PATHS = FORM_PATHS + READ_PATHS + UNKNOWN_PATHS
METHODS = [
    "POST",
    "POST",
    "POST",
    "GET",
    "HEAD",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "FOO",
]

OAUTH_ERROR_KEYS = {"error", "error_description"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "systemCode", "code"}

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@dataclass(repr=False)
class World:
    """The running app and real credentials, so random requests also reach deep paths."""

    h: Harness
    ids: list[str]
    secrets: list[str]
    apikeys: list[str]
    tokens: list[str]
    server_errors: list[logging.LogRecord] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.sink.append(record)


@pytest.fixture
async def world(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[World]:
    """On SQLite."""
    async with _world(f"sqlite:///{tmp_path / 'fuzz.db'}", tmp_path, clock) as w:
        yield w


@pytest.fixture
async def world_any(db_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[World]:
    """On SQLite and on PostgreSQL (which, unlike SQLite, rejects a NUL in text), for the
    tests whose input reaches the database."""
    async with _world(db_url, tmp_path, clock) as w:
        yield w


@contextlib.asynccontextmanager
async def _world(db_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[World]:
    settings_ = make_settings(
        tmp_path,
        db_url,
        # high limits, so the run explores more than the 429 path
        failures_per_client=100_000,
        failures_per_address=100_000,
        max_body_bytes=4096,
    )
    async with running_app(settings_, clock) as h:
        jwt_client, jwt_secret = await h.client(scope="read write admin introspection")
        opaque, opaque_secret = await h.client(token_format="opaque")
        basic_only, basic_secret = await h.client(basic_only=True)
        revoked, revoked_secret = await h.client()
        await h.ctx.clients.revoke_client(revoked.client_id, clock.now())
        _, apikey = await create_api_key(h.ctx.store, clock, h.ctx.rand, "fuzz app")
        tokens = [
            (await h.token(jwt_client.client_id, jwt_secret)).json()["access_token"],
            (await h.token(opaque.client_id, opaque_secret)).json()["access_token"],
        ]
        w = World(
            h,
            ids=[jwt_client.client_id, opaque.client_id, basic_only.client_id, revoked.client_id],
            secrets=[jwt_secret, opaque_secret, basic_secret, revoked_secret],
            apikeys=[apikey],
            tokens=tokens,
        )
        web_log = logging.getLogger("tokensmith.web")
        handler = _Collect(w.server_errors)
        web_log.addHandler(handler)
        try:
            yield w
        finally:
            web_log.removeHandler(handler)


# -- strategies --------------------------------------------------------------------------

NASTY_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from("\x00%+&=;:\n"),
    max_size=40,
)
#: Text that surely holds a control character (NUL, line breaks, DEL).
WITH_CONTROL = st.tuples(NASTY_TEXT, st.sampled_from("\x00\x00\x00\x01\n\r\t\x7f"), NASTY_TEXT).map(
    "".join
)
PARAM_NAMES = st.sampled_from(
    ["grant_type", "client_id", "client_secret", "scope", "token", "token_type_hint", "code"]
) | st.text(max_size=8)
GRANTS = st.sampled_from(
    [
        "client_credentials",
        "authorization_code",
        "refresh_token",
        "password",
        "",
        "CLIENT_CREDENTIALS",
    ]
)
SCOPES = st.sampled_from(
    ["read", "read write", "read write admin", "admin", "introspection", " ", "r\x00"]
)
FORM_CONTENT_TYPES = st.sampled_from(
    [
        b"application/x-www-form-urlencoded",
        b"application/x-www-form-urlencoded; charset=UTF-8",
        b"application/x-www-form-urlencoded;charset=latin-1",
        b'APPLICATION/X-WWW-FORM-URLENCODED ; charset="utf-8"',
    ]
)
CONTENT_TYPES = st.one_of(
    FORM_CONTENT_TYPES,
    FORM_CONTENT_TYPES,
    st.sampled_from(
        [
            b"application/json",
            b"multipart/form-data; boundary=xyz",
            b"text/plain",
            b"",
            b";;;",
            b"application/x-www-form-urlencoded\xff",
        ]
    ),
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
HEADER_BYTES = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


def _value(w: World) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(w.ids),
        st.sampled_from(w.secrets),
        st.sampled_from(w.tokens),
        GRANTS,
        SCOPES,
        NASTY_TEXT,
        st.integers(1000, 6000).map(lambda n: "v" * n),
    )


def _form_body(w: World) -> st.SearchStrategy[bytes]:
    # the parameters the endpoints read, each often present and often valid, then random
    # extra pairs; ``None`` leaves a parameter out
    def param(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
        return st.one_of(valid, valid, NASTY_TEXT, WITH_CONTROL, st.none())

    known = st.fixed_dictionaries(
        {
            "grant_type": param(st.just("client_credentials") | GRANTS),
            "client_id": param(st.sampled_from(w.ids)),
            "client_secret": param(st.sampled_from(w.secrets)),
            "scope": param(SCOPES),
            "token": param(st.sampled_from(w.tokens)),
        }
    ).map(lambda d: {k: v for k, v in d.items() if v is not None})
    extra = st.lists(st.tuples(PARAM_NAMES, _value(w)), max_size=4)
    pairs = st.tuples(known, extra).map(lambda t: list(t[0].items()) + t[1])
    encoding = st.sampled_from(["utf-8", "latin-1", "utf-16"])

    def encode(args: tuple[list[tuple[str, str]], str]) -> bytes:
        items, enc = args
        return urlencode(items, encoding=enc, errors="replace").encode("ascii")

    return st.tuples(pairs, encoding).map(encode)


RAW_BODY = st.one_of(
    st.binary(max_size=600),
    st.text(alphabet="%&=+;0123456789abcdefABCDEFxyz\x00 ", max_size=200).map(str.encode),
    st.integers(0, 200).map(lambda n: b"a=1&" * n),  # too many fields
    st.integers(4000, 4200).map(lambda n: b"grant_type=client_credentials&pad=" + b"x" * n),
)


def _authorization(w: World) -> st.SearchStrategy[bytes | None]:
    creds = st.tuples(
        st.sampled_from(w.ids) | NASTY_TEXT | WITH_CONTROL,
        st.sampled_from(w.secrets) | NASTY_TEXT | WITH_CONTROL,
    )
    return st.one_of(
        st.none(),
        st.none(),
        st.none(),
        st.none(),
        creds.map(lambda c: b"Basic " + base64.b64encode(f"{c[0]}:{c[1]}".encode())),
        creds.map(lambda c: b"Basic " + base64.b64encode(f"{c[0]}:{c[1]}".encode())),
        st.binary(max_size=60).map(lambda b: b"Basic " + base64.b64encode(b)),
        HEADER_BYTES.map(lambda b: b"Basic " + b),
        st.tuples(
            st.sampled_from([b"Bearer", b"basic", b"BASIC", b"Digest", b"", b"Basic\t"]),
            HEADER_BYTES,
        ).map(lambda t: t[0] + b" " + t[1]),
        HEADER_BYTES,
    )


CONTENT_LENGTH = st.one_of(
    st.none(),
    st.sampled_from(
        [b"0", b"5", b"99999999", b"-1", b"abc", b"\xb2", b"1e3", b" 12", b"00000000000000000001"]
    ),
)


# -- the checks --------------------------------------------------------------------------


def assert_well_formed(path: str, method: str, r: httpx.Response, w: World) -> None:
    assert r.status_code < 500, (path, method, r.status_code, r.content[:300])
    assert not w.server_errors, "the last-resort handler was used"
    if r.status_code < 400:
        return
    ctype = r.headers.get("content-type", "")
    if path == TBC and method not in ("HEAD",):
        assert ctype == "application/problem+json", (path, method, ctype, r.content[:200])
        body = r.json()
        assert set(body) == PROBLEM_KEYS, body
        assert all(isinstance(v, str) for v in body.values()), body
        assert body["status"] == str(r.status_code)
        assert body["systemCode"].startswith(f"tpay-access-token.{r.status_code}.")
        return
    if path == TBC:
        assert ctype == "application/problem+json", (path, method, ctype)
        return
    assert ctype == "application/json", (path, method, r.status_code, ctype, r.content[:200])
    if method == "HEAD":
        return
    body = r.json()
    assert isinstance(body, dict) and set(body) <= OAUTH_ERROR_KEYS and "error" in body, body
    assert all(isinstance(v, str) for v in body.values()), body
    assert body["error"], body


async def send(
    w: World,
    method: str,
    path: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> httpx.Response:
    request = w.h.http.build_request(method, path, content=body)
    # replace what httpx derived with the raw bytes, so lies and odd bytes reach the app as sent
    names = {name.lower() for name, _ in headers}
    raw = [(k, v) for k, v in request.headers.raw if k.lower() not in names | {b"content-length"}]
    raw += headers
    if b"content-length" not in names:
        raw.append((b"content-length", str(len(body)).encode()))
    request.headers = httpx.Headers(raw)
    return await w.h.http.send(request)


@st.composite
def form_requests(draw: st.DrawFn, w: World) -> tuple[str, str, bytes, list[tuple[bytes, bytes]]]:
    path = draw(st.sampled_from(FORM_PATHS))
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/x-www-form-urlencoded")]
    if draw(st.booleans()):  # else the body's client_id / client_secret speak
        headers.append((b"authorization", draw(_authorization(w).filter(bool))))
    if path == TBC and draw(st.integers(0, 3)):
        headers.append((b"apikey", draw(st.sampled_from(w.apikeys).map(str.encode) | HEADER_BYTES)))
    return "POST", path, draw(_form_body(w)), headers


@given(data=st.data())
@FUZZ
async def test_random_form_pairs_never_break_a_form_endpoint(
    world_any: World, data: st.DataObject
) -> None:
    method, path, body, headers = data.draw(form_requests(world_any))
    r = await send(world_any, method, path, body, headers)
    assert_well_formed(path, method, r, world_any)


@given(data=st.data())
@FUZZ
async def test_random_bytes_content_types_and_lengths_are_refused_in_dialect(
    world: World, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(FORM_PATHS))
    body = data.draw(RAW_BODY | _form_body(world))
    headers = [(b"content-type", data.draw(CONTENT_TYPES))]
    length = data.draw(CONTENT_LENGTH)
    if length is not None:
        headers.append((b"content-length", length))
    if data.draw(st.booleans()):
        headers.append((b"apikey", world.apikeys[0].encode()))
    r = await send(world, "POST", path, body, headers)
    assert_well_formed(path, "POST", r, world)


@given(data=st.data())
@FUZZ
async def test_random_headers_at_every_endpoint_get_a_dialect_answer(
    world: World, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(ALL_PATHS))
    method = data.draw(st.sampled_from(METHODS))
    headers = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [b"authorization", b"apikey", b"content-type", b"x-forwarded-for", b"accept"]
                )
                | st.from_regex(rb"\A[a-z][a-z0-9-]{0,15}\Z"),
                HEADER_BYTES,
            ),
            max_size=5,
        )
    )
    headers = [
        (k, v) for k, v in headers if k not in (b"content-length", b"host", b"transfer-encoding")
    ]
    body = data.draw(st.sampled_from([b"", b"grant_type=client_credentials"]) | RAW_BODY)
    r = await send(world, method, path, body, headers)
    assert_well_formed(path, method, r, world)


PATH_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=30
)


@given(
    path=st.one_of(
        PATH_TEXT.map(lambda t: "/" + quote(t, safe="/")),
        st.sampled_from(
            ["/%ff%fe", "/%00", "/..%2f..%2fetc/passwd", "//oauth/token", "/o/token/%2e"]
        ),
    ),
    method=st.sampled_from(METHODS),
)
@FUZZ
async def test_unknown_paths_and_methods_answer_json_404_or_405(
    world: World, path: str, method: str
) -> None:
    r = await send(world, method, path, b"", [])
    assert_well_formed(path, method, r, world)
    if r.request.url.path not in ALL_PATHS:  # httpx may normalise dot segments
        assert r.status_code == 404
        assert method == "HEAD" or r.json()["error"] == "not_found"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forged_tokens(w: World) -> st.SearchStrategy[str]:
    """Garbage, and JWTs that name this server's real ``kid`` but were not signed by it."""
    real_kid = jwt.get_unverified_header(w.tokens[0])["kid"]
    header = st.fixed_dictionaries(
        {
            "typ": st.sampled_from(["at+jwt", "JWT"]),
            "alg": st.sampled_from(["ES256", "none", "HS256", "RS256"]),
        },
        optional={"kid": st.just(real_kid) | st.text(max_size=20) | st.integers()},
    )
    claims = st.dictionaries(
        st.sampled_from(["iss", "exp", "jti", "client_id", "scope", "iat"]),
        st.none() | st.integers() | st.text(max_size=10) | st.floats(allow_nan=True),
    )
    forged = st.tuples(header, claims, st.binary(max_size=80)).map(
        lambda t: ".".join(
            [_b64(json.dumps(t[0]).encode()), _b64(json.dumps(t[1]).encode()), _b64(t[2])]
        )
    )
    return st.one_of(
        st.sampled_from(["a.b.c", "..", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.", "x" * 3000]),
        st.lists(st.binary(max_size=60).map(_b64), min_size=3, max_size=3).map(".".join),
        forged,
        forged,
        # a real token with its signature swapped for another's
        st.binary(min_size=1, max_size=80).map(
            lambda b: w.tokens[0].rsplit(".", 1)[0] + "." + _b64(b)
        ),
        NASTY_TEXT,
    )


@given(data=st.data(), path=st.sampled_from(["/oauth/introspect", "/oauth/revoke"]))
@FUZZ
async def test_introspect_and_revoke_survive_forged_and_garbage_tokens(
    world_any: World, data: st.DataObject, path: str
) -> None:
    world = world_any
    token = data.draw(_forged_tokens(world))
    # the introspecting client authenticates correctly, so the token itself is what is fuzzed
    body = urlencode({"token": token}).encode()
    auth = base64.b64encode(f"{world.ids[0]}:{world.secrets[0]}".encode())
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"authorization", b"Basic " + auth),
    ]
    r = await send(world, "POST", path, body, headers)
    assert_well_formed(path, "POST", r, world)
    if path == "/oauth/introspect" and r.status_code == 200:
        assert r.json() == {"active": False}


async def test_fuzz_detector_catches_a_server_error(world: World) -> None:
    """The checks above can fail: a route that raises is seen as a 500 and as a logged error."""
    from starlette.routing import Route

    async def boom(request: Any) -> Any:
        raise RuntimeError("kaboom")

    world.h.app.router.routes.append(Route("/boom", boom))
    r = await send(world, "GET", "/boom", b"", [])
    assert r.status_code == 500
    assert r.json() == {"error": "server_error", "error_description": "internal error"}
    assert len(world.server_errors) == 1
    with pytest.raises(AssertionError):
        assert_well_formed("/boom", "GET", r, world)
    world.server_errors.clear()
