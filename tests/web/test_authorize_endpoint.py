"""GET /oauth/authorize, the login and consent pages (RFC 6749 §4.1.1-§4.1.2, RFC 9207,
RFC 9700 §2.1 and §4.1)."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
import pytest

from tests.conftest import Harness
from tests.partner import (
    FORM_ACTION,
    ISSUER,
    PASSWORD,
    REDIRECT,
    Partner,
    continued_to,
    csrf_of,
    hidden_fields,
    make_partner,
    make_user,
    pkce_pair,
    query_of,
    sent_to,
)


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    return await make_partner(harness)


async def _logged_in(partner: Partner) -> Partner:
    r = await partner.login()
    assert r.status_code == 303
    return partner


# -- errors shown, never redirected ----------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        ({"client_id": "unknown"}, "not registered"),
        ({"client_id": None}, "client_id is missing"),
        ({"redirect_uri": "https://evil.example/callback"}, "not registered for this app"),
        ({"redirect_uri": REDIRECT + "/"}, "not registered for this app"),
        ({"redirect_uri": "https://partner.example/callback?x=1"}, "not registered for this app"),
    ],
    ids=["unknown-client", "no-client", "foreign-redirect", "trailing-slash", "extra-query"],
)
async def test_bad_client_or_redirect_shows_an_error_page(
    partner: Partner, extra: dict, text: str
) -> None:
    r = await partner.authorize(**extra)
    assert r.status_code == 400 and "location" not in r.headers
    assert text in r.text and "text/html" in r.headers["content-type"]


async def test_revoked_client_shows_an_error_page(partner: Partner, harness: Harness) -> None:
    await harness.ctx.clients.revoke_client(partner.app.client_id, harness.clock.now())
    r = await partner.authorize()
    assert r.status_code == 400 and "location" not in r.headers


# -- errors redirected with error, state and iss (RFC 6749 §4.1.2.1, RFC 9207) ---------------


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "read superpowers"}, "invalid_scope"),
        (
            {
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "plain",
            },
            "invalid_request",
        ),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
    ],
    ids=["no-response-type", "implicit", "scope", "plain-pkce", "bad-challenge", "method-alone"],
)
async def test_request_errors_redirect_with_state_and_iss(
    partner: Partner, extra: dict, error: str
) -> None:
    r = await partner.authorize(**extra)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(REDIRECT + "?")
    q = query_of(location)
    assert q["error"] == error and q["state"] == "st-123" and q["iss"] == ISSUER


async def test_client_without_code_grant_is_unauthorized_client(harness: Harness) -> None:
    p = await make_partner(harness, grant_types=("client_credentials",), redirect_uris=(REDIRECT,))
    q = query_of((await p.authorize()).headers["location"])
    assert q["error"] == "unauthorized_client"


async def test_public_client_without_pkce_is_refused(harness: Harness) -> None:
    p = await make_partner(harness, public=True)
    q = query_of((await p.authorize()).headers["location"])
    assert q["error"] == "invalid_request" and "PKCE" in q["error_description"]


async def test_repeated_parameter_is_invalid_request(partner: Partner) -> None:
    url = "/oauth/authorize?" + "&".join(f"{k}={v}" for k, v in partner.params().items())
    r = await partner.http.get(url + "&scope=read")
    assert query_of(r.headers["location"])["error"] == "invalid_request"


# -- login, consent, decision ----------------------------------------------------------------


async def test_anonymous_user_gets_the_login_page(partner: Partner) -> None:
    r = await partner.authorize()
    assert r.status_code == 200
    assert 'action="/login"' in r.text and "Ledger Sync" in r.text
    assert 'for="email"' in r.text and 'for="password"' in r.text
    assert hidden_fields(r.text)["next"].startswith("/oauth/authorize?")


async def test_pages_carry_anti_framing_headers_and_a_strict_cookie(partner: Partner) -> None:
    r = await partner.authorize()
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-tokensmith=")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag in cookie


async def test_login_then_consent_names_app_merchant_and_scopes(partner: Partner) -> None:
    page = await partner.authorize()
    r = await partner.http.post(
        "/login",
        data={
            "email": partner.user.email,
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": hidden_fields(page.text)["next"],
        },
    )
    onward = continued_to(r)
    assert onward.startswith("/oauth/authorize?")
    consent = await partner.http.get(onward)
    assert consent.status_code == 200
    for text in (
        "Ledger Sync",
        "Acme Shop",
        "See your orders",
        "Create and change",
        "Allow",
        "Deny",
    ):
        assert text in consent.text
    # the consent form posts here and nowhere else; its answer goes on to the app itself
    assert FORM_ACTION in consent.headers["content-security-policy"]
    assert "partner.example" not in consent.headers["content-security-policy"]


async def test_allow_continues_to_the_redirect_uri_with_code_state_and_iss(
    partner: Partner,
) -> None:
    await _logged_in(partner)
    r = await partner.decide(await partner.authorize())
    destination = continued_to(r)
    assert destination.startswith(REDIRECT + "?")
    q = query_of(destination)
    assert set(q) == {"code", "state", "iss"} and q["state"] == "st-123" and q["iss"] == ISSUER
    assert len(q["code"]) >= 43


async def test_deny_continues_to_the_redirect_uri_with_access_denied(partner: Partner) -> None:
    await _logged_in(partner)
    r = await partner.decide(await partner.authorize(), "deny")
    q = query_of(continued_to(r))
    assert q["error"] == "access_denied" and q["state"] == "st-123" and q["iss"] == ISSUER


async def test_decision_without_csrf_token_issues_no_code(partner: Partner) -> None:
    await _logged_in(partner)
    page = await partner.authorize()
    form = hidden_fields(page.text) | {"decision": "allow", "csrf_token": "forged"}
    r = await partner.http.post("/oauth/authorize/decision", data=form)
    assert r.status_code == 200 and sent_to(r) is None and "Allow" in r.text


async def test_decision_from_another_origin_issues_no_code(partner: Partner) -> None:
    await _logged_in(partner)
    page = await partner.authorize()
    form = hidden_fields(page.text) | {"decision": "allow"}
    r = await partner.http.post(
        "/oauth/authorize/decision", data=form, headers={"origin": "https://evil.example"}
    )
    assert r.status_code == 200 and sent_to(r) is None and "Allow" in r.text


async def test_decision_revalidates_the_request(partner: Partner) -> None:
    await _logged_in(partner)
    page = await partner.authorize()
    form = hidden_fields(page.text) | {
        "decision": "allow",
        "redirect_uri": "https://evil.example/cb",
    }
    r = await partner.http.post("/oauth/authorize/decision", data=form)
    assert r.status_code == 400 and sent_to(r) is None


async def test_remembered_consent_skips_the_page_until_withdrawn(partner: Partner) -> None:
    await _logged_in(partner)
    await partner.decide(await partner.authorize(), remember="yes")
    again = await partner.authorize()
    assert again.status_code == 303 and "code" in query_of(again.headers["location"])
    wider = await partner.authorize(scope="read write admin")
    assert (
        wider.status_code == 303 and query_of(wider.headers["location"])["error"] == "invalid_scope"
    )
    forced = await partner.authorize(prompt="consent")
    assert forced.status_code == 200 and "Allow" in forced.text
    apps = await partner.http.get("/account/apps")
    assert "Ledger Sync" in apps.text
    r = await partner.http.post(
        f"/oauth/consents/{partner.app.client_id}/withdraw",
        data={"csrf_token": csrf_of(apps.text), "next": "/account/apps"},
    )
    assert r.status_code == 303
    assert (await partner.authorize()).status_code == 200


async def test_returning_users_login_continues_to_the_app_from_a_page_of_ours(
    partner: Partner,
) -> None:
    """A remembered consent, a new browser: after the login the authorization request is
    answered at once with a redirect to the app. The login form's answer must not lead
    there by redirects (Chromium applies the login page's ``form-action 'self'`` to each
    of them and the user is left on the login page): it is a continue page of ours."""
    await _logged_in(partner)
    await partner.decide(await partner.authorize(), remember="yes")
    partner.http.cookies.clear()
    login = await partner.authorize()
    assert 'action="/login"' in login.text
    fields = hidden_fields(login.text) | {"email": partner.user.email, "password": PASSWORD}
    r = await partner.http.post("/login", data=fields)
    onward = continued_to(r)
    assert onward == fields["next"] and onward.startswith("/oauth/authorize?")
    back = await partner.http.get(onward)
    assert back.status_code == 303 and back.headers["location"].startswith(REDIRECT + "?code=")


async def test_withdrawing_consent_revokes_the_apps_tokens(partner: Partner) -> None:
    tokens = await partner.tokens()
    apps = await partner.http.get("/account/apps")
    await partner.http.post(
        f"/oauth/consents/{partner.app.client_id}/withdraw",
        data={"csrf_token": csrf_of(apps.text)},
    )
    assert (await partner.introspect(tokens["access_token"]))["active"] is False
    assert (await partner.introspect(tokens["refresh_token"]))["active"] is False


async def test_public_clients_are_never_approved_silently(harness: Harness) -> None:
    p = await make_partner(harness, public=True)
    await p.login()
    _, challenge = pkce_pair()
    extra = {"code_challenge": challenge, "code_challenge_method": "S256"}
    page = await p.authorize(**extra)
    assert "remember" not in page.text
    await p.decide(page, remember="yes")
    assert (await p.authorize(**extra)).status_code == 200


async def test_operator_cannot_authorize_an_app(partner: Partner, harness: Harness) -> None:
    op = await make_user(harness, None, email="op@ts.test", role="operator")
    await partner.login(op.email)
    q = query_of((await partner.authorize()).headers["location"])
    assert q["error"] == "access_denied"


async def test_loopback_redirect_port_may_vary(harness: Harness) -> None:
    p = await make_partner(harness, redirect_uris=("http://127.0.0.1/cb",))
    await p.login()
    page = await p.authorize(redirect_uri="http://127.0.0.1:51234/cb")
    r = await p.decide(page)
    assert continued_to(r).startswith("http://127.0.0.1:51234/cb?code=")


# -- malformed requests: an error page, never a 500 ------------------------------------------

MALFORMED_TARGETS = {
    "unclosed-ipv6": {"redirect_uri": "http://[::1/cb"},
    "bad-ipv6": {"redirect_uri": "http://[x]/cb"},
    "reversed-brackets": {"redirect_uri": "http://]::1[/cb"},
    "port-out-of-range": {"redirect_uri": "http://[::1]:99999/cb"},
    "port-no-number": {"redirect_uri": "http://127.0.0.1:x/cb"},
    "65-parameters": {f"p{n}": "1" for n in range(65)},
}


@pytest.mark.parametrize(
    "extra",
    [*MALFORMED_TARGETS.values(), {"state": "s" * 9000}],
    ids=[*MALFORMED_TARGETS, "query-too-long"],
)
async def test_malformed_authorization_request_is_an_error_page(
    harness_any: Harness, extra: dict[str, str]
) -> None:
    partner = await make_partner(harness_any, redirect_uris=("http://127.0.0.1/cb",))
    r = await partner.authorize(**extra)
    assert r.status_code == 400 and sent_to(r) is None
    assert r.headers["content-type"].startswith("text/html") and "can\u2019t be used" in r.text


@pytest.mark.parametrize("extra", MALFORMED_TARGETS.values(), ids=list(MALFORMED_TARGETS))
async def test_malformed_decision_is_an_error_page(
    harness_any: Harness, extra: dict[str, str]
) -> None:
    partner = await make_partner(harness_any, redirect_uris=("http://127.0.0.1/cb",))
    await _logged_in(partner)
    page = await partner.authorize(redirect_uri="http://127.0.0.1/cb")
    form = hidden_fields(page.text) | {"decision": "allow"} | extra
    r = await partner.http.post("/oauth/authorize/decision", data=form)
    assert r.status_code == 400 and sent_to(r) is None
    assert r.headers["content-type"].startswith("text/html")


# -- login page ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password"),
    [("ann@shop.test", "wrong password"), ("nobody@shop.test", PASSWORD), ("", "")],
    ids=["wrong-password", "unknown-user", "empty"],
)
async def test_failed_login_shows_one_message(partner: Partner, email: str, password: str) -> None:
    r = await partner.login(email or " ", password)
    assert r.status_code == 400 and "not correct" in r.text and "set-cookie" not in r.headers


async def test_login_without_csrf_token_is_refused(partner: Partner) -> None:
    r = await partner.http.post(
        "/login", data={"email": partner.user.email, "password": PASSWORD, "next": "/"}
    )
    assert r.status_code == 403 and "expired" in r.text


async def test_login_is_throttled_per_account(partner: Partner) -> None:
    for _ in range(5):
        await partner.login(password="wrong password")
    r = await partner.login()
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


async def test_login_rotates_the_session_and_logout_ends_it(partner: Partner) -> None:
    before = (await partner.http.get("/login")).headers["set-cookie"].split(";")[0]
    r = await partner.login()
    after = r.headers["set-cookie"].split(";")[0]
    assert before != after
    apps = await partner.http.get("/account/apps")
    assert apps.status_code == 200 and partner.user.email in apps.text
    out = await partner.http.post("/logout", data={"csrf_token": csrf_of(apps.text)})
    assert out.status_code == 303
    gone = await partner.http.get("/account/apps")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
async def test_login_never_redirects_off_site(partner: Partner, target: str) -> None:
    page = await partner.http.get("/login")
    r = await partner.http.post(
        "/login",
        data={
            "email": partner.user.email,
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": target,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/panel"


@pytest.mark.parametrize(
    "path",
    [
        "/oauth/authorize",
        "/oauth/authorize/",
        "/panel/../oauth/authorize",
        "/oauth/./authorize",
        "/oauth/%61uthorize",
    ],
)
async def test_login_towards_the_authorization_endpoint_ends_on_a_continue_page(
    partner: Partner, path: str
) -> None:
    """However ``next`` spells the authorization endpoint, the login form's answer is not a
    redirect that the endpoint's own redirect to the app would follow."""
    page = await partner.http.get("/login")
    query = "?" + urlencode(partner.params())
    form = {"email": partner.user.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    r = await partner.http.post("/login", data=form | {"next": path + query})
    assert continued_to(r).endswith(query)


async def test_session_expires_when_idle(partner: Partner, harness: Harness) -> None:
    await partner.login()
    harness.clock.advance(harness.ctx.settings.session_idle_ttl)
    r = await partner.http.get("/account/apps")
    assert r.status_code == 303


async def test_disabled_user_is_logged_out(partner: Partner, harness: Harness) -> None:
    await partner.login()
    await harness.ctx.store.disable_user(partner.user.user_id, harness.clock.now())
    assert (await partner.http.get("/account/apps")).status_code == 303


async def test_stylesheet_is_served(harness: Harness) -> None:
    r = await harness.http.get("/static/tokensmith.css")
    assert r.status_code == 200 and ":focus-visible" in r.text


async def test_discovery_advertises_the_code_flow(harness: Harness) -> None:
    meta = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["authorization_endpoint"] == ISSUER + "/oauth/authorize"
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert {"authorization_code", "refresh_token"} <= set(meta["grant_types_supported"])


# -- hostile input never reaches the database as-is (PostgreSQL refuses NUL) -----------------


@pytest.mark.parametrize("client_id", ["\x00", "a\x00b", "\u00e9t\u00e9", "x" * 500])
async def test_unusable_client_id_is_an_error_page_on_every_backend(
    harness_any: Harness, client_id: str
) -> None:
    r = await harness_any.http.get(
        "/oauth/authorize", params={"response_type": "code", "client_id": client_id}
    )
    assert r.status_code == 400 and "location" not in r.headers


async def test_login_with_nul_in_the_email_is_refused(harness_any: Harness) -> None:
    p = await make_partner(harness_any)
    r = await p.login("ann\x00@shop.test")
    assert r.status_code == 400


async def test_withdraw_with_nul_in_the_client_id_does_nothing(harness_any: Harness) -> None:
    p = await make_partner(harness_any)
    await p.login()
    apps = await p.http.get("/account/apps")
    r = await p.http.post("/oauth/consents/a%00b/withdraw", data={"csrf_token": csrf_of(apps.text)})
    assert r.status_code == 303


async def test_purge_job_runs_in_the_lifespan(harness: Harness) -> None:
    import asyncio

    assert any(t.get_name() == "tokensmith-purge" for t in asyncio.all_tasks())


async def test_any_merchants_user_may_authorize_an_app_another_merchant_registered(
    partner: Partner,
) -> None:
    """A marketplace app belongs to the company that registered it; the token acts for the
    merchant whose user approved it."""
    from tokensmith.core.admin import create_merchant

    ctx = partner.h.ctx
    owner = await create_merchant(ctx.store, partner.h.clock, ctx.rand, "App Maker")
    await partner.h.ctx.clients.update_client(partner.app.evolve(merchant_id=owner.merchant_id))
    tokens = await partner.tokens()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == partner.merchant.merchant_id != owner.merchant_id
