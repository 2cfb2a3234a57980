"""Authorization code + PKCE (RFC 6749 §4.1, RFC 7636) and refresh rotation (RFC 6749 §6)."""

from __future__ import annotations

import os
import stat
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from client_fakes import CLIENT_ID, CLIENT_SECRET, ISSUER, FakeAS

from tokensmith.client import (
    PKCE,
    FileRefreshTokenStore,
    InvalidGrant,
    MemoryRefreshTokenStore,
    RefreshTokenStore,
    TokenClient,
    build_authorization_url,
    code_challenge_s256,
    make_code_verifier,
)

REDIRECT = "https://partner.test/callback"


def test_pkce_s256_matches_rfc7636_appendix_b():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_code_verifier_is_random_and_within_rfc_bounds():
    a, b = make_code_verifier(), make_code_verifier(43)
    assert len(a) == 64 and len(b) == 43 and a != make_code_verifier()
    pair = PKCE.generate()
    assert pair.challenge == code_challenge_s256(pair.verifier) and pair.method == "S256"
    assert pair.verifier not in repr(pair)
    with pytest.raises(ValueError):
        make_code_verifier(42)
    with pytest.raises(ValueError):
        code_challenge_s256("short")


def test_authorization_url_carries_pkce_state_and_keeps_existing_query():
    url = build_authorization_url(
        "https://as.test/o/authorize/?tenant=7",
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT,
        scope=["payments:read", "offline_access"],
        state="st",
        code_challenge="ch",
    )
    q = parse_qs(urlsplit(url).query)
    assert q == {
        "tenant": ["7"],
        "response_type": ["code"],
        "client_id": [CLIENT_ID],
        "redirect_uri": [REDIRECT],
        "scope": ["payments:read offline_access"],
        "state": ["st"],
        "code_challenge": ["ch"],
        "code_challenge_method": ["S256"],
    }


def test_client_builds_authorization_url_from_discovered_endpoint(clock):
    server = FakeAS(clock=clock)
    tc = TokenClient.from_issuer(
        ISSUER, CLIENT_ID, CLIENT_SECRET, http_client=httpx.Client(transport=server.transport())
    )
    pkce = PKCE.generate()
    url = tc.build_authorization_url(REDIRECT, scope="payments:read", state="s1", pkce=pkce)
    assert url.startswith(ISSUER + "/o/authorize/?")
    assert parse_qs(urlsplit(url).query)["code_challenge"] == [pkce.challenge]


class SpyStore:
    """A store that records the order of events around saves."""

    def __init__(self, events: list[str], initial: str | None = None) -> None:
        self.events = events
        self.token = initial

    def load(self) -> str | None:
        return self.token

    def save(self, token: str) -> None:
        self.events.append(f"save {token}")
        self.token = token


def make_user_client(server, clock, store, **kw) -> TokenClient:
    kw.setdefault("http_client", httpx.Client(transport=server.transport()))
    return TokenClient(
        ISSUER + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        clock=clock,
        refresh_store=store,
        **kw,
    )


def test_exchange_code_uses_basic_auth_and_stores_the_refresh_token(clock):
    server = FakeAS(clock=clock)
    store = MemoryRefreshTokenStore()
    assert isinstance(store, RefreshTokenStore)
    tc = make_user_client(server, clock, store)
    pkce = PKCE.generate()
    token = tc.exchange_code(server.issue_code("c1"), REDIRECT, pkce.verifier)
    rec = server.token_requests[0]
    assert rec.headers["authorization"].startswith("Basic ")
    assert rec.form == {
        "grant_type": "authorization_code",
        "code": "c1",
        "redirect_uri": REDIRECT,
        "code_verifier": pkce.verifier,
    }
    assert store.load() == token.refresh_token
    assert tc.get_token() is token


