"""POST /oauth/token for partner apps: the authorization code grant (RFC 6749 §4.1.3, RFC
7636 §4.5) and the refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2); RFC 7009 and RFC
7662 for refresh tokens."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
import uvicorn

from tests.conftest import Harness, make_settings, running_app
from tests.partner import (
    FAST_PASSWORDS,
    PASSWORD,
    REDIRECT,
    Partner,
    continued_to,
    csrf_of,
    hidden_fields,
    make_partner,
    pkce_pair,
    query_of,
)
from tokensmith.core.accounts import create_user
from tokensmith.core.admin import ClientSpec, create_client, create_merchant
from tokensmith.core.clock import FrozenClock
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.sql import SqlStore, make_engine
from tokensmith.web.app import create_app


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    return await make_partner(harness)


async def _code_and_verifier(partner: Partner) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    code = await partner.code(code_challenge=challenge, code_challenge_method="S256")
    return code, verifier


# -- the T-Gate exchange ---------------------------------------------------------------------


async def test_code_exchange_by_basic_auth_returns_the_t_gate_response(partner: Partner) -> None:
    code, verifier = await _code_and_verifier(partner)
    r = await partner.exchange(code, code_verifier=verifier)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["expires_in"] == 7200 and body["token_type"] == "Bearer"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == partner.merchant.merchant_id
    assert claims["client_id"] == partner.app.client_id and claims["scope"] == "read write"


async def test_confidential_client_without_pkce_may_exchange(partner: Partner) -> None:
    r = await partner.exchange(await partner.code())
    assert r.status_code == 200


async def test_client_secret_post_is_accepted_unless_basic_only(harness: Harness) -> None:
    p = await make_partner(harness)
    code = await p.code()
    r = await p.exchange(code, auth=None, client_id=p.app.client_id, client_secret=p.secret)
    assert r.status_code == 200
    strict, secret = await harness.client(
        name="strict",
        grant_types=("authorization_code",),
        redirect_uris=(REDIRECT,),
        basic_only=True,
    )
    p.app, p.secret = strict, secret
    code = await p.code()
    r = await p.exchange(code, auth=None, client_id=strict.client_id, client_secret=secret)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_public_client_exchanges_with_pkce_and_no_secret(harness: Harness) -> None:
    p = await make_partner(harness, public=True)
    code, verifier = await _code_and_verifier(p)
    r = await p.exchange(code, auth=None, client_id=p.app.client_id, code_verifier=verifier)
    assert r.status_code == 200 and "refresh_token" in r.json()


# -- RFC 6749 §5.2 errors, table-driven -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"code": None}, 400, "invalid_request"),
        ({"code": "not-a-code"}, 400, "invalid_grant"),
        ({"redirect_uri": "https://partner.example/other"}, 400, "invalid_grant"),
        ({"redirect_uri": None}, 400, "invalid_request"),
        ({"code_verifier": "x" * 43}, 400, "invalid_grant"),
        ({"code_verifier": None}, 400, "invalid_grant"),
        ({"code_verifier": "short"}, 400, "invalid_request"),
        ({"secret": "wrong"}, 401, "invalid_client"),
    ],
    ids=[
        "unsupported-grant",
        "no-code",
        "unknown-code",
        "redirect-mismatch",
        "redirect-missing",
        "verifier-mismatch",
        "verifier-missing",
        "verifier-malformed",
        "bad-secret",
    ],
)
async def test_code_exchange_errors(
    partner: Partner, change: dict, status: int, error: str
) -> None:
    code, verifier = await _code_and_verifier(partner)
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    secret = change.pop("secret", partner.secret)
    form.update(change)
    data = {k: v for k, v in form.items() if v is not None}
    r = await partner.http.post("/oauth/token", data=data, auth=(partner.app.client_id, secret))
    assert (r.status_code, r.json()["error"]) == (status, error)
    # a failed attempt does not burn the code
    ok = await partner.exchange(code, code_verifier=verifier)
    assert ok.status_code == 200


async def test_pkce_downgrade_is_invalid_grant(partner: Partner) -> None:
    """RFC 9700 §2.1.1: a verifier for a code issued without a challenge."""
    code = await partner.code()
    r = await partner.exchange(code, code_verifier=pkce_pair()[0])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


async def test_code_used_by_another_client_is_invalid_grant(
    partner: Partner, harness: Harness
) -> None:
    code, verifier = await _code_and_verifier(partner)
    other, secret = await harness.client(
        name="other", grant_types=("authorization_code", "refresh_token"), redirect_uris=(REDIRECT,)
    )
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    r = await partner.http.post("/oauth/token", data=data, auth=(other.client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert (await partner.exchange(code, code_verifier=verifier)).status_code == 200


async def test_client_without_the_grant_is_unauthorized_client(
    partner: Partner, harness: Harness
) -> None:
    cc, secret = await harness.client(name="cc")
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    r = await partner.http.post("/oauth/token", data=data, auth=(cc.client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


async def test_expired_code_is_invalid_grant(partner: Partner, harness: Harness) -> None:
    code, verifier = await _code_and_verifier(partner)
    harness.clock.advance(600)
    r = await partner.exchange(code, code_verifier=verifier)
    assert r.json()["error"] == "invalid_grant"


async def test_reused_code_revokes_family(partner: Partner) -> None:
    code, verifier = await _code_and_verifier(partner)
    first = (await partner.exchange(code, code_verifier=verifier)).json()
    second = await partner.exchange(code, code_verifier=verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert (await partner.introspect(first["access_token"]))["active"] is False
    assert (await partner.introspect(first["refresh_token"]))["active"] is False


# -- refresh ---------------------------------------------------------------------------------


async def test_refresh_returns_a_new_pair_and_spends_the_old(partner: Partner) -> None:
    first = await partner.tokens()
    r = await partner.refresh(first["refresh_token"])
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["expires_in"] == 7200
    assert (await partner.introspect(first["refresh_token"]))["active"] is False
    assert (await partner.introspect(second["refresh_token"]))["active"] is True


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"refresh_token": None}, "invalid_request"),
        ({"refresh_token": "unknown"}, "invalid_grant"),
        ({"scope": "read write admin"}, "invalid_scope"),
        ({"scope": "bad\\scope"}, "invalid_scope"),
    ],
    ids=["missing", "unknown", "widen", "malformed-scope"],
)
async def test_refresh_errors(partner: Partner, form: dict, error: str) -> None:
    tokens = await partner.tokens()
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]} | form
    data = {k: v for k, v in data.items() if v is not None}
    r = await partner.http.post(
        "/oauth/token", data=data, auth=(partner.app.client_id, partner.secret)
    )
    assert r.status_code == 400 and r.json()["error"] == error


async def test_refresh_may_narrow_scope(partner: Partner) -> None:
    tokens = await partner.tokens()
    r = await partner.refresh(tokens["refresh_token"], scope="read")
    assert r.json()["scope"] == "read"


async def test_reused_refresh_token_kills_the_family(tmp_path: Path, clock: FrozenClock) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'g.db'}", refresh_grace_seconds=0)
    async with running_app(settings, clock) as h:
        p = await make_partner(h)
        first = await p.tokens()
        second = (await p.refresh(first["refresh_token"])).json()
        replay = await p.refresh(first["refresh_token"])
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        assert (await p.introspect(second["access_token"]))["active"] is False
        assert (await p.introspect(second["refresh_token"]))["active"] is False


# -- the grace window: a lost answer (RFC 9700 §4.14.2) --------------------------------------


async def _lost_answer(p: Partner, clock: FrozenClock) -> tuple[dict, dict, dict]:
    """``older`` exchanged for ``held`` (answered), then ``held`` exchanged for ``lost``,
    whose answer never arrives: ``held`` is the token the family spent last."""
    older = await p.tokens()
    held = (await p.refresh(older["refresh_token"])).json()
    clock.advance(5)
    lost = (await p.refresh(held["refresh_token"])).json()
    return older, held, lost


async def test_the_default_grace_takes_a_lost_answers_retry(harness_any: Harness) -> None:
    p = await make_partner(harness_any)
    _, held, lost = await _lost_answer(p, harness_any.clock)
    assert (await p.introspect(lost["access_token"]))["active"] is True  # known as live
    harness_any.clock.advance(30)
    retried = await p.refresh(held["refresh_token"])
    assert retried.status_code == 200, retried.text
    assert (await p.introspect(lost["access_token"]))["active"] is False
    assert (await p.introspect(lost["refresh_token"]))["active"] is False
    again = await p.refresh(retried.json()["refresh_token"])
    assert again.status_code == 200, again.text
    assert (await p.introspect(again.json()["refresh_token"]))["active"] is True


@pytest.mark.parametrize(
    "reuse",
    ["older-than-the-last-spent", "last-spent-a-second-time", "last-spent-after-the-grace"],
)
async def test_a_real_replay_still_revokes_the_family(harness_any: Harness, reuse: str) -> None:
    p, clock = await make_partner(harness_any), harness_any.clock
    older, held, lost = await _lost_answer(p, clock)
    issued = [older, held, lost]
    presented = held["refresh_token"]
    if reuse == "older-than-the-last-spent":
        presented = older["refresh_token"]
    elif reuse == "last-spent-a-second-time":
        retried = await p.refresh(presented)
        assert retried.status_code == 200
        issued.append(retried.json())
    else:
        clock.advance(31)
    r = await p.refresh(presented)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for pair in issued:
        for kind in ("access_token", "refresh_token"):
            assert (await p.introspect(pair[kind]))["active"] is False, kind


def test_the_grace_window_setting_is_thirty_seconds_by_default() -> None:
    assert make_settings(Path("/tmp"), "sqlite:////tmp/unused.db").refresh_grace_seconds == 30


def test_grace_window_setting_is_capped() -> None:
    with pytest.raises(ValueError, match="refresh_grace_seconds"):
        make_settings(Path("/tmp"), "sqlite:////tmp/unused.db", refresh_grace_seconds=61)


async def test_revoking_a_refresh_token_revokes_its_family(partner: Partner) -> None:
    tokens = await partner.tokens()
    r = await partner.http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(partner.app.client_id, partner.secret),
    )
    assert r.status_code == 200
    assert (await partner.introspect(tokens["access_token"]))["active"] is False
    assert (await partner.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_another_client_cannot_revoke_or_see_a_refresh_token(
    partner: Partner, harness: Harness
) -> None:
    tokens = await partner.tokens()
    other, secret = await harness.client(name="other")
    r = await partner.http.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=(other.client_id, secret)
    )
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    seen = await partner.http.post(
        "/oauth/introspect", data={"token": tokens["refresh_token"]}, auth=(other.client_id, secret)
    )
    assert seen.json() == {"active": False}


async def test_disabled_merchant_cannot_refresh(partner: Partner, harness: Harness) -> None:
    tokens = await partner.tokens()
    await harness.ctx.store.disable_merchant(partner.merchant.merchant_id, harness.clock.now())
    assert (await partner.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"


# -- concurrency: exactly one of N parallel refreshes wins -----------------------------------


def _outcomes(responses: list[httpx.Response]) -> tuple[int, set[str]]:
    wins = sum(r.status_code == 200 for r in responses)
    errors = {r.json()["error"] for r in responses if r.status_code != 200}
    return wins, errors


async def _live_refresh_tokens(p: Partner, responses: list[httpx.Response]) -> list[str]:
    tokens = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
    return [t for t in tokens if (await p.introspect(t))["active"]]


async def test_parallel_refresh_without_grace_has_exactly_one_success(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, db_url, refresh_grace_seconds=0)
    async with running_app(settings, clock) as h:
        p = await make_partner(h)
        token = (await p.tokens())["refresh_token"]
        responses = await asyncio.gather(*(p.refresh(token) for _ in range(50)))
        wins, errors = _outcomes(list(responses))
        assert wins == 1 and errors == {"invalid_grant"}


async def test_parallel_refresh_within_the_grace_leaves_no_second_chain(
    harness_any: Harness,
) -> None:
    """50 presentations of one token at once: one exchange, at most one replay (which
    supersedes it), and the rest are reuse, which revokes the family."""
    p = await make_partner(harness_any)
    token = (await p.tokens())["refresh_token"]
    responses = await asyncio.gather(*(p.refresh(token) for _ in range(50)))
    wins, errors = _outcomes(list(responses))
    assert 1 <= wins <= 2 and errors == {"invalid_grant"}
    assert await _live_refresh_tokens(p, list(responses)) == []


async def test_parallel_retries_of_the_last_spent_token_leave_no_second_chain(
    harness_any: Harness,
) -> None:
    """The token spent last, presented twice at once inside the grace window: one replay
    wins, the other is a second presentation, reuse, and revokes the family."""
    p = await make_partner(harness_any)
    _, held, lost = await _lost_answer(p, harness_any.clock)
    responses = list(await asyncio.gather(*(p.refresh(held["refresh_token"]) for _ in range(2))))
    assert sorted(r.status_code for r in responses) == [200, 400]
    assert await _live_refresh_tokens(p, responses) == []
    assert (await p.introspect(lost["refresh_token"]))["active"] is False


async def test_parallel_code_exchange_has_exactly_one_success(harness_any: Harness) -> None:
    p = await make_partner(harness_any)
    code, verifier = await _code_and_verifier(p)
    responses = await asyncio.gather(*(p.exchange(code, code_verifier=verifier) for _ in range(20)))
    wins, _ = _outcomes(list(responses))
    assert wins == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _uvicorn(app: object, port: int) -> Iterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            threading.Event().wait(0.05)
        assert server.started, "uvicorn did not start"
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextlib.asynccontextmanager
async def _seeded(db_url: str) -> AsyncIterator[tuple[str, str, str]]:
    """A merchant, a user and a partner app, written by the test beside the server."""
    store = SqlStore(make_engine(db_url, pool_size=2))
    clock, rand = FrozenClock(), SystemRandomness()
    try:
        m = await create_merchant(store, clock, rand, "Real Shop")
        await create_user(
            store,
            store,
            FAST_PASSWORDS,
            clock,
            rand,
            email="r@shop.test",
            password=PASSWORD,
            role="member",
            merchant=m.merchant_id,
        )
        spec = ClientSpec(
            "Real App",
            "read write",
            ("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
        )
        app, secret = await create_client(store, clock, rand, spec, 86400)
        assert secret
        yield app.client_id, secret, "r@shop.test"
    finally:
        await store.close()


@pytest.mark.e2e
@pytest.mark.parametrize("grace", [0, 30], ids=["no-grace", "default-grace"])
async def test_parallel_refresh_through_a_real_server(
    db_url: str, tmp_path: Path, grace: int
) -> None:
    """Without a grace window exactly one of 50 parallel exchanges wins; with it, the
    exchange and at most one replay; either way the others are reuse, and no refresh token
    answered stays live."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, db_url, issuer=base, refresh_grace_seconds=grace)
    with _uvicorn(create_app(settings), port):
        async with (
            _seeded(db_url) as (client_id, secret, email),
            httpx.AsyncClient(base_url=base, timeout=30) as http,
        ):
            page = await http.get("/login")
            await http.post(
                "/login",
                data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            )
            params = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "state": "s",
            }
            consent = await http.get("/oauth/authorize", params=params)
            decided = await http.post(
                "/oauth/authorize/decision",
                data=hidden_fields(consent.text) | {"decision": "allow"},
            )
            code = query_of(continued_to(decided))["code"]
            auth = (client_id, secret)
            data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
            token = (await http.post("/oauth/token", data=data, auth=auth)).json()["refresh_token"]
            refresh = {"grant_type": "refresh_token", "refresh_token": token}
            responses = await asyncio.gather(
                *(http.post("/oauth/token", data=refresh, auth=auth) for _ in range(50))
            )
            live = [
                r.json()["refresh_token"]
                for r in responses
                if r.status_code == 200
                and (
                    await http.post(
                        "/oauth/introspect", data={"token": r.json()["refresh_token"]}, auth=auth
                    )
                ).json()["active"]
            ]
    wins, errors = _outcomes(list(responses))
    assert errors == {"invalid_grant"}
    assert wins == 1 if grace == 0 else 1 <= wins <= 2
    assert live == []  # the losers' presentations are reuse
