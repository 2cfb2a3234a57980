"""POST /oauth/par and /oauth/authorize with its request_uri (RFC 9126), through the app
in process: the push's answers and errors (§2.1-§2.3), the request_uri through login and
consent and its single use (§4), the PAR requirement (§4-§6), the metadata (§5), and the
refusal of unsupported extension parameters at every endpoint."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Harness, make_settings, running_app
from tests.partner import (
    ISSUER,
    REDIRECT,
    Partner,
    continued_to,
    hidden_fields,
    make_partner,
    pkce_pair,
    query_of,
    sent_to,
)
from tokensmith.core.clock import FrozenClock
from tokensmith.core.par import REQUEST_URI_PREFIX

PAR = "/oauth/par"
BAD = "invalid_request"
DETAILS = "invalid_authorization_details"


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    return await make_partner(harness)


async def push(p: Partner, auth: Any = "basic", **extra: str | None) -> httpx.Response:
    """Push the partner's authorization request; ``auth``: ``basic``, ``post``, ``none`` or
    an ``(id, secret)`` pair for Basic."""
    form = p.params(**extra)
    if auth == "post":
        return await p.http.post(PAR, data=form | {"client_secret": p.secret})
    if auth == "none":
        return await p.http.post(PAR, data=form)
    pair = (p.app.client_id, p.secret) if auth == "basic" else auth
    return await p.http.post(PAR, data=form, auth=pair)


async def pushed_uri(p: Partner, **extra: str | None) -> str:
    r = await push(p, **extra)
    assert r.status_code == 201, r.text
    return str(r.json()["request_uri"])


async def authorize_with(p: Partner, uri: str, **extra: str) -> httpx.Response:
    return await p.http.get(
        "/oauth/authorize", params={"client_id": p.app.client_id, "request_uri": uri} | extra
    )


def assert_error_page(r: httpx.Response, code: str) -> None:
    assert r.status_code == 400 and sent_to(r) is None, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html") and code in r.text


# -- the push ---------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "post"])
async def test_a_push_answers_201_with_a_request_uri_never_cached(
    partner: Partner, auth: str
) -> None:
    r = await push(partner, auth)
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"request_uri", "expires_in"} and body["expires_in"] == 60
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert len(body["request_uri"]) - len(REQUEST_URI_PREFIX) >= 43


async def test_par_lifetime_sets_expires_in(tmp_path: Path, clock: FrozenClock) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", par_lifetime=90)
    async with running_app(settings, clock) as h:
        r = await push(await make_partner(h))
        assert r.json()["expires_in"] == 90


async def test_a_public_client_pushes_with_its_client_id_alone(harness: Harness) -> None:
    p = await make_partner(harness, public=True)
    no_pkce = await push(p, "none")
    assert (no_pkce.status_code, no_pkce.json()["error"]) == (400, "invalid_request")
    assert "PKCE" in no_pkce.json()["error_description"]
    _, challenge = pkce_pair()
    r = await push(p, "none", code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("auth", "extra", "status", "error"),
    [
        ("none", {}, 401, "invalid_client"),
        (("someone", "secret"), {"client_id": "someone"}, 401, "invalid_client"),
        ("wrong-secret", {}, 401, "invalid_client"),
        ("basic", {"client_id": None}, 400, "invalid_request"),
        ("basic", {"client_id": "someone-else"}, 400, "invalid_request"),
        ("post", {"request_uri": REQUEST_URI_PREFIX + "abc"}, 400, "invalid_request"),
        ("basic", {"redirect_uri": "https://evil.example/cb"}, 400, "invalid_request"),
        ("basic", {"response_type": "token"}, 400, "unsupported_response_type"),
        ("basic", {"scope": "read superpowers"}, 400, "invalid_scope"),
        ("basic", {"code_challenge": "short", "code_challenge_method": "S256"}, 400, BAD),
        ("basic", {"resource": "https://api.example"}, 400, "invalid_target"),
        ("basic", {"request": "eyJhbGciOiJub25lIn0.e30."}, 400, "request_not_supported"),
        ("basic", {"authorization_details": '[{"type":"x"}]'}, 400, DETAILS),
    ],
    ids=[
        "missing-auth",
        "unknown-client",
        "wrong-secret",
        "no-client-id",
        "mismatched-client-id",
        "request-uri-inside-the-push",
        "foreign-redirect-uri",
        "implicit",
        "scope",
        "bad-challenge",
        "resource",
        "request-object",
        "authorization-details",
    ],
)
async def test_bad_pushes_are_refused_in_rfc_6749_json(
    partner: Partner, auth: Any, extra: dict[str, str | None], status: int, error: str
) -> None:
    if auth == "wrong-secret":
        auth = (partner.app.client_id, "not-the-secret")
    r = await push(partner, auth, **extra)
    assert (r.status_code, r.json()["error"]) == (status, error), r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    if error == "request_not_supported":
        assert "not supported" in r.json()["error_description"]
    if error == "invalid_target":  # RFC 8707: a resource that is not registered
        assert "not registered" in r.json()["error_description"]
    if error == DETAILS:
        assert "unknown type 'x'" in r.json()["error_description"]


async def test_a_failed_basic_login_gets_www_authenticate(partner: Partner) -> None:
    r = await push(partner, (partner.app.client_id, "not-the-secret"))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")


async def test_a_client_without_the_code_grant_is_unauthorized(harness: Harness) -> None:
    p = await make_partner(harness, grant_types=("client_credentials",))
    r = await push(p)
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")


async def test_the_par_endpoint_takes_post_only(partner: Partner) -> None:
    r = await partner.http.get(PAR)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"] == "invalid_request"


async def test_a_body_over_the_limit_is_413(partner: Partner) -> None:
    r = await push(partner, state="s" * 20000)
    assert r.status_code == 413 and r.json()["error"] == "invalid_request"


async def test_failed_pushes_count_towards_the_token_endpoints_limits(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", failures_per_client=3)
    async with running_app(settings, clock) as h:
        p = await make_partner(h)
        for _ in range(3):
            await push(p, (p.app.client_id, "wrong"))
        r = await push(p)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


# -- /oauth/authorize with the request_uri ------------------------------------------------------


async def test_the_pushed_request_goes_through_login_and_consent_to_a_token(
    partner: Partner,
) -> None:
    verifier, challenge = pkce_pair()
    uri = await pushed_uri(
        partner, state="pushed-state", code_challenge=challenge, code_challenge_method="S256"
    )
    login = await authorize_with(partner, uri)
    assert 'action="/login"' in login.text
    next_url = hidden_fields(login.text)["next"]
    assert "request_uri=" in next_url and "redirect_uri" not in next_url
    form = hidden_fields(login.text) | {"email": partner.user.email, "password": "x"}
    form["password"] = "correct horse battery staple"
    onward = continued_to(await partner.http.post("/login", data=form))
    consent = await partner.http.get(onward)
    assert consent.status_code == 200 and "Allow" in consent.text
    carried = hidden_fields(consent.text)
    assert set(carried) == {"csrf_token", "client_id", "request_uri"}
    assert carried["request_uri"] == uri
    r = await partner.decide(consent)
    q = query_of(continued_to(r))
    assert set(q) == {"code", "state", "iss"} and q["state"] == "pushed-state"
    assert q["iss"] == ISSUER
    token = await partner.exchange(q["code"], code_verifier=verifier)
    assert token.status_code == 200, token.text
    # spent: the same request_uri is refused from now on
    assert_error_page(await authorize_with(partner, uri), "invalid_request_uri")


async def test_only_the_pushed_parameters_count(partner: Partner) -> None:
    uri = await pushed_uri(partner, scope="read", state="pushed")
    await partner.login()
    page = await authorize_with(
        partner,
        uri,
        redirect_uri="https://evil.example/cb",
        scope="read write admin",
        state="query",
        response_type="token",
        resource="https://api.example",
    )
    assert page.status_code == 200 and "See your orders" in page.text
    assert "Create and change" not in page.text
    q = query_of(continued_to(await partner.decide(page)))
    assert q["state"] == "pushed" and "code" in q


async def test_the_consent_page_may_be_reloaded_before_the_decision(partner: Partner) -> None:
    uri = await pushed_uri(partner)
    await partner.login()
    for _ in range(3):
        page = await authorize_with(partner, uri)
        assert page.status_code == 200 and "Allow" in page.text
    assert "code" in query_of(continued_to(await partner.decide(page)))


async def test_deny_spends_the_request_uri(partner: Partner) -> None:
    uri = await pushed_uri(partner)
    await partner.login()
    page = await authorize_with(partner, uri)
    q = query_of(continued_to(await partner.decide(page, "deny")))
    assert q["error"] == "access_denied" and q["iss"] == ISSUER
    assert_error_page(await authorize_with(partner, uri), "invalid_request_uri")
    assert_error_page(await partner.decide(page), "invalid_request_uri")


async def test_a_remembered_consent_spends_it_on_the_first_visit(partner: Partner) -> None:
    await partner.login()
    await partner.decide(await partner.authorize(), remember="yes")
    uri = await pushed_uri(partner)
    first = await authorize_with(partner, uri)
    assert first.status_code == 303 and "code" in query_of(first.headers["location"])
    assert_error_page(await authorize_with(partner, uri), "invalid_request_uri")


@pytest.mark.parametrize("case", ["unknown", "expired", "reused", "other-client", "foreign-urn"])
async def test_an_unusable_request_uri_is_an_error_page_never_a_redirect(
    harness: Harness, partner: Partner, case: str
) -> None:
    uri = await pushed_uri(partner)
    client_id = partner.app.client_id
    await partner.login()
    if case == "unknown":
        uri = REQUEST_URI_PREFIX + "0" * 55
    elif case == "expired":
        harness.clock.advance(60)
    elif case == "reused":
        await partner.decide(await authorize_with(partner, uri))
    elif case == "other-client":
        other, _ = await harness.client(
            name="Other", grant_types=("authorization_code",), redirect_uris=(REDIRECT,)
        )
        client_id = other.client_id
    elif case == "foreign-urn":
        uri = "https://partner.example/request.jwt"
    r = await partner.http.get(
        "/oauth/authorize", params={"client_id": client_id, "request_uri": uri}
    )
    assert_error_page(r, "invalid_request_uri")


async def test_a_request_uri_without_client_id_is_an_error_page(partner: Partner) -> None:
    uri = await pushed_uri(partner)
    r = await partner.http.get("/oauth/authorize", params={"request_uri": uri})
    assert_error_page(r, "client_id is missing")


async def test_an_expired_request_uri_cannot_be_decided(partner: Partner, harness: Harness) -> None:
    uri = await pushed_uri(partner)
    await partner.login()
    page = await authorize_with(partner, uri)
    harness.clock.advance(60)
    assert_error_page(await partner.decide(page), "invalid_request_uri")


async def _parallel_decisions(p: Partner, n: int = 8) -> list[httpx.Response]:
    uri = await pushed_uri(p)
    await p.login()
    page = await authorize_with(p, uri)
    form = hidden_fields(page.text) | {"decision": "allow"}
    return list(
        await asyncio.gather(
            *(p.http.post("/oauth/authorize/decision", data=form) for _ in range(n))
        )
    )


async def test_parallel_decisions_with_one_request_uri_issue_exactly_one_code(
    harness_any: Harness,
) -> None:
    answers = await _parallel_decisions(await make_partner(harness_any))
    codes = [r for r in answers if r.status_code == 200 and sent_to(r)]
    assert len(codes) == 1 and "code" in query_of(continued_to(codes[0]))
    for r in answers:
        if r is not codes[0]:
            assert_error_page(r, "invalid_request_uri")


async def test_parallel_denials_and_approvals_decide_once(partner: Partner) -> None:
    uri = await pushed_uri(partner)
    await partner.login()
    form = hidden_fields((await authorize_with(partner, uri)).text)
    answers = await asyncio.gather(
        *(
            partner.http.post("/oauth/authorize/decision", data=form | {"decision": d})
            for d in ["allow", "deny"] * 4
        )
    )
    onward = [r for r in answers if r.status_code == 200 and sent_to(r)]
    assert len(onward) == 1


# -- requiring PAR -----------------------------------------------------------------------------


async def test_a_client_that_must_push_is_refused_in_the_query(harness: Harness) -> None:
    p = await make_partner(harness, require_par=True)
    r = await p.authorize()
    assert r.status_code == 303
    q = query_of(r.headers["location"])
    assert q["error"] == "invalid_request" and "PAR" in q["error_description"]
    assert q["state"] == "st-123" and q["iss"] == ISSUER
    uri = await pushed_uri(p)
    assert (await authorize_with(p, uri)).status_code == 200


async def test_the_server_may_require_par_of_every_client(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'a.db'}", require_pushed_authorization_requests=True
    )
    async with running_app(settings, clock) as h:
        p = await make_partner(h)
        q = query_of((await p.authorize()).headers["location"])
        assert q["error"] == "invalid_request"
        assert (await authorize_with(p, await pushed_uri(p))).status_code == 200
        meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
        assert meta["require_pushed_authorization_requests"] is True


async def test_metadata_advertises_the_par_endpoint(harness: Harness) -> None:
    meta = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["pushed_authorization_request_endpoint"] == ISSUER + "/oauth/par"
    assert meta["require_pushed_authorization_requests"] is False
    doc = (await harness.http.get("/openapi.json")).json()
    assert "201" in doc["paths"]["/oauth/par"]["post"]["responses"]


# -- unsupported extension parameters ----------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
    ids=["request"],
)
async def test_the_authorization_endpoint_refuses_unsupported_extensions(
    partner: Partner, extra: dict[str, str], error: str
) -> None:
    r = await partner.authorize(**extra)
    assert r.status_code == 303
    q = query_of(r.headers["location"])
    assert q["error"] == error and "not supported" in q["error_description"]
    assert q["state"] == "st-123"


async def test_the_token_endpoint_ignores_request_which_means_nothing_there(
    harness: Harness,
) -> None:
    client, secret = await harness.client()
    r = await harness.token(client.client_id, secret, request="eyJhbGciOiJub25lIn0.e30.")
    assert r.status_code == 200


async def test_a_dialect_token_endpoint_refuses_an_unregistered_resource(
    harness: Harness,
) -> None:
    client, secret = await harness.client()
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    r = await harness.http.post(
        "/o/token/",
        data={"grant_type": "client_credentials", "resource": "https://api.example"},
        headers={"authorization": "Basic " + basic},
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_target")
