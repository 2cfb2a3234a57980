"""Property-based tests: no request, however malformed, gets a 5xx or an error off-dialect.

Every example goes through the in-process ASGI client to one endpoint (or an unknown path),
with random bodies, headers, encodings, sizes and methods, and checks that the answer is
below 500 and, when it is an error, has exactly the shape of the endpoint's dialect:
RFC 6749 JSON everywhere except the TBC path, which answers RFC 7807 problem+json, and
the browser pages (``tokensmith.web.ui.PAGE_ROOTS``), which answer HTML pages or
redirects. A handler on ``tokensmith.web`` records any use of the last-resort 500
handler; it must stay unused. Every route of the app is in one of the tables here
(``test_every_route_of_the_app_is_fuzzed``).
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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from tests.conftest import Harness, make_settings, running_app
from tests.partner import FAST_PASSWORDS, PASSWORD, csrf_of, make_user, sent_to
from tokensmith.core.admin import create_api_key, create_merchant
from tokensmith.core.authorize import redirect_uri_matches
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import hash_secret, new_secret
from tokensmith.core.models import Consent, Session, User
from tokensmith.web.endpoints.authorize import CARRIED
from tokensmith.web.ui import is_page_path

TBC = "/v2/tpay/access-token"
TOKEN_PATHS = ["/oauth/token", "/oauth/auth", TBC, "/o/token/"]
CONSUME = "/oauth/consents/consume"
FORM_PATHS = [*TOKEN_PATHS, "/oauth/introspect", "/oauth/revoke", "/oauth/par", CONSUME]
#: The consent resource's JSON API (its template path is requested as it is: an id that
#: names nothing)
CONSENT_PATHS = ["/oauth/consents", "/oauth/consents/{consent_id}"]
READ_PATHS = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwks.json",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/openapi.json",
]
UNKNOWN_PATHS = ["/", "/oauth", "/oauth/token/", "/o/token", "/v2/tpay", "/.well-known/x", "/admin"]
ALL_PATHS = FORM_PATHS + CONSENT_PATHS + READ_PATHS + UNKNOWN_PATHS
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
        login_failures_per_account=100_000,
        login_failures_per_address=100_000,
        max_body_bytes=4096,
    )
    # cheap password hashes, so the run explores more pages
    async with running_app(settings_, clock, passwords=FAST_PASSWORDS) as h:
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
PARAM_NAMES = (
    st.sampled_from(
        ["grant_type", "client_id", "client_secret", "scope", "token", "token_type_hint", "code"]
    )
    | st.sampled_from(
        # the authorization request's, for the PAR endpoint, and the extensions refused
        ["response_type", "redirect_uri", "state", "code_challenge", "request_uri", "resource"]
    )
    | st.text(max_size=8)
)
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
@example(path="/login", method="GET").via("a page")
@example(path="/panel/nope", method="PUT").via("under a page's path")
@FUZZ
async def test_unknown_paths_and_methods_answer_json_404_or_405(
    world: World, path: str, method: str
) -> None:
    r = await send(world, method, path, b"", [])
    if is_page_path(r.request.url.path):  # Hypothesis also tries the code's own strings
        assert r.status_code < 500 and not world.server_errors, (path, method, r.status_code)
        if r.status_code >= 400:  # the pages' dialect: an HTML page
            assert r.headers["content-type"].startswith("text/html"), (path, method)
        return
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


# -- the browser pages: login, authorization, consent, connected apps, the panel ----------

ISSUER = "https://auth.example.test"
#: The authorization request's parameters (those its consent form carries back), and
#: ``prompt``, which clients send and the page ignores.
AUTHZ_FIELDS = (*CARRIED, "prompt")
SCOPE_BOXES = ("scope_read", "scope_write", "scope_admin")
#: Every browser page by method and route template, with the parameters its handler reads
#: (the query of a GET, the form of a POST; a CSRF token is added per example).
#: test_every_route_of_the_app_is_fuzzed keeps this table whole.
PAGE_ROUTES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/oauth/authorize"): AUTHZ_FIELDS,
    ("POST", "/oauth/authorize/decision"): (*AUTHZ_FIELDS, "decision", "remember"),
    ("GET", "/login"): ("next",),
    ("POST", "/login"): ("email", "password", "next"),
    ("POST", "/logout"): (),
    ("GET", "/account/apps"): (),
    ("POST", "/oauth/consents/{client_id}/withdraw"): ("next",),
    ("GET", "/panel"): (),
    ("POST", "/panel/merchant"): ("merchant_id",),
    ("GET", "/panel/reveal/{rid}"): (),
    ("GET", "/panel/keys"): ("done",),
    ("POST", "/panel/keys"): ("name", *SCOPE_BOXES),
    ("GET", "/panel/keys/new"): (),
    ("GET", "/panel/keys/{client_id}"): ("done",),
    ("POST", "/panel/keys/{client_id}/rotate"): ("overlap",),
    ("GET", "/panel/keys/{client_id}/revoke"): (),
    ("POST", "/panel/keys/{client_id}/revoke"): (),
    ("GET", "/panel/apps"): ("done",),
    ("POST", "/panel/apps"): ("name", "redirect_uris", "form_uri", *SCOPE_BOXES),
    ("GET", "/panel/apps/new"): (),
    ("GET", "/panel/apps/{client_id}"): ("done",),
    ("POST", "/panel/apps/{client_id}"): ("name", "redirect_uris", "form_uri"),
    ("POST", "/panel/apps/{client_id}/security"): ("require_par", "require_dpop", "fapi2"),
    ("POST", "/panel/apps/{client_id}/rotate"): ("overlap",),
    ("POST", "/panel/apps/{client_id}/keys"): ("jwks", "jwks_uri", "clear"),
    ("GET", "/panel/apps/{client_id}/revoke"): (),
    ("POST", "/panel/apps/{client_id}/revoke"): (),
    ("GET", "/panel/authorized"): ("done",),
    ("GET", "/panel/authorized/{client_id}/revoke"): (),
    ("POST", "/panel/authorized/{client_id}/revoke"): (),
    ("GET", "/panel/consents"): ("status", "done"),
    ("GET", "/panel/consents/{consent_id}/revoke"): (),
    ("POST", "/panel/consents/{consent_id}/revoke"): (),
    ("GET", "/panel/devkeys"): ("done",),
    ("POST", "/panel/devkeys"): ("name",),
    ("GET", "/panel/devkeys/new"): (),
    ("GET", "/panel/devkeys/{key_id}/revoke"): (),
    ("POST", "/panel/devkeys/{key_id}/revoke"): (),
    ("GET", "/panel/activity"): ("client_id", "done"),
    ("GET", "/panel/audit"): ("merchant", "actor", "type", "after"),
    ("GET", "/panel/audit/export"): ("merchant", "actor", "type", "format"),
    ("GET", "/panel/audit/deliveries"): ("done",),
    ("POST", "/panel/audit/deliveries/{event_id}/retry"): (),
    ("GET", "/panel/users"): ("done",),
    ("POST", "/panel/users"): ("email", "password", "role"),
    ("GET", "/panel/users/new"): (),
    ("GET", "/panel/users/{user_id}/disable"): (),
    ("POST", "/panel/users/{user_id}/disable"): (),
}
#: Mounted apps, each fuzzed by its own test.
MOUNTS = ("/static", "/admin/v1")  # /admin/v1: tests/fuzz/test_admin_api_fuzz.py
#: Pages whose answer may send the browser to another site (a registered redirect URI).
OFFSITE_PAGES = ("/oauth/authorize", "/oauth/authorize/decision")

PAGE_FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
CODE_GRANTS = ("authorization_code", "refresh_token")
LOOPBACK = "http://127.0.0.1/cb"
APP_REDIRECT = "https://partner.example/callback"
#: URIs that do not parse, or parse to nothing a browser may be sent to.
BAD_URIS = [
    "http://[::1/cb",
    "http://[x]/cb",
    "http://]::1[/cb",
    "http://127.0.0.1:99999/cb",
    "http://127.0.0.1:x/cb",
    "javascript://partner.example/%0aalert(1)",
    "//partner.example/callback",
    "/callback",
    "",
]
OTHER_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
WHO = ["admin", "admin", "admin", "member", "operator", "anonymous", "nobody"]


@dataclass(repr=False)
class Pages:
    """The world, plus merchants, people, apps and keys for the pages to act on, and a
    client that keeps no cookies (each example says which browser it is)."""

    w: World
    http: httpx.AsyncClient
    users: dict[str, User]
    merchant_ids: list[str]
    client_ids: list[str]
    key_ids: list[str]
    user_ids: list[str]
    redirect_uris: list[str]


@pytest.fixture
async def pages(world: World) -> AsyncIterator[Pages]:
    async with _pages(world) as p:
        yield p


@pytest.fixture
async def pages_any(world_any: World) -> AsyncIterator[Pages]:
    async with _pages(world_any) as p:
        yield p


@contextlib.asynccontextmanager
async def _pages(w: World) -> AsyncIterator[Pages]:
    h, ctx = w.h, w.h.ctx
    shop = await create_merchant(ctx.store, h.clock, ctx.rand, "Fuzz Shop")
    other = await create_merchant(ctx.store, h.clock, ctx.rand, "Other Shop")
    users = {
        "admin": await make_user(h, shop, "admin@fuzz.test", "admin"),
        "member": await make_user(h, shop, "member@fuzz.test", "member"),
        "operator": await make_user(h, None, "op@fuzz.test", "operator"),
    }
    # who the pages may disable: never one of the browsers above
    victim = await make_user(h, shop, "victim@fuzz.test", "member")
    stranger = await make_user(h, other, "stranger@other.test", "admin")
    key, _ = await h.client(name="Fuzz key", merchant_id=shop.merchant_id)
    app, _ = await h.client(
        name="Fuzz app",
        merchant_id=shop.merchant_id,
        grant_types=CODE_GRANTS,
        redirect_uris=(APP_REDIRECT, LOOPBACK),
    )
    public, _ = await h.client(
        name="Fuzz native", grant_types=CODE_GRANTS, redirect_uris=(LOOPBACK,), public=True
    )
    foreign, _ = await h.client(
        name="Other app",
        merchant_id=other.merchant_id,
        grant_types=CODE_GRANTS,
        redirect_uris=(APP_REDIRECT,),
    )
    devkey, _ = await create_api_key(ctx.store, h.clock, ctx.rand, "Fuzz devkey", shop.merchant_id)
    consent = Consent(users["admin"].user_id, app.client_id, "read write", h.clock.now())
    await ctx.store.save_consent(consent)
    transport = httpx.ASGITransport(h.asgi, client=("203.0.113.8", 50002))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Pages(
            w,
            http,
            users,
            merchant_ids=[shop.merchant_id, other.merchant_id],
            client_ids=[key.client_id, app.client_id, public.client_id, foreign.client_id],
            key_ids=[devkey.key_id],
            user_ids=[victim.user_id, stranger.user_id],
            redirect_uris=[APP_REDIRECT, LOOPBACK],
        )


def _page_values(p: Pages) -> dict[str, st.SearchStrategy[str]]:
    """For each parameter a page reads: values it accepts, and near misses."""
    uris = st.sampled_from(p.redirect_uris + BAD_URIS + ["http://127.0.0.1:51234/cb"])
    authorize = "/oauth/authorize?" + urlencode(
        {"response_type": "code", "client_id": p.client_ids[1], "redirect_uri": APP_REDIRECT}
    )
    return {
        "response_type": st.sampled_from(["code", "code", "code", "token"]),
        "client_id": st.sampled_from(p.client_ids[1:] * 3 + p.client_ids[:1] + p.w.ids[:1]),
        "redirect_uri": st.sampled_from(p.redirect_uris * 3) | uris,
        "scope": st.sampled_from(["read", "read write", "write", "admin", "read  write"]),
        "state": st.text(max_size=20) | st.integers(2040, 2060).map(lambda n: "s" * n),
        "code_challenge": st.sampled_from(["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "x"]),
        "code_challenge_method": st.sampled_from(["S256", "plain", "s256"]),
        "prompt": st.sampled_from(["consent", "none", "login"]),
        "decision": st.sampled_from(["allow", "deny", "ALLOW"]),
        "remember": st.sampled_from(["yes", "no"]),
        "email": st.sampled_from([u.email for u in p.users.values()] + ["nobody@fuzz.test"]),
        "password": st.sampled_from([PASSWORD, PASSWORD.upper(), "x" * 5000]),
        "next": st.sampled_from(
            [authorize, "/panel/keys", "/account/apps", "https://evil.example/", "//evil.example"]
        ),
        "merchant_id": st.sampled_from(p.merchant_ids),
        "done": st.sampled_from(["key-revoked", "app-saved", "<b>"]),
        "name": st.sampled_from(["Shop backend", "x" * 201, " "]),
        "redirect_uris": st.lists(uris, max_size=3).map("\n".join),
        "form_uri": uris,
        "overlap": st.sampled_from(["0", "3600", "86400", "604800", "-1", "1e3"]),
        "role": st.sampled_from(["member", "admin", "operator"]),
        **{box: st.sampled_from(["on", "off"]) for box in SCOPE_BOXES},
    }


def _path_value(p: Pages, name: str) -> st.SearchStrategy[str]:
    known = {"client_id": p.client_ids, "key_id": p.key_ids, "user_id": p.user_ids}
    real = st.sampled_from(known.get(name, ["no-such-thing"]))
    return st.one_of(real, real, NASTY_TEXT.filter(bool), WITH_CONTROL, st.just("x" * 300))


@dataclass(frozen=True)
class PageRequest:
    method: str
    path: str
    #: The query of a GET, the body of anything else.
    data: bytes
    who: str
    csrf: str
    headers: list[tuple[bytes, bytes]]


#: Queries no parser should choke on: percent-escapes of any byte, too many fields, huge.
RAW_QUERY = st.one_of(
    st.text(alphabet="%&=+;0123456789abcdefABCDEFxyz[]:/?", max_size=200).map(str.encode),
    st.integers(60, 200).map(lambda n: b"&".join(b"p%d=1" % i for i in range(n))),
    st.integers(8000, 9000).map(lambda n: b"state=" + b"s" * n),
)


@st.composite
def page_requests(draw: st.DrawFn, p: Pages, route: tuple[str, str]) -> PageRequest:
    """A request to one page: mostly its own method and parameters, with values it takes,
    near misses and garbage; as one of the users, an anonymous browser or none; with the
    right CSRF token, a forged one or none."""
    method, template = route
    fields = PAGE_ROUTES[route]
    method = draw(st.sampled_from([method] * 12 + OTHER_METHODS))
    path = template
    for name in ("client_id", "key_id", "user_id", "rid", "event_id", "consent_id"):
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", quote(draw(_path_value(p, name)), safe=""))
    values = _page_values(p)
    # half the examples send values the page takes, so that they reach its deep paths
    # (a consent page, an issued code, a created key); the others mix in garbage
    plausible = draw(st.booleans())
    pairs: list[tuple[str, str]] = []
    for name in fields:
        valid = values.get(name, NASTY_TEXT)
        if plausible:
            value = draw(st.one_of(*[valid] * 9, st.none()))
        else:
            value = draw(st.one_of(valid, valid, NASTY_TEXT, WITH_CONTROL, st.none()))
        if value is not None:
            pairs.append((name, value))
    names = st.sampled_from(fields) if fields else PARAM_NAMES
    if not plausible:
        pairs += draw(st.lists(st.tuples(names | PARAM_NAMES, NASTY_TEXT), max_size=3))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1"]))
    data = urlencode(pairs, encoding=encoding, errors="replace").encode("ascii")
    raw = RAW_QUERY if method in ("GET", "HEAD") else RAW_BODY
    form_type = st.just(b"application/x-www-form-urlencoded")
    if not plausible:
        data = draw(st.one_of(*[st.just(data)] * 4, raw))
    headers: list[tuple[bytes, bytes]] = []
    if method not in ("GET", "HEAD"):
        ctype = draw(form_type if plausible else st.one_of(*[form_type] * 4, CONTENT_TYPES))
        headers.append((b"content-type", ctype))
    origins = [None, None, None, ISSUER.encode(), b"https://evil.example", b"null"]
    origin = draw(st.sampled_from(origins) | HEADER_BYTES)
    if origin is not None:
        headers.append((b"origin", origin))
    who = draw(st.sampled_from(WHO))
    csrf = draw(st.sampled_from(["valid"] * 4 + ["forged", "none"]))
    return PageRequest(method, path, data, who, csrf, headers)


async def _browser(p: Pages, who: str) -> tuple[str, str]:
    """The cookie and the CSRF token of a browser: a fresh session of one of the users, a
    new anonymous one, or (``nobody``) neither."""
    if who == "nobody":
        return "", ""
    ctx = p.w.h.ctx
    assert ctx.ui is not None
    name = ctx.ui.sessions.cookie_name
    cookie = ""
    if who in p.users:
        plain = new_secret(ctx.rand)
        now = p.w.h.clock.now()
        user_id = p.users[who].user_id
        await ctx.store.add_session(Session(hash_secret(plain), user_id, now, now, now + 3600))
        cookie = f"{name}={plain}"
    p.http.cookies.clear()
    page = await p.http.get("/login", headers={"cookie": cookie} if cookie else {})
    cookie = cookie or f"{name}={page.cookies[name]}"
    return cookie, csrf_of(page.text)


async def send_page(p: Pages, req: PageRequest) -> httpx.Response:
    cookie, token = await _browser(p, req.who)
    data = req.data
    if req.csrf != "none":
        value = token if req.csrf == "valid" and token else "forged-" + "A" * 40
        data += (b"&" if data else b"") + urlencode({"csrf_token": value}).encode()
    url = httpx.URL(ISSUER + req.path)
    if req.method in ("GET", "HEAD"):
        request = p.http.build_request(req.method, url.copy_with(query=data or None))
    else:
        request = p.http.build_request(req.method, url, content=data)
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-type"]
    headers += req.headers
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    request.headers = httpx.Headers(headers)
    p.http.cookies.clear()
    return await p.http.send(request)


def _goes_within_bounds(p: Pages, req: PageRequest, url: str, *, redirect: bool) -> None:
    """Where a page sends the browser: a path of ours, or (only from the authorization
    pages) a registered redirect URI; never on by a redirect after a form's POST (CSP
    ``form-action 'self'`` would stop it in Chromium)."""
    if url.startswith(ISSUER + "/"):  # Starlette's trailing-slash redirect is absolute
        url = url[len(ISSUER) :]
    if url.startswith("/") and not url.startswith(("//", "/\\")):
        return
    where = (req.method, req.path, url[:200])
    assert req.path in OFFSITE_PAGES, where
    assert any(redirect_uri_matches(r, url.split("?", 1)[0]) for r in p.redirect_uris), where
    assert not (redirect and req.method == "POST"), where


def assert_page_answer(p: Pages, req: PageRequest, r: httpx.Response) -> None:
    """A page answers with a page of ours or a redirect, never a 5xx nor JSON."""
    where = (req.method, req.path, req.who, r.status_code, r.content[:300])
    assert r.status_code < 500, where
    assert not p.w.server_errors, "the last-resort handler was used"
    if 300 <= r.status_code < 400:
        _goes_within_bounds(p, req, r.headers["location"], redirect=True)
        return
    assert r.headers.get("content-type", "").startswith("text/html"), where
    csp = r.headers.get("content-security-policy", "")
    assert "form-action 'self';" in csp and "frame-ancestors 'none'" in csp, where
    if r.status_code == 405:
        assert r.headers.get("allow"), where
    onward = sent_to(r) if r.status_code == 200 and req.method != "HEAD" else None
    if onward is not None:
        _goes_within_bounds(p, req, onward, redirect=False)


@pytest.mark.parametrize("route", sorted(PAGE_ROUTES), ids=" ".join)
@given(data=st.data())
@PAGE_FUZZ
async def test_random_requests_to_a_page_get_a_page_or_a_redirect_never_a_5xx(
    pages: Pages, route: tuple[str, str], data: st.DataObject
) -> None:
    req = data.draw(page_requests(pages, route))
    r = await send_page(pages, req)
    assert_page_answer(pages, req, r)


#: The pages whose input reaches the database (PostgreSQL, unlike SQLite, refuses a NUL).
TO_THE_DATABASE = sorted(r for r in PAGE_ROUTES if r[0] == "POST" or r[1] == "/oauth/authorize")


@given(data=st.data())
@FUZZ
async def test_page_forms_never_break_on_either_database(
    pages_any: Pages, data: st.DataObject
) -> None:
    route = data.draw(st.sampled_from(TO_THE_DATABASE))
    req = data.draw(page_requests(pages_any, route))
    r = await send_page(pages_any, req)
    assert_page_answer(pages_any, req, r)


@given(path=PATH_TEXT.map(lambda t: "/static/" + quote(t, safe="/")))
@FUZZ
async def test_static_files_answer_a_file_a_redirect_or_a_404(world: World, path: str) -> None:
    r = await send(world, "GET", path, b"", [])
    assert r.status_code in (200, 307, 404), (path, r.status_code)  # 307: "/static" + "/"
    assert not world.server_errors


async def test_page_checks_catch_json_a_5xx_and_a_redirect_off_site_after_a_post(
    pages: Pages,
) -> None:
    """The page checks above can fail."""
    decision = PageRequest("POST", "/oauth/authorize/decision", b"", "admin", "valid", [])
    offsite = httpx.Response(303, headers={"location": APP_REDIRECT + "?code=x"})
    elsewhere = httpx.Response(303, headers={"location": "https://evil.example/cb?code=x"})
    json_error = httpx.Response(400, json={"error": "invalid_request"})
    for answer in (offsite, elsewhere, json_error, httpx.Response(500, html="<p>oops</p>")):
        with pytest.raises(AssertionError):
            assert_page_answer(pages, decision, answer)
    authorize = PageRequest("GET", "/oauth/authorize", b"", "admin", "valid", [])
    assert_page_answer(pages, authorize, offsite)  # a GET may redirect to the app
    slash = PageRequest("POST", "/panel/apps/%2F", b"", "admin", "valid", [])
    assert_page_answer(pages, slash, httpx.Response(307, headers={"location": ISSUER + "/x"}))
    with pytest.raises(AssertionError):
        assert_page_answer(pages, authorize, elsewhere)


def uncovered_routes(app: Starlette) -> list[str]:
    """The app's routes and methods no fuzz test here sends requests to."""
    missing = []
    for route in app.routes:
        if isinstance(route, Mount):
            if route.path not in MOUNTS:
                missing.append(f"mount {route.path}")
        elif isinstance(route, Route):
            if route.path in ALL_PATHS:  # every method, test_random_headers_at_every_endpoint
                continue
            for method in sorted((route.methods or set()) - {"HEAD"}):
                if (method, route.path) not in PAGE_ROUTES:
                    missing.append(f"{method} {route.path}")
        else:
            missing.append(repr(route))
    return missing


async def test_every_route_of_the_app_is_fuzzed(world: World) -> None:
    """A new route fails here until it is in a fuzz table; a stale entry fails too."""
    app = world.h.app
    assert uncovered_routes(app) == []
    served = {(m, r.path) for r in app.routes if isinstance(r, Route) for m in (r.methods or ())}
    assert set(PAGE_ROUTES) <= served, set(PAGE_ROUTES) - served
    # the pages answer in HTML, everything else in JSON (tokensmith.web.errors)
    assert all(is_page_path(path) for _, path in PAGE_ROUTES)
    assert not any(is_page_path(path) for path in ALL_PATHS)

    async def page(request: Any) -> Any:
        raise AssertionError("never called")

    app.router.routes.append(Route("/panel/new-page", page, methods=["GET", "POST"]))
    assert uncovered_routes(app) == ["GET /panel/new-page", "POST /panel/new-page"]
