"""Cross-process FileTokenCache, and behaviours over real sockets (uvicorn on loopback)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time

import httpx
import orjson
import pytest
import requests
from click.testing import CliRunner
from client_fakes import CLIENT_ID, CLIENT_SECRET, FakeAS, serve

from tokensmith.client import (
    FileTokenCache,
    MemoryRefreshTokenStore,
    RequestsAuth,
    RetryPolicy,
    ServerError,
    TokenClient,
)
from tokensmith.client.cli import token as token_command


def test_two_clients_sharing_a_file_cache_make_one_token_request(tmp_path, server, clock):
    cache = FileTokenCache(tmp_path / "tokens.json")
    clients = [
        TokenClient(
            "https://as.test/o/token/",
            CLIENT_ID,
            CLIENT_SECRET,
            http_client=httpx.Client(transport=server.transport()),
            clock=clock,
            cache=cache,
        )
        for _ in range(2)
    ]
    a, b = (c.get_token() for c in clients)
    assert a == b
    assert len(server.token_requests) == 1
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert a.access_token not in str(cache) and CLIENT_ID not in cache.path.read_text()


def test_file_cache_entry_is_invalidated_when_the_api_rejects_the_token(tmp_path, server, clock):
    cache = FileTokenCache(tmp_path / "tokens.json")

    def client() -> TokenClient:
        return TokenClient(
            "https://as.test/o/token/",
            CLIENT_ID,
            CLIENT_SECRET,
            http_client=httpx.Client(transport=server.transport()),
            clock=clock,
            cache=cache,
        )

    one, two = client(), client()
    with httpx.Client(transport=server.transport(), base_url="https://as.test", auth=one) as h:
        h.get("/api/x")
        server.revoked.add(server.api_calls[-1])
        assert h.get("/api/x").status_code == 200
    with httpx.Client(transport=server.transport(), base_url="https://as.test", auth=two) as h:
        assert h.get("/api/x").status_code == 200  # picks up the renewed token from the file
    assert len(server.token_requests) == 2


def test_file_cache_never_stores_refresh_tokens(tmp_path, server, clock):
    cache = FileTokenCache(tmp_path / "tokens.json")
    tc = TokenClient(
        "https://as.test/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        http_client=httpx.Client(transport=server.transport()),
        clock=clock,
        cache=cache,
        refresh_store=MemoryRefreshTokenStore(),
    )
    token = tc.exchange_code(server.issue_code(), "https://app.test/cb")
    assert token.refresh_token and token.refresh_token not in cache.path.read_text()


def test_corrupt_cache_file_is_ignored(tmp_path, server, clock):
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    tc = TokenClient(
        "https://as.test/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        http_client=httpx.Client(transport=server.transport()),
        clock=clock,
        cache=FileTokenCache(path),
    )
    assert tc.get_token().access_token
    assert orjson.loads(path.read_bytes())


WORKER = textwrap.dedent(
    """
    import sys
    from tokensmith.client import FileTokenCache, TokenClient
    url, path = sys.argv[1], sys.argv[2]
    secret = sys.stdin.read()
    tc = TokenClient(url + "/o/token/", "svc:payments", secret, cache=FileTokenCache(path))
    print(tc.get_token().access_token)
    """
)


@pytest.fixture
def live():
    fake = FakeAS(delay=0.3)
    with serve(fake.asgi_app()) as url:
        fake.issuer = url
        yield fake, url


def test_worker_processes_share_one_token_through_the_file_cache(live, tmp_path):
    fake, url = live
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(tmp_path / "cache.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(CLIENT_SECRET, timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1 and outs[0].startswith("at-")
    assert len(fake.token_requests) == 1


def test_requests_adapter_adds_bearer_and_retries_after_invalid_token(live):
    fake, url = live
    fake.delay = 0
    with TokenClient(url + "/o/token/", CLIENT_ID, CLIENT_SECRET) as tc:
        auth = RequestsAuth(tc)
        with requests.Session() as session:
            session.auth = auth
            assert session.get(url + "/api/x", timeout=5).status_code == 200
            fake.revoked.add(fake.api_calls[-1])
            response = session.post(url + "/api/x", data=b"payload", timeout=5)
    assert fake.api_calls[-1] != fake.api_calls[-2]
    assert len(fake.token_requests) == 2
    assert response.history and response.history[0].status_code == 401
    assert CLIENT_SECRET not in repr(auth)


def test_slow_token_endpoint_times_out_and_is_retried_over_real_sockets(live):
    fake, url = live
    fake.delay = 1.0
    sleeps: list[float] = []
    with TokenClient(
        url + "/o/token/",
        CLIENT_ID,
        CLIENT_SECRET,
        timeout=0.2,
        sleep=sleeps.append,
        retry=RetryPolicy(max_attempts=2),
    ) as tc:
        started = time.monotonic()
        with pytest.raises(ServerError) as info:
            tc.get_token()
        assert time.monotonic() - started < 3
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(sleeps) == 1


def test_500_then_success_over_real_sockets(live):
    fake, url = live
    fake.delay = 0
    fake.script.extend([500, 503])
    with TokenClient(url + "/o/token/", CLIENT_ID, CLIENT_SECRET, sleep=lambda s: None) as tc:
        assert tc.get_token().access_token.startswith("at-")
    assert len(fake.token_requests) == 3


def test_cli_prints_the_token_using_discovery(live):
    fake, url = live
    fake.delay = 0
    result = CliRunner().invoke(
        token_command,
        ["--issuer", url, "--client-id", CLIENT_ID, "--client-secret-stdin", "--scope", "read"],
        input=CLIENT_SECRET + "\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("at-")
    assert fake.recorded[0].path == "/.well-known/oauth-authorization-server"


def test_cli_json_output_for_tpay_dialect(live):
    fake, url = live
    fake.delay = 0
    result = CliRunner().invoke(
        token_command,
        [
            "--issuer",
            url,
            "--client-id",
            CLIENT_ID,
            "--client-secret-stdin",
            "--dialect",
            "tpay",
            "--json",
        ],
        input=CLIENT_SECRET + "\n",
    )
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    assert data["token_type"] == "Bearer" and data["scope"] == "read"
    assert 3500 < data["expires_in"] <= 3600


def test_cli_reports_errors_without_the_secret(live):
    fake, url = live
    fake.delay = 0
    result = CliRunner().invoke(
        token_command,
        ["--issuer", url, "--client-id", CLIENT_ID, "--client-secret-stdin"],
        input="wrong-secret-value\n",
    )
    assert result.exit_code == 1
    assert "invalid_client" in result.output
    assert "wrong-secret-value" not in result.output


def test_cli_refuses_to_run_without_a_secret(monkeypatch):
    monkeypatch.delenv("TOKENSMITH_CLIENT_SECRET", raising=False)
    result = CliRunner().invoke(
        token_command, ["--issuer", "http://127.0.0.1:9", "--client-id", "x"]
    )
    assert result.exit_code == 2
