"""Dynamic client registration (RFC 7591) and its management (RFC 7592) through the app in
process: off by default, each mode, every metadata rule refused with its §3.2.2 error,
software statements, the registration access token's reads, updates and deletes, and the
limits of an endpoint that may be open to anyone."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import Harness, make_settings, running_app
from tokensmith.core.clock import FrozenClock

REGISTER = "/oauth/register"
REDIRECT = "https://partner.example.com/callback"
APP = {"client_name": "Partner", "redirect_uris": [REDIRECT], "scope": "read"}
KEY = {"client_name": "Backend", "grant_types": ["client_credentials"], "scope": "read write"}


def _ec_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    return private, public | {"kid": "k1", "use": "sig", "alg": "ES256"}


TRUSTED, TRUSTED_JWK = _ec_key()
STRANGER, _ = _ec_key()


def statement(claims: dict[str, Any], key: Any = TRUSTED, alg: str = "ES256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "k1"})


def _settings(tmp_path: Path, **overrides: Any) -> Any:
    overrides.setdefault("registration_scopes", ("read", "write"))
    return make_settings(tmp_path, f"sqlite:///{tmp_path / 'reg.db'}", **overrides)


@pytest.fixture
async def open_app(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    jwks = json.dumps({"keys": [TRUSTED_JWK]})
    settings = _settings(tmp_path, registration="open", registration_software_statement_jwks=jwks)
    async with running_app(settings, clock) as h:
        yield h


@pytest.fixture
async def token_app(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    async with running_app(_settings(tmp_path, registration="initial_access_token"), clock) as h:
        yield h


async def register(h: Harness, body: Any, token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    return await h.http.post(REGISTER, json=body, headers=headers)


async def registered(h: Harness, body: Any, token: str | None = None) -> dict[str, Any]:
    r = await register(h, body, token)
    assert r.status_code == 201, r.text
    return dict(r.json())


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- off by default, advertised when on ------------------------------------------------------


async def test_registration_is_off_by_default_and_not_advertised(harness: Harness) -> None:
    assert (await register(harness, APP)).status_code == 404
    meta = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert "registration_endpoint" not in meta


async def test_open_registration_is_advertised_in_the_metadata(open_app: Harness) -> None:
    meta = (await open_app.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["registration_endpoint"] == "https://auth.example.test/oauth/register"


# -- registering -------------------------------------------------------------------------------


async def test_a_registered_confidential_app_gets_id_secret_and_registration_token(
    open_app: Harness,
) -> None:
    r = await register(open_app, APP)
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["client_secret"] and body["registration_access_token"]
    assert body["client_secret_expires_at"] == 0
    assert body["client_id_issued_at"] == int(open_app.clock.now())
    assert body["registration_client_uri"] == (
        f"https://auth.example.test/oauth/register/{body['client_id']}"
    )
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["redirect_uris"] == [REDIRECT]
    stored = await open_app.ctx.client_admin.get(body["client_id"])
    assert stored is not None and stored.merchant_id is None and stored.registered
    assert body["client_secret"] not in repr(stored)
    assert stored.registration_token_hash != body["registration_access_token"]


async def test_a_registered_backend_gets_tokens_with_its_secret(open_app: Harness) -> None:
    body = await registered(open_app, KEY | {"token_endpoint_auth_method": "client_secret_post"})
    r = await open_app.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": body["client_id"],
            "client_secret": body["client_secret"],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "read write"


async def test_a_native_public_client_may_use_a_loopback_http_redirect(open_app: Harness) -> None:
    body = await registered(
        open_app,
        {"redirect_uris": ["http://127.0.0.1:7777/cb"], "token_endpoint_auth_method": "none"},
    )
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["scope"] == "read write"  # none asked: every registration scope


async def test_a_public_https_jwks_uri_is_accepted(open_app: Harness) -> None:
    uri = "https://partner.example.com/jwks.json"
    body = await registered(
        open_app, KEY | {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}
    )
    assert body["jwks_uri"] == uri and "client_secret" not in body


async def test_a_private_key_jwt_client_registers_its_keys(open_app: Harness) -> None:
    body = await registered(
        open_app,
        KEY | {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [TRUSTED_JWK]}},
    )
    assert "client_secret" not in body
    assert body["jwks"]["keys"][0]["x"] == TRUSTED_JWK["x"]


async def test_unknown_metadata_is_ignored_and_known_extras_read_back(open_app: Harness) -> None:
    body = await registered(
        open_app,
        APP
        | {
            "frobnicate": [1, 2],
            "client_uri": "https://partner.example.com",
            "contacts": ["ops@partner.example.com"],
            "software_id": "partner-app",
            "dpop_bound_access_tokens": True,
        },
    )
    assert "frobnicate" not in body
    assert body["contacts"] == ["ops@partner.example.com"]
    assert body["software_id"] == "partner-app"
    assert body["dpop_bound_access_tokens"] is True


# -- every metadata rule (RFC 7591 §2, §3.2.2) ----------------------------------------------

URI = "invalid_redirect_uri"
META = "invalid_client_metadata"
NO_REDIRECT: dict[str, Any] = {"client_name": "Partner"}

REFUSED = [
    pytest.param(NO_REDIRECT, URI, id="code-grant-without-redirect-uri"),
    pytest.param(APP | {"redirect_uris": ["http://partner.example.com/cb"]}, URI, id="http"),
    pytest.param(APP | {"redirect_uris": [REDIRECT + "#frag"]}, URI, id="fragment"),
    pytest.param(APP | {"redirect_uris": ["/callback"]}, URI, id="relative"),
    pytest.param(APP | {"redirect_uris": ["javascript:alert(1)//x"]}, URI, id="script-scheme"),
    pytest.param(APP | {"redirect_uris": REDIRECT}, URI, id="redirect-uris-not-a-list"),
    pytest.param(APP | {"redirect_uris": [1]}, URI, id="redirect-uri-not-a-string"),
    pytest.param(
        APP | {"redirect_uris": [f"{REDIRECT}/{i}" for i in range(21)]}, URI, id="too-many"
    ),
    pytest.param(
        KEY | {"token_endpoint_auth_method": "client_secret_jwt"}, META, id="client-secret-jwt"
    ),
    pytest.param(KEY | {"token_endpoint_auth_method": "tls"}, META, id="unknown-auth-method"),
    pytest.param(KEY | {"token_endpoint_auth_method": "none"}, META, id="public-backend"),
    pytest.param(
        KEY | {"token_endpoint_auth_method": "private_key_jwt"}, META, id="pkjwt-without-keys"
    ),
    pytest.param(
        KEY
        | {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [TRUSTED_JWK]},
            "jwks_uri": "https://partner.example.com/jwks",
        },
        META,
        id="jwks-and-jwks-uri",
    ),
    pytest.param(
        KEY | {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}},
        META,
        id="empty-jwks",
    ),
    pytest.param(
        KEY
        | {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [TRUSTED_JWK | {"d": "AAAA"}]},
        },
        META,
        id="private-key-in-jwks",
    ),
    pytest.param(
        KEY | {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://evil.test/k"},
        META,
        id="jwks-uri-http",
    ),
    *(
        pytest.param(
            KEY | {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri},
            META,
            id=f"ssrf-jwks-uri-{name}",
        )
        for name, uri in [
            ("loopback-http", "http://127.0.0.1:6379/"),
            ("localhost", "https://localhost/jwks"),
            ("loopback-https", "https://127.0.0.1/jwks"),
            ("cloud-metadata", "https://169.254.169.254/latest/meta-data"),
            ("private", "https://10.0.0.7/jwks"),
            ("ipv6-loopback", "https://[::1]/jwks"),
            ("single-label", "https://intranet/jwks"),
        ]
    ),
    pytest.param(KEY | {"jwks": {"keys": [TRUSTED_JWK]}}, META, id="jwks-with-secret-method"),
    pytest.param(KEY | {"grant_types": ["password"]}, META, id="unsupported-grant"),
    pytest.param(KEY | {"grant_types": "client_credentials"}, META, id="grants-not-a-list"),
    pytest.param(APP | {"response_types": ["token"]}, META, id="implicit-response-type"),
    pytest.param(KEY | {"response_types": ["code"]}, META, id="code-response-without-code-grant"),
    pytest.param(APP | {"response_types": []}, META, id="code-grant-without-code-response"),
    pytest.param(KEY | {"grant_types": ["refresh_token"]}, META, id="refresh-alone"),
    pytest.param(APP | {"scope": "read admin"}, META, id="scope-not-allowed"),
    pytest.param(APP | {"scope": 7}, META, id="scope-not-a-string"),
    pytest.param(APP | {"client_name": ""}, META, id="empty-name"),
    pytest.param(APP | {"client_name": "x" * 201}, META, id="long-name"),
    pytest.param(APP | {"client_name": ["x"]}, META, id="name-not-a-string"),
    pytest.param(APP | {"client_name": "a\u202eb\nc"}, META, id="name-with-control-characters"),
    pytest.param(APP | {"client_uri": "javascript:alert(1)"}, META, id="client-uri-script"),
    pytest.param(APP | {"logo_uri": "http://partner.example.com/l.png"}, META, id="logo-http"),
    pytest.param(APP | {"contacts": "ops@partner.example.com"}, META, id="contacts-not-a-list"),
    pytest.param(APP | {"contacts": ["a@b.c"] * 11}, META, id="too-many-contacts"),
    pytest.param(APP | {"dpop_bound_access_tokens": "yes"}, META, id="dpop-not-a-boolean"),
    pytest.param([APP], META, id="body-an-array"),
]


@pytest.mark.parametrize(("body", "error"), REFUSED)
async def test_metadata_breaking_a_rule_is_refused_and_nothing_registered(
    open_app: Harness, body: Any, error: str
) -> None:
    r = await register(open_app, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    assert r.json()["error_description"]
    assert await open_app.ctx.client_admin.listing() == []


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b"{not json", "application/json"),
        (b"client_name=x", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
    ],
    ids=["not-json", "a-form", "not-utf8"],
)
async def test_a_body_that_is_not_a_json_object_is_invalid_metadata(
    open_app: Harness, content: bytes, ctype: str
) -> None:
    r = await open_app.http.post(REGISTER, content=content, headers={"content-type": ctype})
    assert r.status_code == 400
    assert r.json()["error"] == META


async def test_a_body_over_the_limit_is_refused_with_413(open_app: Harness) -> None:
    limit = open_app.ctx.settings.registration_max_body_bytes
    r = await register(open_app, APP | {"client_name": "x" * limit})
    assert r.status_code == 413


async def test_other_methods_are_405(open_app: Harness) -> None:
    r = await open_app.http.get(REGISTER)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"


async def test_one_address_registering_too_often_gets_429(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = _settings(tmp_path, registration="open", registrations_per_address=2)
    async with running_app(settings, clock) as h:
        assert (await register(h, KEY)).status_code == 201
        assert (await register(h, {"bad": True})).status_code == 400  # refusals count too
        r = await register(h, KEY)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) > 0
        assert len(await h.ctx.client_admin.listing()) == 1


# -- initial access tokens (RFC 7591 §3) -----------------------------------------------------


async def _merchant(h: Harness, name: str) -> str:
    return (await h.ctx.merchants.create(name)).merchant_id


async def test_an_initial_token_is_required_in_that_mode(token_app: Harness) -> None:
    r = await register(token_app, KEY)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer "],
    ids=["wrong-token", "basic-scheme", "empty"],
)
async def test_a_wrong_initial_token_is_refused(token_app: Harness, header: str) -> None:
    r = await token_app.http.post(REGISTER, json=KEY, headers={"authorization": header})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_token"
    assert await token_app.ctx.client_admin.listing() == []


async def test_an_expired_initial_token_is_refused(token_app: Harness) -> None:
    _, plain = await token_app.ctx.registrations.tokens.create(expires_in=60)
    assert (await register(token_app, KEY, plain)).status_code == 201
    token_app.clock.advance(61)
    assert (await register(token_app, KEY, plain)).status_code == 401


async def test_a_revoked_initial_token_is_refused(token_app: Harness) -> None:
    made, plain = await token_app.ctx.registrations.tokens.create()
    assert await token_app.ctx.registrations.tokens.revoke(made.token_id)
    assert (await register(token_app, KEY, plain)).status_code == 401


async def test_a_client_belongs_to_the_merchant_its_initial_token_names(
    token_app: Harness,
) -> None:
    shop, other = await _merchant(token_app, "Shop"), await _merchant(token_app, "Other")
    _, plain = await token_app.ctx.registrations.tokens.create(merchant_id=shop)
    body = await registered(token_app, KEY | {"merchant_id": other}, plain)
    client = await token_app.ctx.client_admin.get(body["client_id"])
    assert client is not None and client.merchant_id == shop
    assert "merchant_id" not in body


async def test_an_initial_token_without_merchant_registers_a_platform_client(
    token_app: Harness,
) -> None:
    _, plain = await token_app.ctx.registrations.tokens.create()
    body = await registered(token_app, KEY, plain)
    client = await token_app.ctx.client_admin.get(body["client_id"])
    assert client is not None and client.merchant_id is None


async def test_open_mode_refuses_a_wrong_token_rather_than_ignoring_it(open_app: Harness) -> None:
    assert (await register(open_app, KEY, "wrong")).status_code == 401


# -- software statements (RFC 7591 §2.3) -----------------------------------------------------


async def test_a_statements_claims_take_precedence_over_the_request(open_app: Harness) -> None:
    signed = statement({"client_name": "Vetted", "scope": "read", "software_id": "vetted-1"})
    body = await registered(
        open_app, KEY | {"client_name": "Claimed", "software_statement": signed}
    )
    assert body["client_name"] == "Vetted"
    assert body["scope"] == "read"
    assert body["software_id"] == "vetted-1"
    assert body["software_statement"] == signed


async def test_a_statements_claims_are_checked_like_the_request(open_app: Harness) -> None:
    signed = statement({"scope": "admin"})
    r = await register(open_app, KEY | {"software_statement": signed})
    assert r.status_code == 400 and r.json()["error"] == META


def _unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, None, algorithm="none")


STATEMENTS = [
    pytest.param(_unsigned({"client_name": "x"}), "invalid_software_statement", id="alg-none"),
    pytest.param(
        jwt.encode({"client_name": "x"}, "s" * 32, algorithm="HS256"),
        "invalid_software_statement",
        id="hmac",
    ),
    pytest.param("not-a-jwt", "invalid_software_statement", id="not-a-jwt"),
    pytest.param("a.b.c", "invalid_software_statement", id="garbage-segments"),
    pytest.param(42, "invalid_software_statement", id="not-a-string"),
    pytest.param(
        statement({"client_name": "x"}, STRANGER), "unapproved_software_statement", id="wrong-key"
    ),
    pytest.param(
        statement({"client_name": "x", "exp": 1_000_000}),
        "invalid_software_statement",
        id="expired",
    ),
    pytest.param(
        statement({"client_name": "x", "nbf": 4_000_000_000}),
        "invalid_software_statement",
        id="not-yet-valid",
    ),
]


@pytest.mark.parametrize(("signed", "error"), STATEMENTS)
async def test_a_bad_software_statement_is_refused(
    open_app: Harness, signed: Any, error: str
) -> None:
    r = await register(open_app, KEY | {"software_statement": signed})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    assert await open_app.ctx.client_admin.listing() == []


async def test_a_required_statement_must_be_present(tmp_path: Path, clock: FrozenClock) -> None:
    settings = _settings(
        tmp_path,
        registration="open",
        registration_software_statement_jwks=json.dumps({"keys": [TRUSTED_JWK]}),
        registration_require_software_statement=True,
    )
    async with running_app(settings, clock) as h:
        r = await register(h, KEY)
        assert r.status_code == 400 and r.json()["error"] == "invalid_software_statement"
        signed = statement({"client_name": "Vetted"})
        assert (await register(h, KEY | {"software_statement": signed})).status_code == 201


async def test_statement_keys_may_come_from_a_file(tmp_path: Path, clock: FrozenClock) -> None:
    path = tmp_path / "trusted.json"
    path.write_text(json.dumps({"keys": [TRUSTED_JWK]}))
    settings = _settings(
        tmp_path, registration="open", registration_software_statement_jwks=str(path)
    )
    async with running_app(settings, clock) as h:
        signed = statement({"client_name": "Vetted"})
        assert (await register(h, KEY | {"software_statement": signed})).status_code == 201


async def test_with_no_trusted_keys_every_statement_is_unapproved(
    tmp_path: Path, clock: FrozenClock
) -> None:
    async with running_app(_settings(tmp_path, registration="open"), clock) as h:
        r = await register(h, KEY | {"software_statement": statement({"client_name": "x"})})
        assert r.status_code == 400 and r.json()["error"] == "unapproved_software_statement"


# -- RFC 7592: read, update, delete ----------------------------------------------------------


async def test_the_registration_token_reads_the_registration(open_app: Harness) -> None:
    made = await registered(open_app, APP)
    r = await open_app.http.get(
        made["registration_client_uri"], headers=bearer(made["registration_access_token"])
    )
    assert r.status_code == 200
    body = r.json()
    assert body["client_id"] == made["client_id"]
    assert body["client_name"] == "Partner"
    assert "client_secret" not in body and "registration_access_token" not in body


async def test_reads_with_a_wrong_missing_or_foreign_token_are_401(open_app: Harness) -> None:
    mine = await registered(open_app, APP)
    theirs = await registered(open_app, APP)
    uri = mine["registration_client_uri"]
    for headers in (
        {},
        bearer("wrong"),
        bearer(theirs["registration_access_token"]),
        {"authorization": "Basic " + mine["registration_access_token"]},
    ):
        r = await open_app.http.get(uri, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
    unknown = await open_app.http.get(
        REGISTER + "/nosuchclient", headers=bearer(mine["registration_access_token"])
    )
    assert unknown.status_code == 401


async def test_a_client_made_in_the_cli_has_no_registration_to_manage(open_app: Harness) -> None:
    client, _ = await open_app.client()
    r = await open_app.http.get(f"{REGISTER}/{client.client_id}", headers=bearer(""))
    assert r.status_code == 401


async def test_an_update_replaces_the_metadata_and_the_registration_token(
    open_app: Harness,
) -> None:
    made = await registered(open_app, APP)
    uri, old = made["registration_client_uri"], made["registration_access_token"]
    new_redirect = "https://partner.example.com/other"
    body = {
        "client_id": made["client_id"],
        "client_secret": made["client_secret"],
        "client_name": "Partner v2",
        "redirect_uris": [new_redirect],
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "read write",
        "registration_access_token": old,  # ignored (RFC 7592 §2.2)
    }
    r = await open_app.http.put(uri, json=body, headers=bearer(old))
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["client_name"] == "Partner v2"
    assert updated["redirect_uris"] == [new_redirect]
    assert updated["token_endpoint_auth_method"] == "client_secret_post"
    new = updated["registration_access_token"]
    assert new != old
    assert (await open_app.http.get(uri, headers=bearer(old))).status_code == 401
    assert (await open_app.http.get(uri, headers=bearer(new))).status_code == 200
    assert (await open_app.http.delete(uri, headers=bearer(old))).status_code == 401


UPDATES_REFUSED = [
    pytest.param({"client_id": "someone-else"}, META, id="other-client-id"),
    pytest.param({"client_id": None}, META, id="no-client-id"),
    pytest.param({"client_secret": "guessed"}, META, id="wrong-client-secret"),
    pytest.param({"redirect_uris": ["http://evil.test/cb"]}, URI, id="bad-redirect"),
    pytest.param({"token_endpoint_auth_method": "none"}, META, id="secret-to-public"),
    pytest.param({"scope": "admin"}, META, id="scope-not-allowed"),
]


@pytest.mark.parametrize(("change", "error"), UPDATES_REFUSED)
async def test_an_update_breaking_a_rule_is_refused_and_changes_nothing(
    open_app: Harness, change: dict[str, Any], error: str
) -> None:
    made = await registered(open_app, APP)
    uri, token = made["registration_client_uri"], made["registration_access_token"]
    body = {k: v for k, v in (APP | {"client_id": made["client_id"]} | change).items() if v}
    r = await open_app.http.put(uri, json=body, headers=bearer(token))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error
    after = await open_app.http.get(uri, headers=bearer(token))
    assert after.status_code == 200
    assert after.json()["redirect_uris"] == [REDIRECT]


async def test_a_delete_removes_the_client_and_its_tokens(open_app: Harness) -> None:
    made = await registered(open_app, KEY)
    uri, token = made["registration_client_uri"], made["registration_access_token"]
    assert (await open_app.token(made["client_id"], made["client_secret"])).status_code == 200
    r = await open_app.http.delete(uri, headers=bearer(token))
    assert r.status_code == 204
    assert await open_app.ctx.client_admin.get(made["client_id"]) is None
    assert (await open_app.http.get(uri, headers=bearer(token))).status_code == 401
    assert (await open_app.token(made["client_id"], made["client_secret"])).status_code == 401


async def test_a_client_revoked_in_the_panel_cannot_be_managed(open_app: Harness) -> None:
    made = await registered(open_app, KEY)
    await open_app.ctx.client_admin.revoke(made["client_id"])
    r = await open_app.http.get(
        made["registration_client_uri"], headers=bearer(made["registration_access_token"])
    )
    assert r.status_code == 401


async def test_management_answers_other_methods_with_405(open_app: Harness) -> None:
    made = await registered(open_app, KEY)
    r = await open_app.http.post(
        made["registration_client_uri"], headers=bearer(made["registration_access_token"])
    )
    assert r.status_code == 405


async def test_the_openapi_document_lists_registration_only_when_on(
    harness: Harness, open_app: Harness
) -> None:
    off = (await harness.http.get("/openapi.json")).json()["paths"]
    on = (await open_app.http.get("/openapi.json")).json()["paths"]
    assert "/oauth/register" not in off
    assert set(on["/oauth/register/{client_id}"]) >= {"get", "put", "delete"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"registration_software_statement_jwks": "/nonexistent/trusted.json"},
        {"registration_software_statement_jwks": '{"keys": [{"kty": "oct", "k": "AAAA"}]}'},
        {"registration_require_software_statement": True},
    ],
    ids=["missing-file", "symmetric-key", "required-without-keys"],
)
async def test_a_bad_statement_setting_stops_the_start(
    tmp_path: Path, clock: FrozenClock, overrides: dict[str, Any]
) -> None:
    from tokensmith.settings import ConfigError

    with pytest.raises(ConfigError, match="registration"):
        async with running_app(_settings(tmp_path, registration="open", **overrides), clock):
            pass


async def test_register_read_update_delete_on_each_database(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, db_url, registration="initial_access_token")
    async with running_app(settings, clock) as h:
        merchant = await _merchant(h, "Shop")
        _, plain = await h.ctx.registrations.tokens.create(60, merchant)
        made = await registered(h, APP | {"contacts": ["ops@partner.example.com"]}, plain)
        uri, token = made["registration_client_uri"], made["registration_access_token"]
        read = (await h.http.get(uri, headers=bearer(token))).json()
        assert read["contacts"] == ["ops@partner.example.com"]
        body = APP | {"client_id": made["client_id"], "client_name": "Renamed"}
        put = await h.http.put(uri, json=body, headers=bearer(token))
        assert put.status_code == 200 and put.json()["client_name"] == "Renamed"
        new = put.json()["registration_access_token"]
        assert (await h.http.get(uri, headers=bearer(token))).status_code == 401
        assert (await h.http.delete(uri, headers=bearer(new))).status_code == 204
        assert await h.ctx.client_admin.get(made["client_id"]) is None
