"""client_credentials (RFC 6749 §4.4) with the sync TokenClient against a fake server."""

from __future__ import annotations

import base64
import threading
from urllib.parse import quote_plus

import httpx
import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeAS, FakeClock

from tokensmith.client import (
    InvalidClient,
    RateLimited,
    RetryPolicy,
    ServerError,
    Token,
    TokenClient,
    TokenError,
)


def test_basic_auth_form_urlencodes_id_and_secret_before_base64(make_client, server):
    make_client().get_token()
    header = server.token_requests[0].headers["authorization"]
    expected = f"{quote_plus(CLIENT_ID)}:{quote_plus(CLIENT_SECRET)}".encode()
    assert header == "Basic " + base64.b64encode(expected).decode()
    assert server.token_requests[0].form == {"grant_type": "client_credentials"}


def test_client_secret_post_puts_credentials_in_the_form(make_client, server):
    make_client(auth_method="client_secret_post", scope=["read", "write"]).get_token()
    rec = server.token_requests[0]
    assert "authorization" not in rec.headers
    assert rec.form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "read write",
    }


def test_token_scope_defaults_to_requested_scope_when_response_omits_it(make_client, server):
    server.lifetime = 600
    tc = make_client(scope="read")
    token = tc.get_token()
    assert token.scope == "read"
    assert token.token_type == "Bearer"  # normalised from "bearer"


def test_cached_token_is_reused_until_the_refresh_margin(make_client, server, clock):
    server.lifetime = 3600  # margin = max(30, 360) = 360
    tc = make_client()
    first = tc.get_token()
    assert first.expires_at == clock.now + 3600
    clock.advance(3600 - 361)
    assert tc.get_token() is first
    clock.advance(2)
    second = tc.get_token()
    assert second.access_token != first.access_token
    assert len(server.token_requests) == 2


@pytest.mark.parametrize(
    ("lifetime", "margin", "renews_after"),
    [
        (3600, None, 3240),  # 10 % of lifetime
        (120, None, 90),  # 30 s floor
        (20, None, 10),  # never more than half the lifetime
        (3600, 5, 3595),  # explicit margin
    ],
)
def test_renewal_time_follows_the_margin_rule(
    make_client, server, clock, lifetime, margin, renews_after
):
    server.lifetime = lifetime
    tc = make_client(refresh_margin=margin)
    tc.get_token()
    clock.advance(renews_after - 0.5)
    tc.get_token()
    assert len(server.token_requests) == 1
    clock.advance(1)
    tc.get_token()
    assert len(server.token_requests) == 2


def test_token_is_renewed_before_it_expires_and_never_used_after(make_client, server, clock, api):
    server.lifetime = 60
    tc = make_client()
    with api(tc) as http:
        for _ in range(600):  # ten minutes in 1 s steps
            response = http.get("/api/thing")
            assert response.status_code == 200
            used = server.api_calls[-1]
            assert clock.now < server.tokens[used]
            clock.advance(1)
    # one token per 30 s (margin: max(30 s, 6 s) capped at half the 60 s lifetime)
    assert len(server.token_requests) == 20


def test_api_401_invalid_token_drops_token_renews_and_retries_once(make_client, server, api):
    tc = make_client()
    with api(tc) as http:
        assert http.get("/api/x").status_code == 200
        server.revoked.add(server.api_calls[-1])
        response = http.get("/api/x")
    assert response.status_code == 200
    assert len(response.history) == 1 and response.history[0].status_code == 401
    assert len(server.token_requests) == 2


def test_api_401_without_invalid_token_error_is_returned_as_is(make_client, server):
    tc = make_client()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="x"'})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=tc) as http:
        assert http.get("https://api.test/").status_code == 401
    assert len(server.token_requests) == 1


def test_api_rejecting_every_token_causes_one_retry_and_no_renewal_storm(make_client, server):
    tc = make_client()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=tc) as http:
        assert http.get("https://api.test/").status_code == 401
        assert len(calls) == 2 and calls[0] != calls[1]
        for _ in range(10):
            assert http.get("https://api.test/").status_code == 401
    # first token + one forced renewal; later refusals within the interval renew nothing
    assert len(server.token_requests) == 2


def test_5xx_is_retried_with_capped_jittered_exponential_backoff(make_client, server, sleeps):
    server.script.extend([500, 503, 502])
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    token = make_client(retry=policy).get_token()
    assert token.access_token
    assert len(server.token_requests) == 4
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0
    assert 1.5 <= sleeps[2] <= 3.0  # capped at max_delay


def test_connection_errors_are_retried(make_client, server, sleeps):
    server.script.extend(["connect", "connect"])
    assert make_client().get_token().access_token
    assert len(sleeps) == 2


def test_429_waits_for_retry_after(make_client, server, sleeps):
    server.script.append((429, 7))
    assert make_client().get_token().access_token
    assert sleeps == [7.0]


def test_429_with_a_long_retry_after_raises_rate_limited_at_once(make_client, server, sleeps):
    server.script.append((429, 3600))
    with pytest.raises(RateLimited) as info:
        make_client().get_token()
    assert info.value.retry_after == 3600
    assert sleeps == []


