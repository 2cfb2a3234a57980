"""Error mapping (RFC 6749 §5.2 and problem+json), the tpay/TBC dialects, and secrecy."""

from __future__ import annotations

import logging
import pickle

import httpx
import pytest
from client_fakes import APIKEY, CLIENT_ID, CLIENT_SECRET, ISSUER, FakeAS

from tokensmith.client import (
    AsyncTokenClient,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    MemoryRefreshTokenStore,
    RateLimited,
    ServerError,
    Token,
    TokenClient,
    TokenError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tokensmith.client.errors import error_from_response, parse_retry_after

RFC6749_CASES = [
    (400, "invalid_request", InvalidRequest),
    (401, "invalid_client", InvalidClient),
    (400, "invalid_client", InvalidClient),
    (400, "invalid_grant", InvalidGrant),
    (400, "unauthorized_client", UnauthorizedClient),
    (400, "unsupported_grant_type", UnsupportedGrantType),
    (400, "invalid_scope", InvalidScope),
    (503, "temporarily_unavailable", ServerError),
    (500, "server_error", ServerError),
    (429, "slow_down", RateLimited),
    (400, "something_new", InvalidRequest),  # unknown code: by status
    (418, "something_new", TokenError),
]


@pytest.mark.parametrize(("status", "code", "cls"), RFC6749_CASES)
def test_rfc6749_error_body_maps_to_typed_exception(status, code, cls):
    exc = error_from_response(status, {"error": code, "error_description": "why it failed"})
    assert type(exc) is cls
    assert exc.error == code
    assert exc.status_code == status
    assert "why it failed" in str(exc)


PROBLEM_CASES = [
    (400, "400", "invalid_client", InvalidClient),
    (400, 400, "invalid_request", InvalidRequest),
    (401, "401", "invalid_apikey", InvalidClient),
    (400, "400", "invalid_grant", InvalidGrant),
    (429, "429", None, RateLimited),
    (500, "500", None, ServerError),
    (403, "403", None, UnauthorizedClient),
    (401, "401", None, InvalidClient),
]


@pytest.mark.parametrize(("status", "body_status", "code", "cls"), PROBLEM_CASES)
def test_problem_json_maps_by_code_then_status(status, body_status, code, cls):
    body = {
        "type": "https://developers.tbcbank.ge/errors",
        "title": "Bad Request",
        "status": body_status,
        "detail": "the detail text",
        "systemCode": f"tpay-access-token.{status}.001",
    }
    if code:
        body["code"] = code
    exc = error_from_response(status, body)
    assert type(exc) is cls
    assert exc.system_code == f"tpay-access-token.{status}.001"
    assert "the detail text" in str(exc)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, InvalidRequest), (401, InvalidClient), (429, RateLimited), (502, ServerError)],
)
def test_errors_without_a_body_map_by_status(status, cls):
    assert type(error_from_response(status, None)) is cls


def test_problem_json_status_in_body_is_used_when_http_status_is_200():
    exc = error_from_response(200, {"status": "400", "code": "invalid_client", "title": "x"})
    assert isinstance(exc, InvalidClient) and exc.status_code == 400


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 5.0),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(header, expected):
    assert parse_retry_after(header, now=1445412475.0) == expected


def test_token_errors_survive_pickling():
    exc = error_from_response(429, {"error": "slow_down"}, retry_after=3.0)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is RateLimited and again.retry_after == 3.0 and str(again) == str(exc)


# -- tpay ---------------------------------------------------------------------------------
def test_tpay_posts_credentials_without_grant_type_and_honours_issued_at(clock):
    server = FakeAS(clock=clock, lifetime=7200)
    tc = TokenClient.tpay(
        CLIENT_ID,
        CLIENT_SECRET,
        base_url="https://api.tpay.test",
        http_client=httpx.Client(transport=server.transport()),
        clock=clock,
    )
    clock.advance(0.9)  # the server reports an issued_at in the past (whole seconds)
    token = tc.get_token()
    rec = server.token_requests[0]
    assert rec.path == "/oauth/auth"
    assert rec.form == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert "authorization" not in rec.headers
    assert token.scope == "read"
    assert token.expires_at == int(clock.now) + 7200  # issued_at + expires_in < now + 7200


