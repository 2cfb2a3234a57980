"""The authorization code and refresh token grants against the in-memory store.

RFC 6749 §4.1 and §6, RFC 7636 (PKCE), RFC 9700 §2.1.1 and §4.14.2 (rotation, reuse).
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.core_flow import (
    CB,
    POLICY,
    REUSE_IDS,
    REUSES,
    Flow,
    Reuse,
    lost_answer,
    make_flow,
)
from tests.partner import FAST_PASSWORDS, PASSWORD, pkce_pair
from tokensmith.core import errors
from tokensmith.core.accounts import LoginLimits, LoginRefused, LoginService, create_user
from tokensmith.core.admin import (
    AdminError,
    ClientSpec,
    check_client_spec,
    create_client,
)
from tokensmith.core.authorize import (
    AuthorizationTarget,
    redirect_uri_matches,
    resolve_target,
    response_uri,
    validate_request,
)
from tokensmith.core.clock import FrozenClock
from tokensmith.core.families import DEFAULT_REFRESH_GRACE, PartnerPolicy
from tokensmith.core.limits import Limit
from tokensmith.core.pkce import check_challenge, s256, verify
from tokensmith.core.purge import purge_forever, purge_once
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.ratelimit import MemoryLimiter


@pytest.fixture
async def flow(clock: FrozenClock) -> Flow:
    return await make_flow(clock)


# -- PKCE (RFC 7636) -------------------------------------------------------------------------


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@pytest.mark.parametrize(
    ("challenge", "method", "required", "message"),
    [
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain", False, "S256"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None, False, "S256"),
        ("too-short", "S256", False, "43"),
        ("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM", "S256", False, "43"),
        (None, "S256", False, "without"),
        (None, None, True, "required"),
    ],
    ids=["plain", "method-missing", "short", "bad-chars", "method-alone", "required"],
)
def test_bad_code_challenge_is_invalid_request(
    challenge: str | None, method: str | None, required: bool, message: str
) -> None:
    with pytest.raises(errors.InvalidRequest, match=message):
        check_challenge(challenge, method, required)


@pytest.mark.parametrize(
    ("challenge", "verifier", "error"),
    [
        (None, "a" * 43, errors.InvalidGrant),  # PKCE downgrade (RFC 9700 §2.1.1)
        (s256("a" * 43), None, errors.InvalidGrant),
        (s256("a" * 43), "b" * 43, errors.InvalidGrant),
        (s256("a" * 43), "a" * 42, errors.InvalidRequest),
        (s256("a" * 43), "a" * 42 + "/", errors.InvalidRequest),
    ],
    ids=["downgrade", "missing", "mismatch", "too-short", "bad-char"],
)
def test_bad_code_verifier_is_refused(
    challenge: str | None, verifier: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify(challenge, verifier)


# -- redirect URIs (RFC 9700 §2.1, RFC 8252 §7.3) --------------------------------------------


@pytest.mark.parametrize(
    ("registered", "presented", "ok"),
    [
        ("https://a.example/cb", "https://a.example/cb", True),
        ("https://a.example/cb", "https://a.example/cb/", False),
        ("https://a.example/cb", "https://a.example/CB", False),
        ("https://a.example/cb", "https://a.example/cb?x=1", False),
        ("https://a.example/cb", "https://a.example:8443/cb", False),
        ("https://a.example/cb", "https://evil.example/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", True),
        ("http://127.0.0.1:8000/cb", "http://127.0.0.1:9000/cb", True),
        ("http://[::1]/cb", "http://[::1]:4000/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5/other", False),
        ("http://127.0.0.1/cb", "http://127.0.0.2:5/cb", False),
        ("http://localhost/cb", "http://localhost:5000/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:99999999/cb", False),
        # malformed IPv6 literals and ports (RFC 3986 §3.2.2-§3.2.3): no match, no exception
        ("http://[::1]/cb", "http://[::1/cb", False),
        ("http://[::1]/cb", "http://[::1]:x/cb", False),
        ("http://127.0.0.1/cb", "http://[x]/cb", False),
        ("http://127.0.0.1/cb", "http://]::1[/cb", False),
        ("http://[::1/cb", "http://[::1]:5/cb", False),
    ],
)
def test_redirect_uri_matching(registered: str, presented: str, ok: bool) -> None:
    assert redirect_uri_matches(registered, presented) is ok


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://[::1/cb", "not a well-formed URI"),
        ("https://[x]/cb", "not a well-formed URI"),
        ("https://a.example:99999/cb", "not a well-formed URI"),
        ("https://a.example:x/cb", "not a well-formed URI"),
        ("javascript://a.example/%0aalert(1)", "javascript: scheme"),
        ("data://a.example/,x", "data: scheme"),
        ("https://a.example/c b", "not a well-formed URI"),
        ("https://a.example/c\x00b", "not a well-formed URI"),
        ("https://a.example/cb\x7f", "not a well-formed URI"),
        ("https://a.example/cb#f", "no fragment"),
    ],
)
def test_malformed_or_scripting_redirect_uris_are_refused_at_registration(
    uri: str, message: str
) -> None:
    spec = ClientSpec("app", "read", ("authorization_code",), redirect_uris=(uri,))
    with pytest.raises(AdminError, match=message):
        check_client_spec(spec, 3600)


def test_response_uri_keeps_the_existing_query() -> None:
    uri = response_uri("https://a.example/cb?tenant=7", {"code": "c d", "state": None, "iss": "x"})
    assert uri == "https://a.example/cb?tenant=7&code=c+d&iss=x"


# -- the authorization request (RFC 6749 §4.1.1) ---------------------------------------------


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"client_id": None}, errors.InvalidRequest),
        ({"client_id": "nope"}, errors.InvalidClient),
        ({"redirect_uri": "https://evil.example/cb"}, errors.InvalidRequest),
        ({"client_id": ["X", "Y"]}, errors.InvalidRequest),
    ],
    ids=["no-client", "unknown-client", "unregistered-redirect", "repeated-client"],
)
async def test_target_errors_are_not_redirectable(flow: Flow, params: dict, error: type) -> None:
    base: dict[str, object] = {"client_id": flow.app.client_id, "redirect_uri": CB}
    base.update(params)
    query = {k: v if isinstance(v, list) else [v] for k, v in base.items() if v is not None}
    with pytest.raises(error):
        await resolve_target(flow.store, query)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": None}, errors.InvalidRequest),
        ({"response_type": "token"}, errors.UnsupportedResponseType),
        ({"scope": "read delete"}, errors.InvalidScope),
        ({"state": ["a", "b"]}, errors.InvalidRequest),
        ({"state": "x" * 3000}, errors.InvalidRequest),
        ({"code_challenge": "c" * 43, "code_challenge_method": "plain"}, errors.InvalidRequest),
    ],
    ids=["no-response-type", "token", "scope", "repeated-state", "long-state", "plain"],
)
async def test_request_errors(flow: Flow, params: dict, error: type) -> None:
    base: dict[str, object] = {"response_type": "code", "scope": "read"}
    base.update(params)
    query = {k: v if isinstance(v, list) else [v] for k, v in base.items() if v is not None}
    with pytest.raises(error):
        validate_request(AuthorizationTarget(flow.app, CB, True), query, flow.policy)


async def test_client_without_code_grant_is_unauthorized(flow: Flow) -> None:
    cc = dataclasses.replace(flow.app, grant_types=("client_credentials",))
    with pytest.raises(errors.UnauthorizedClient):
        validate_request(
            AuthorizationTarget(cc, CB, True), {"response_type": ["code"]}, flow.policy
        )


async def test_public_client_must_use_pkce_and_confidential_may(flow: Flow) -> None:
    public = dataclasses.replace(flow.app, auth_methods=("none",))
    q = {"response_type": ["code"]}
    with pytest.raises(errors.InvalidRequest, match="PKCE"):
        validate_request(AuthorizationTarget(public, CB, True), q, flow.policy)
    assert (
        validate_request(AuthorizationTarget(flow.app, CB, True), q, flow.policy).code_challenge
        is None
    )
    strict = PartnerPolicy(require_pkce=True)
    with pytest.raises(errors.InvalidRequest, match="PKCE"):
        validate_request(AuthorizationTarget(flow.app, CB, True), q, strict)


async def test_single_registered_redirect_uri_may_be_omitted(flow: Flow) -> None:
    target = await resolve_target(flow.store, {"client_id": [flow.app.client_id]})
    assert target.redirect_uri == CB and target.redirect_uri_sent is False


# -- the code grant (RFC 6749 §4.1.3) --------------------------------------------------------


async def test_code_exchange_issues_a_pair_whose_sub_is_the_merchant(flow: Flow) -> None:
    issued = await flow.exchange(await flow.code())
    assert issued.refresh_token and issued.expires_in == 7200
    assert issued.subject == flow.user.merchant_id
    [code] = flow.store.codes.values()
    assert code.used_at is not None and code.code_hash not in repr(code)
    assert await flow.active(issued.access_token) and await flow.active(issued.refresh_token)


async def test_reused_code_revokes_family(flow: Flow) -> None:
    code = await flow.code()
    first = await flow.exchange(code)
    with pytest.raises(errors.InvalidGrant, match="already used"):
        await flow.exchange(code)
    assert not await flow.active(first.access_token)
    assert not await flow.active(first.refresh_token)


async def test_expired_code_is_invalid_grant(flow: Flow) -> None:
    code = await flow.code()
    flow.clock.advance(600)
    with pytest.raises(errors.InvalidGrant, match="expired"):
        await flow.exchange(code)


async def test_code_bound_to_pkce_challenge(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    code = await flow.code(challenge=challenge)
    with pytest.raises(errors.InvalidGrant):
        await flow.exchange(code, code_verifier=pkce_pair()[0])
    issued = await flow.exchange(code, code_verifier=verifier)
    assert issued.refresh_token


async def test_client_without_refresh_grant_gets_no_refresh_token(flow: Flow) -> None:
    flow.store.clients[flow.app.client_id] = dataclasses.replace(
        flow.app, grant_types=("authorization_code",)
    )
    issued = await flow.exchange(await flow.code())
    assert issued.refresh_token is None


# -- refresh (RFC 6749 §6, RFC 9700 §4.14.2) -------------------------------------------------


async def test_refresh_rotates_and_spends_the_old_token(flow: Flow) -> None:
    first = await flow.exchange(await flow.code())
    second = await flow.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert not await flow.active(first.refresh_token)
    assert await flow.active(second.refresh_token)


async def test_scope_may_narrow_never_widen(flow: Flow) -> None:
    first = await flow.exchange(await flow.code(scope=("read",)))
    narrowed = await flow.refresh(first.refresh_token, scope="read")
    assert narrowed.scope == "read"
    with pytest.raises(errors.InvalidScope):
        await flow.refresh(narrowed.refresh_token, scope="read write")
    # the refresh token keeps the original grant: the next refresh may take it all again
    again = await flow.refresh(narrowed.refresh_token)
    assert again.scope == "read"


async def test_refresh_token_idle_expiry(clock: FrozenClock) -> None:
    flow = await make_flow(clock, refresh_idle_ttl=3600, refresh_absolute_ttl=7200)
    first = await flow.exchange(await flow.code())
    clock.advance(3599)
    second = await flow.refresh(first.refresh_token)
    clock.advance(3600)
    with pytest.raises(errors.InvalidGrant, match="expired"):
        await flow.refresh(second.refresh_token)


async def test_refresh_token_absolute_expiry(clock: FrozenClock) -> None:
    flow = await make_flow(clock, refresh_idle_ttl=3600, refresh_absolute_ttl=5000)
    token = (await flow.exchange(await flow.code())).refresh_token
    clock.advance(3000)
    token = (await flow.refresh(token)).refresh_token
    record = next(iter(r for r in flow.store.refresh_tokens.values() if r.spent_at is None))
    assert record.expires_at == flow.store.families[record.family_id].absolute_expires_at
    clock.advance(2000)
    with pytest.raises(errors.InvalidGrant, match="expired"):
        await flow.refresh(token)


async def test_reused_refresh_token_revokes_family(clock: FrozenClock) -> None:
    flow = await make_flow(clock, refresh_grace=0)
    first = await flow.exchange(await flow.code())
    second = await flow.refresh(first.refresh_token)
    with pytest.raises(errors.InvalidGrant, match="already used"):
        await flow.refresh(first.refresh_token)
    for token in (second.access_token, second.refresh_token, first.access_token):
        assert not await flow.active(token)
    with pytest.raises(errors.InvalidGrant, match="revoked"):
        await flow.refresh(second.refresh_token)


async def test_refresh_token_of_another_client_is_invalid_grant(flow: Flow) -> None:
    first = await flow.exchange(await flow.code())
    other, secret = await create_client(
        flow.store,
        flow.clock,
        SystemRandomness(),
        ClientSpec(
            "other", "read write", ("authorization_code", "refresh_token"), redirect_uris=(CB,)
        ),
        86400,
    )
    assert secret
    with pytest.raises(errors.InvalidGrant):
        await flow.service.token(
            flow.request("refresh_token", other, secret, refresh_token=first.refresh_token or ""),
            POLICY,
        )
    assert await flow.active(first.refresh_token)  # not a reuse: nothing is revoked


# -- the grace window (RFC 9700 §4.14.2; tests.core_flow.LostAnswer) --------------------------


def test_the_default_grace_window_is_thirty_seconds() -> None:
    assert PartnerPolicy().refresh_grace == DEFAULT_REFRESH_GRACE == 30


@pytest.mark.parametrize("after", [0, 1, 30], ids=["at-once", "1s", "at-the-edge"])
async def test_the_token_spent_last_may_be_presented_once_more_within_the_grace(
    clock: FrozenClock, after: float
) -> None:
    s = await lost_answer(clock)  # the default policy
    clock.advance(after)
    retried = await s.flow.refresh(s.held.refresh_token)
    assert retried.refresh_token not in (s.lost.refresh_token, s.held.refresh_token)
    # the unanswered pair is withdrawn with it: the family keeps one live chain
    assert not await s.flow.active(s.lost.refresh_token)
    assert not await s.flow.active(s.lost.access_token)
    live = [r for r in s.flow.store.refresh_tokens.values() if r.spent_at is None]
    assert len(live) == 1 and live[0].access_jti == retried.jti
    assert await s.flow.active(retried.access_token)
    again = await s.flow.refresh(retried.refresh_token)
    assert await s.flow.active(again.refresh_token) and await s.flow.active(again.access_token)


@pytest.mark.parametrize(("grace", "reuse"), REUSES, ids=REUSE_IDS)
async def test_reuse_revokes_the_whole_family(
    clock: FrozenClock,
    grace: int,
    reuse: Reuse,
) -> None:
    s = await lost_answer(clock, refresh_grace=grace)
    presented = await reuse(s, clock)
    with pytest.raises(errors.InvalidGrant, match="already used"):
        await s.flow.refresh(presented)
    store = s.flow.store
    assert [f.revoked_at is not None for f in store.families.values()] == [True]
    assert all(r.revoked_at is not None for r in store.refresh_tokens.values())
    family_access = [t for t in store.tokens.values() if t.family_id is not None]
    assert family_access and all(t.revoked_at is not None for t in family_access)


def test_grace_window_is_capped_at_sixty_seconds() -> None:
    with pytest.raises(ValueError, match="between 0 and 60"):
        PartnerPolicy(refresh_grace=61)


# -- introspection and revocation hooks ------------------------------------------------------


async def test_introspecting_a_refresh_token(flow: Flow) -> None:
    issued = await flow.exchange(await flow.code())
    assert issued.refresh_token is not None
    body = await flow.service.introspect(issued.refresh_token, flow.app)
    assert body["active"] is True and body["token_type"] == "refresh_token"
    assert body["sub"] == flow.user.merchant_id and body["client_id"] == flow.app.client_id


async def test_revoking_a_refresh_token_revokes_its_family(flow: Flow) -> None:
    issued = await flow.exchange(await flow.code())
    assert issued.refresh_token is not None
    await flow.service.revoke(issued.refresh_token, flow.app)
    assert not await flow.active(issued.access_token)
    assert not await flow.active(issued.refresh_token)


# -- login -----------------------------------------------------------------------------------


async def test_login_throttles_per_account(flow: Flow) -> None:
    limits = LoginLimits(Limit(3, 900), Limit(100, 900))
    login = LoginService(flow.store, flow.store, FAST_PASSWORDS, MemoryLimiter(flow.clock), limits)
    for _ in range(3):
        with pytest.raises(LoginRefused):
            await login.login(flow.user.email, "wrong password", "192.0.2.1")
    with pytest.raises(errors.RateLimited):
        await login.login(flow.user.email, PASSWORD, "192.0.2.2")
    flow.clock.advance(900)
    assert (await login.login(flow.user.email.upper(), PASSWORD, "192.0.2.2")) == flow.user


async def test_disabled_user_cannot_log_in(flow: Flow) -> None:
    login = LoginService(
        flow.store, flow.store, FAST_PASSWORDS, MemoryLimiter(flow.clock), LoginLimits()
    )
    await flow.store.disable_user(flow.user.user_id, flow.clock.now())
    with pytest.raises(LoginRefused):
        await login.login(flow.user.email, PASSWORD, "192.0.2.1")


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"email": "not-an-email"}, "e-mail"),
        ({"password": "short"}, "at least"),
        ({"role": "root"}, "role"),
        ({"role": "operator", "merchant": "Shop"}, "operators"),
        ({"role": "member", "merchant": None}, "needs --merchant"),
        ({"email": "a@shop.test"}, "exists"),
    ],
)
async def test_create_user_refuses(flow: Flow, kw: dict, message: str) -> None:
    args: dict[str, object] = {
        "email": "b@shop.test",
        "password": PASSWORD,
        "role": "member",
        "merchant": "Shop",
    }
    args.update(kw)
    with pytest.raises(AdminError, match=message):
        await create_user(
            flow.store, flow.store, FAST_PASSWORDS, flow.clock, SystemRandomness(), **args
        )  # type: ignore[arg-type]


async def test_passwords_are_argon2id(flow: Flow) -> None:
    assert flow.user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(flow.user)


# -- purge -----------------------------------------------------------------------------------


async def test_purge_deletes_only_what_has_ended(clock: FrozenClock) -> None:
    flow = await make_flow(clock, refresh_idle_ttl=3600, refresh_absolute_ttl=7200)
    await flow.exchange(await flow.code())
    await flow.code()
    counts = await purge_once(flow.store, clock, 10, 1800)
    assert counts.total == 0
    clock.advance(7201)
    counts = await purge_once(flow.store, clock, 1, 1800)
    assert counts.as_dict() == {
        "access_tokens": 1,
        "refresh_tokens": 1,
        "authorization_codes": 2,
        "sessions": 0,
        "pushed_requests": 0,
        "audit_events": 0,
        "consents": 0,
    }
    assert not flow.store.families and not flow.store.codes and not flow.store.tokens


async def test_scheduled_purge_runs_every_interval(flow: Flow) -> None:
    await flow.code()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            raise RuntimeError("stop")
        flow.clock.advance(seconds)

    with pytest.raises(RuntimeError, match="stop"):
        await purge_forever(flow.store, flow.clock, 600, 100, 1800, sleep=sleep)
    assert waits == [600, 600, 600] and not flow.store.codes
