"""The client library and the resource guard against a real ``tokensmith serve``.

One server per module (``tpay``, ``tbc`` and ``dot`` dialects on a loopback port); the
payments API of ``examples/payments_api.py`` runs under uvicorn on another loopback port,
configured with the server as its issuer.  Nothing is faked: every token comes from the
server, every check goes through its JWKS or introspection endpoint.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.live import (
    AUDIENCE,
    ROOT,
    LiveServer,
    free_port,
    jose_header,
    load_example,
    serve_asgi,
    wait_for,
)
from tokensmith.client import AsyncTokenClient, InvalidClient, TokenClient
from tokensmith.resource import TokenValidator

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Accounts:
    client_id: str
    secret: str
    apikey: str
    #: The payments API's own client, with the ``introspection`` scope.
    api_id: str
    api_secret: str


@pytest.fixture(scope="module")
def accounts(server: LiveServer) -> Accounts:
    shop = server.cli("clients", "create", "--name", "shop backend", "--scope", "read write admin")
    api = server.cli("clients", "create", "--name", "payments api", "--scope", "introspection")
    key = server.cli("apikeys", "create", "--name", "developer app")
    return Accounts(
        shop["client_id"],
        shop["client_secret"],
        key["apikey"],
        api["client_id"],
        api["client_secret"],
    )


@dataclass
class Api:
    base: str
    validator: TokenValidator


@pytest.fixture(scope="module")
def payments_api(server: LiveServer, accounts: Accounts) -> Iterator[Api]:
    """examples/payments_api.py configured from its environment, as its docstring says."""
    example = load_example("payments_api")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKENSMITH_ISSUER", server.issuer)
        mp.setenv("TOKENSMITH_AUDIENCE", AUDIENCE)
        mp.setenv("TOKENSMITH_CLIENT_ID", accounts.api_id)
        mp.setenv("TOKENSMITH_CLIENT_SECRET", accounts.api_secret)
        # Ask the server about every opaque token: a revocation shows at once.
        mp.setenv("TOKENSMITH_INTROSPECTION_CACHE_TTL", "0")
        validator = example.validator_from_env()
    with serve_asgi(example.create_app(validator)) as base:
        yield Api(base, validator)


def _challenge(response: httpx.Response) -> str:
    return response.headers.get("www-authenticate", "")


# -- token endpoints, one per dialect ---------------------------------------------------


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_oauth_token_endpoint_with_basic_and_post(
    server: LiveServer, accounts: Accounts, auth_method: Any
) -> None:
    with TokenClient(
        server.base + "/oauth/token",
        accounts.client_id,
        accounts.secret,
        scope="read write",
        auth_method=auth_method,
    ) as tc:
        token = tc.get_token()
    assert token.scope == "read write"
    assert token.token_type == "Bearer"
    assert jose_header(token.access_token)["typ"] == "at+jwt"  # RFC 9068
    assert 3500 < token.lifetime <= 3600


def test_from_issuer_discovers_the_token_endpoint(server: LiveServer, accounts: Accounts) -> None:
    with TokenClient.from_issuer(server.issuer, accounts.client_id, accounts.secret, "read") as tc:
        assert tc.token_url == server.issuer + "/oauth/token"
        assert tc.auth_method == "client_secret_basic"
        assert tc.authorization_endpoint == server.issuer + "/oauth/authorize"
        assert tc.get_token().scope == "read"


def test_tpay(server: LiveServer, accounts: Accounts) -> None:
    before = server.issued("tpay")
    with TokenClient.tpay(accounts.client_id, accounts.secret, base_url=server.base) as tc:
        token = tc.get_token()
        assert tc.get_token() is token  # reused until it expires
    assert server.issued("tpay") - before == 1
    assert token.access_token.count(".") == 0  # opaque
    assert 7100 < token.lifetime <= 7200


def test_tpay_wrong_secret_is_invalid_client(server: LiveServer, accounts: Accounts) -> None:
    with (
        TokenClient.tpay(accounts.client_id, "not-the-secret", base_url=server.base) as tc,
        pytest.raises(InvalidClient) as err,
    ):
        tc.get_token()
    assert err.value.status_code == 401
    assert err.value.error == "invalid_client"


def test_tbc(server: LiveServer, accounts: Accounts) -> None:
    with TokenClient.tbc(
        accounts.apikey, accounts.client_id, accounts.secret, base_url=server.base
    ) as tc:
        token = tc.get_token()
    assert jose_header(token.access_token)["alg"] == "ES256"
    assert 86300 < token.lifetime <= 86400  # from expires_in and the JWT's exp


def test_tbc_wrong_apikey_is_the_typed_problem(server: LiveServer, accounts: Accounts) -> None:
    with (
        TokenClient.tbc(
            "wrong-apikey", accounts.client_id, accounts.secret, base_url=server.base
        ) as tc,
        pytest.raises(InvalidClient) as err,
    ):
        tc.get_token()
    assert err.value.error == "invalid_apikey"
    assert err.value.status_code == 401
    assert err.value.system_code == "tpay-access-token.401.001"
    assert err.value.description == "the apikey is not valid"


def test_tbc_wrong_secret_is_invalid_client_400(server: LiveServer, accounts: Accounts) -> None:
    with (
        TokenClient.tbc(
            accounts.apikey, accounts.client_id, "wrong-secret", base_url=server.base
        ) as tc,
        pytest.raises(InvalidClient) as err,
    ):
        tc.get_token()
    assert err.value.error == "invalid_client"
    assert err.value.status_code == 400
    assert err.value.system_code == "tpay-access-token.400.001"
    assert accounts.apikey not in str(err.value) and "wrong-secret" not in repr(err.value)


@pytest.mark.parametrize("path", ["/oauth/token", "/o/token/"])
def test_wrong_secret_is_invalid_client(server: LiveServer, accounts: Accounts, path: str) -> None:
    with (
        TokenClient(server.base + path, accounts.client_id, "wrong-secret", "read") as tc,
        pytest.raises(InvalidClient) as err,
    ):
        tc.get_token()
    assert err.value.status_code == 401


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_payments_api_o_token(server: LiveServer, accounts: Accounts, auth_method: Any) -> None:
    before = server.issued("dot")
    with TokenClient(
        server.base + "/o/token/",
        accounts.client_id,
        accounts.secret,
        scope="read write",
        auth_method=auth_method,
    ) as tc:
        token = tc.get_token()
    assert server.issued("dot") - before == 1
    assert token.scope == "read write"
    assert 35900 < token.lifetime <= 36000


async def test_async_client_in_every_dialect(server: LiveServer, accounts: Accounts) -> None:
    a = accounts
    async with (
        await AsyncTokenClient.from_issuer(server.issuer, a.client_id, a.secret, "read") as std,
        AsyncTokenClient.tpay(a.client_id, a.secret, base_url=server.base) as tpay,
        AsyncTokenClient.tbc(a.apikey, a.client_id, a.secret, base_url=server.base) as tbc,
        AsyncTokenClient(server.base + "/o/token/", a.client_id, a.secret, "read write") as dot,
        AsyncTokenClient.tbc("wrong-apikey", a.client_id, a.secret, base_url=server.base) as bad,
    ):
        tokens = await asyncio.gather(std.get_token(), tpay.get_token(), tbc.get_token())
        assert tokens[0].scope == "read"
        assert {t.token_type for t in tokens} == {"Bearer"}
        assert (await dot.get_token()).scope == "read write"
        with pytest.raises(InvalidClient) as err:
            await bad.get_token()
        assert err.value.system_code == "tpay-access-token.401.001"


# -- an API guarded by tokensmith.resource ----------------------------------------------


def test_guarded_api_accepts_a_jwt(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    tc = TokenClient.from_issuer(server.issuer, accounts.client_id, accounts.secret, "read")
    with tc, httpx.Client(base_url=payments_api.base, auth=tc) as http:
        r = http.get("/payments/")
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()] == ["pay_001", "pay_002"]
    assert r.headers["x-client-id"] == accounts.client_id


def test_guarded_api_introspects_an_opaque_o_token(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    before = payments_api.validator.introspections
    tc = TokenClient(server.base + "/o/token/", accounts.client_id, accounts.secret, "read write")
    with tc, httpx.Client(base_url=payments_api.base, auth=tc) as http:
        r = http.get("/payments/")
    assert r.status_code == 200, r.text
    assert payments_api.validator.introspections == before + 1


def test_payments_api_example_runs_as_a_script(server: LiveServer, accounts: Accounts) -> None:
    """``python examples/payments_api.py`` as the README runs it, configured by environment."""
    port = free_port()
    env = os.environ | {
        "TOKENSMITH_ISSUER": server.issuer,
        "TOKENSMITH_CLIENT_ID": accounts.api_id,
        "TOKENSMITH_CLIENT_SECRET": accounts.api_secret,
        "PORT": str(port),
    }
    script = str(ROOT / "examples" / "payments_api.py")
    proc = subprocess.Popen([sys.executable, script], env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    tc = TokenClient(server.base + "/o/token/", accounts.client_id, accounts.secret, "read write")
    try:
        wait_for(base + "/healthz", proc)
        with tc, httpx.Client(auth=tc) as api:
            r = api.get(base + "/payments/")
        assert r.status_code == 200, r.text
        assert r.headers["x-client-id"] == accounts.client_id
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_token_without_the_scope_gets_403(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    before = server.issued()
    tc = TokenClient.from_issuer(server.issuer, accounts.client_id, accounts.secret, "write")
    with tc, httpx.Client(base_url=payments_api.base, auth=tc) as http:
        r = http.get("/payments/")
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in _challenge(r)
    assert 'scope="read"' in _challenge(r)
    assert r.history == []  # a 403 is not retried with a new token
    assert server.issued() - before == 1


def _revoke(server: LiveServer, accounts: Accounts, token: str) -> None:
    r = httpx.post(
        server.base + "/oauth/revoke",
        data={"token": token},
        auth=(accounts.client_id, accounts.secret),
    )
    assert r.status_code == 200, r.text


def test_revoked_token_is_refused_and_the_client_renews_once(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    tc = TokenClient(server.base + "/o/token/", accounts.client_id, accounts.secret, "read write")
    with tc, httpx.Client(base_url=payments_api.base, auth=tc) as http:
        assert http.get("/payments/").status_code == 200
        first = tc.get_token()
        _revoke(server, accounts, first.access_token)

        raw = httpx.get(
            payments_api.base + "/payments/", headers={"Authorization": first.authorization}
        )
        assert raw.status_code == 401
        assert 'error="invalid_token"' in _challenge(raw)
        assert 'realm="payments"' in _challenge(raw)

        before = server.issued("dot")
        r = http.get("/payments/")
        assert r.status_code == 200, r.text
        assert [h.status_code for h in r.history] == [401]  # renewed and resent once
        assert server.issued("dot") - before == 1
        assert tc.get_token().access_token != first.access_token


async def test_async_client_renews_once_after_revocation(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    atc = AsyncTokenClient(
        server.base + "/o/token/", accounts.client_id, accounts.secret, "read write"
    )
    async with atc, httpx.AsyncClient(base_url=payments_api.base, auth=atc) as http:
        assert (await http.get("/payments/")).status_code == 200
        first = await atc.get_token()
        await asyncio.to_thread(_revoke, server, accounts, first.access_token)
        r = await http.get("/payments/")
        assert r.status_code == 200, r.text
        assert [h.status_code for h in r.history] == [401]
        assert (await atc.get_token()).access_token != first.access_token


def test_a_token_refused_again_after_renewal_reaches_the_caller(
    server: LiveServer, accounts: Accounts
) -> None:
    """An API that refuses every token of this issuer (here: it expects another audience)
    gets one renewal and one resend, then the caller sees the 401: no loop."""
    app = load_example("payments_api").create_app(TokenValidator(server.issuer, "ledger"))
    tc = TokenClient(server.base + "/oauth/token", accounts.client_id, accounts.secret, "read")
    before = server.issued()
    with serve_asgi(app) as base, tc, httpx.Client(base_url=base, auth=tc) as http:
        r = http.get("/payments/")
        assert r.status_code == 401
        assert 'error="invalid_token"' in _challenge(r)
        assert [h.status_code for h in r.history] == [401]
        assert server.issued() - before == 2
        # Within forced_renew_interval the next 401 is not answered by yet another token.
        assert http.get("/payments/").status_code == 401
        assert server.issued() - before == 2


def test_guard_follows_a_key_rotation(server: LiveServer, accounts: Accounts) -> None:
    """JWTs are checked against the server's JWKS.  After ``tokensmith keys rotate`` the
    server signs with the new key at once; the guard's first token naming the unknown kid
    makes it fetch the JWKS once more, however many requests carry it at the same time."""
    validator = TokenValidator(server.issuer, AUDIENCE, realm="payments")
    app = load_example("payments_api").create_app(validator)
    tc = TokenClient.from_issuer(server.issuer, accounts.client_id, accounts.secret, "read")
    with serve_asgi(app) as base, tc, httpx.Client(base_url=base, auth=tc) as http:
        assert http.get("/payments/").status_code == 200
        fetched_at = time.monotonic()
        old = tc.get_token()
        assert validator.jwks_fetches == 1

        rotated = server.cli("keys", "rotate")
        assert rotated["kid"] != jose_header(old.access_token)["kid"]
        new = tc.refresh()
        for _ in range(100):  # the server reloads its keys every 0.2 s
            if jose_header(new.access_token)["kid"] == rotated["kid"]:
                break
            time.sleep(0.05)
            new = tc.refresh()
        assert jose_header(new.access_token)["kid"] == rotated["kid"]
        # The guard fetches at most once a second: a rotation is seen a second after a fetch
        # at the latest (not jwks_refetch_interval, 30 s, later).
        time.sleep(max(0.0, fetched_at + 1.1 - time.monotonic()))

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda _: http.get("/payments/"), range(32)))
        assert [r.status_code for r in responses] == [200] * 32
        assert all(r.history == [] for r in responses)  # accepted the first time
        assert validator.jwks_fetches == 2  # one refetch for the unknown kid

        # The old key is still published: its tokens stay valid until they expire.
        r = httpx.get(base + "/payments/", headers={"Authorization": old.authorization})
        assert r.status_code == 200
        assert validator.jwks_fetches == 2


# -- caching: many callers, one token request --------------------------------------------


def test_concurrent_threads_make_one_token_request(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    tc = TokenClient(server.base + "/oauth/token", accounts.client_id, accounts.secret, "read")
    before = server.issued()
    with (
        tc,
        httpx.Client(base_url=payments_api.base, auth=tc) as http,
        ThreadPoolExecutor(32) as pool,
    ):
        statuses = list(pool.map(lambda _: http.get("/payments/").status_code, range(64)))
        tokens = set(pool.map(lambda _: tc.get_token().access_token, range(64)))
    assert statuses == [200] * 64
    assert len(tokens) == 1
    assert server.issued() - before == 1


async def test_concurrent_tasks_make_one_token_request(
    server: LiveServer, accounts: Accounts, payments_api: Api
) -> None:
    atc = AsyncTokenClient(
        server.base + "/oauth/token", accounts.client_id, accounts.secret, "read"
    )
    before = await asyncio.to_thread(server.issued)
    async with atc, httpx.AsyncClient(base_url=payments_api.base, auth=atc) as http:
        responses = await asyncio.gather(*(http.get("/payments/") for _ in range(64)))
    assert [r.status_code for r in responses] == [200] * 64
    assert await asyncio.to_thread(server.issued) - before == 1