def test_tpay_sends_scope_when_given(clock):
    server = FakeAS(clock=clock)
    tc = TokenClient.tpay(
        CLIENT_ID,
        CLIENT_SECRET,
        "https://api.tpay.test",
        scope="read write",
        http_client=httpx.Client(transport=server.transport()),
    )
    assert tc.get_token().scope == "read write"


# -- TBC -----------------------------------------------------------------------------------
def make_tbc(server, clock, apikey=APIKEY, secret=CLIENT_SECRET, **kw):
    return TokenClient.tbc(
        apikey,
        CLIENT_ID,
        secret,
        base_url="https://api.tbcbank.test",
        http_client=httpx.Client(transport=server.transport()),
        clock=clock,
        **kw,
    )


def test_tbc_sends_apikey_header_and_reads_jwt_exp(clock):
    server = FakeAS(clock=clock, lifetime=600)  # JWT exp = now + 600 while expires_in=86400
    token = make_tbc(server, clock).get_token()
    rec = server.token_requests[0]
    assert rec.path == "/v2/tpay/access-token"
    assert rec.headers["apikey"] == APIKEY
    assert rec.form == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert token.expires_at == int(clock.now + 600)


def test_tbc_bad_apikey_raises_invalid_client_with_system_code(clock):
    with pytest.raises(InvalidClient) as info:
        make_tbc(FakeAS(clock=clock), clock, apikey="wrong-key").get_token()
    assert info.value.error == "invalid_apikey"
    assert info.value.system_code == "tpay-access-token.401.001"
    assert info.value.status_code == 401


def test_tbc_bad_secret_raises_invalid_client_from_problem_json(clock):
    with pytest.raises(InvalidClient) as info:
        make_tbc(FakeAS(clock=clock), clock, secret="nope").get_token()
    assert info.value.system_code == "tpay-access-token.400.001"
    assert "Invalid client credentials" in str(info.value)


def test_tbc_429_retry_after_is_honoured(clock, sleeps):
    server = FakeAS(clock=clock)
    server.script.append((429, 2))
    make_tbc(server, clock, sleep=sleeps.append).get_token()
    assert sleeps == [2.0]


# -- secrecy -------------------------------------------------------------------------------
def test_secrets_and_tokens_never_appear_in_logs_reprs_or_messages(caplog, clock, sleeps):
    caplog.set_level(logging.DEBUG)
    server = FakeAS(clock=clock, echo_secret_in_errors=True)
    store = MemoryRefreshTokenStore()
    tc = TokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        http_client=httpx.Client(transport=server.transport()),
        clock=clock,
        sleep=sleeps.append,
        refresh_store=store,
    )
    token = tc.exchange_code(server.issue_code(), "https://app.test/cb", None)
    server.script.append(500)
    clock.advance(4000)
    token2 = tc.get_token()
    texts = [repr(tc), str(tc), repr(token), str(token), repr(token2), repr(store)]
    bad = TokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET + "-but-wrong",
        http_client=httpx.Client(transport=server.transport()),
    )
    with pytest.raises(InvalidClient) as info:
        bad.get_token()
    texts += [str(info.value), repr(info.value), repr(bad)]
    tbc = make_tbc(server, clock, apikey="wrong-" + APIKEY)
    with pytest.raises(InvalidClient) as info2:
        tbc.get_token()
    texts += [str(info2.value), repr(tbc)]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.args) for r in caplog.records]
    assert any("retry" in t for t in texts)  # the logs were captured
    secrets = [
        CLIENT_SECRET,
        APIKEY,
        token.access_token,
        token.refresh_token,
        token2.access_token,
        token2.refresh_token,
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text, text


def test_token_repr_masks_access_and_refresh_token():
    token = Token("at-secret-value", "Bearer", 1.0, "read", "rt-secret-value")
    assert "secret" not in repr(token)
    assert "***" in repr(token) and "'read'" in repr(token)


def test_async_client_repr_hides_the_secret():
    atc = AsyncTokenClient.tbc(APIKEY, CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(atc) and APIKEY not in repr(atc)
    assert CLIENT_SECRET not in str(vars(atc))