def test_persistent_5xx_raises_server_error_after_max_attempts(make_client, server, sleeps):
    server.script.extend([500] * 10)
    with pytest.raises(ServerError) as info:
        make_client(retry=RetryPolicy(max_attempts=3)).get_token()
    assert info.value.status_code == 500
    assert len(server.token_requests) == 3
    assert len(sleeps) == 2


def test_unreachable_endpoint_raises_server_error_with_cause(make_client, server):
    server.script.extend(["connect"] * 10)
    with pytest.raises(ServerError) as info:
        make_client(retry=RetryPolicy(max_attempts=2)).get_token()
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.status_code is None


def test_non_json_error_page_maps_by_status(make_client, server):
    server.script.extend(["html502"] * 4)
    with pytest.raises(ServerError) as info:
        make_client().get_token()
    assert "html" not in str(info.value)


def test_failed_renewal_inside_the_margin_keeps_the_still_valid_token(
    make_client, server, clock, sleeps
):
    server.lifetime = 600  # margin 60 s
    tc = make_client(retry=RetryPolicy(max_attempts=2))
    first = tc.get_token()
    clock.advance(550)
    server.script.extend([503, 503])
    assert tc.get_token() is first  # soft failure: still valid for 50 s
    assert tc.get_token() is first  # and no new attempt during the pause
    assert len(server.token_requests) == 3
    clock.advance(60)  # now expired: a failure must raise, never hand out the old token
    server.script.extend([503, 503])
    with pytest.raises(ServerError):
        tc.get_token()


def test_invalid_client_is_raised_without_retry(make_client, server, sleeps):
    tc = TokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        "wrong",
        http_client=httpx.Client(transport=server.transport()),
        sleep=sleeps.append,
    )
    with pytest.raises(InvalidClient) as info:
        tc.get_token()
    assert "client authentication failed" in str(info.value)
    assert sleeps == []


def test_thousand_concurrent_threads_on_empty_cache_make_one_token_request(make_client, server):
    server.delay = 0.05
    tc = make_client()
    barrier = threading.Barrier(1000)
    results: list[Token] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(tc.get_token())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(1000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 1000
    assert len({t.access_token for t in results}) == 1
    assert len(server.token_requests) == 1


def test_concurrent_callers_in_the_margin_do_not_wait_for_the_renewal(make_client, server, clock):
    server.lifetime = 600
    tc = make_client()
    first = tc.get_token()
    clock.advance(545)
    server.delay = 0.3
    renewed: list[Token] = []
    t = threading.Thread(target=lambda: renewed.append(tc.get_token()))
    t.start()
    while not tc._lock.locked():
        pass
    assert tc.get_token() is first  # answered at once with the still-valid token
    t.join()
    assert renewed[0].access_token != first.access_token


def test_from_issuer_discovers_endpoint_and_prefers_basic(server, clock):
    http = httpx.Client(transport=server.transport())
    tc = TokenClient.from_issuer(ISSUER, CLIENT_ID, CLIENT_SECRET, http_client=http, clock=clock)
    assert tc.token_url == ISSUER + "/o/token/"
    assert tc.auth_method == "client_secret_basic"
    assert tc.authorization_endpoint == ISSUER + "/o/authorize/"
    tc.get_token()
    assert server.recorded[0].path == "/.well-known/oauth-authorization-server"
    assert server.token_requests[0].headers["authorization"].startswith("Basic ")


def test_from_issuer_uses_client_secret_post_when_only_that_is_supported(clock):
    server = FakeAS(clock=clock, auth_methods=["client_secret_post"])
    http = httpx.Client(transport=server.transport())
    tc = TokenClient.from_issuer(ISSUER, CLIENT_ID, CLIENT_SECRET, http_client=http, clock=clock)
    assert tc.auth_method == "client_secret_post"
    tc.get_token()
    assert server.token_requests[0].form["client_secret"] == CLIENT_SECRET


def test_from_issuer_rejects_metadata_of_another_issuer(clock):
    server = FakeAS(clock=clock, issuer="https://evil.test")
    http = httpx.Client(transport=server.transport())
    with pytest.raises(TokenError, match="issuer"):
        TokenClient.from_issuer(ISSUER, CLIENT_ID, CLIENT_SECRET, http_client=http)


def test_from_issuer_with_a_path_uses_rfc8414_well_known_location(clock):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(
            200,
            json={"issuer": "https://as.test/tenant", "token_endpoint": "https://as.test/t"},
        )

    http = httpx.Client(transport=httpx.MockTransport(handler))
    tc = TokenClient.from_issuer("https://as.test/tenant", "c", "s", http_client=http)
    assert seen == ["/.well-known/oauth-authorization-server/tenant"]
    assert tc.token_url == "https://as.test/t"


def test_sync_client_refuses_to_drive_an_async_httpx_client(make_client):
    tc = make_client()

    async def go() -> None:
        async with httpx.AsyncClient(auth=tc) as http:
            await http.get("https://api.test/")

    import asyncio

    with pytest.raises(RuntimeError, match="AsyncTokenClient"):
        asyncio.run(go())


def test_token_requests_accept_a_real_clock_by_default(server):
    tc = TokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        http_client=httpx.Client(transport=FakeAS().transport()),
    )
    token = tc.get_token()
    import time

    assert token.expires_at > time.time() + 3000


def test_fake_clock_is_used_for_expiry(clock: FakeClock, make_client, server):
    token = make_client().get_token()
    assert token.issued_at == clock.now