def test_each_rotated_refresh_token_is_saved_before_the_new_access_token_is_used(clock):
    server = FakeAS(clock=clock, lifetime=300)
    events: list[str] = []
    store = SpyStore(events)
    tc = make_user_client(server, clock, store)
    tc.exchange_code(server.issue_code(), REDIRECT, None)

    def api(request: httpx.Request) -> httpx.Response:
        events.append("use " + request.headers["authorization"][7:])
        return httpx.Response(200)

    seen_refresh: set[str] = set()
    with httpx.Client(transport=httpx.MockTransport(api), auth=tc) as http:
        for _ in range(5):
            clock.advance(301)
            http.get("https://api.test/")
            rt = store.load()
            assert rt not in seen_refresh  # a NEW refresh token every time
            seen_refresh.add(rt)
    uses = [i for i, e in enumerate(events) if e.startswith("use")]
    saves = [i for i, e in enumerate(events) if e.startswith("save")]
    assert len(saves) == 6 and len(uses) == 5
    for use, save in zip(uses, saves[1:], strict=True):
        assert save < use
    forms = [r.form for r in server.token_requests[1:]]
    assert all(f["grant_type"] == "refresh_token" for f in forms)


def test_lost_refresh_response_is_retried_once_with_the_same_refresh_token(clock, sleeps):
    server = FakeAS(clock=clock, lifetime=300, grace=10)
    store = MemoryRefreshTokenStore(server.give_refresh_token("rt-start"))
    tc = make_user_client(server, clock, store, sleep=sleeps.append)
    server.script.append("drop")  # the server rotates, then the response is lost
    token = tc.get_token()
    sent = [r.form["refresh_token"] for r in server.token_requests]
    assert sent == ["rt-start", "rt-start"]
    assert store.load() == token.refresh_token
    assert server.refresh[token.refresh_token].active
    clock.advance(301)  # and the session goes on with the newly stored refresh token
    assert tc.get_token().access_token != token.access_token


def test_refresh_is_not_retried_more_than_once(clock, sleeps):
    server = FakeAS(clock=clock)
    store = MemoryRefreshTokenStore(server.give_refresh_token("rt-start"))
    tc = make_user_client(server, clock, store, sleep=sleeps.append)
    server.script.extend(["drop", "drop"])
    with pytest.raises(Exception) as info:
        tc.get_token()
    assert len(server.token_requests) == 2
    assert "unreachable" in str(info.value)
    assert store.load() == "rt-start"


def test_store_failure_means_the_new_access_token_is_not_used(clock):
    server = FakeAS(clock=clock)

    class BrokenStore(MemoryRefreshTokenStore):
        def save(self, token: str) -> None:
            raise OSError("disk full")

    tc = make_user_client(server, clock, BrokenStore(server.give_refresh_token("rt-a")))
    with pytest.raises(OSError):
        tc.get_token()
    assert tc._entry is None


def test_spent_refresh_token_outside_grace_raises_invalid_grant(clock):
    server = FakeAS(clock=clock, grace=10)
    store = MemoryRefreshTokenStore(server.give_refresh_token("rt-a"))
    tc = make_user_client(server, clock, store)
    tc.get_token()
    clock.advance(60)
    store.save("rt-a")  # e.g. a stale copy restored from a backup
    with pytest.raises(InvalidGrant, match="reused"):
        tc.refresh()


def test_missing_refresh_token_raises_invalid_grant(clock):
    tc = make_user_client(FakeAS(clock=clock), clock, MemoryRefreshTokenStore())
    with pytest.raises(InvalidGrant, match="authorization code"):
        tc.get_token()


def test_authorization_code_is_not_resent_after_a_lost_response(clock, sleeps):
    server = FakeAS(clock=clock)
    tc = make_user_client(server, clock, MemoryRefreshTokenStore(), sleep=sleeps.append)
    server.script.append("drop")
    with pytest.raises(Exception, match="unreachable"):
        tc.exchange_code(server.issue_code(), REDIRECT, None)
    assert len(server.token_requests) == 1


def test_file_refresh_store_is_atomic_and_private(tmp_path):
    path = tmp_path / "sub" / "refresh"
    store = FileRefreshTokenStore(path)
    assert store.load() is None
    store.save("rt-1")
    store.save("rt-2")
    assert store.load() == "rt-2"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["refresh"]  # no temp files left
    assert "rt-2" not in repr(store)
    store.clear()
    assert store.load() is None
