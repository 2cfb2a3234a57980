"""The T-Gate partner flow end to end in real Chromium, against a real ``tokensmith serve``.

Accounts and the app are made with the CLI; a person logs in and approves in the browser;
the browser lands on a local redirect listener; Authlib (an independent OAuth client)
exchanges the code and refreshes twice; replaying an old refresh token kills the family.
Screenshots of the pages go to a temporary folder, or with
``TOKENSMITH_SCREENSHOTS=docs/screenshots`` to ``docs/screenshots/``.

Needs Debian's ``chromium`` and Python Playwright (never ``playwright install``); skips
cleanly without them.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.tree_guard import screenshots_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:.*httpx2.*"),
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli() -> str:
    path = Path(sys.executable).parent / "tokensmith"
    return str(path) if path.exists() else "tokensmith"


@dataclass
class Server:
    base: str
    env: dict[str, str]

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        out = subprocess.run(
            [_cli(), *args, "--json"],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(out.stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = os.environ | {
        "TOKENSMITH_DATABASE_URL": f"sqlite:///{tmp_path / 'e2e.db'}",
        "TOKENSMITH_SECRET_KEY": "e2e-secret-Hx2Wq7Lk4Zt9Rb1Vd6Mn3Gc8Fs5Jp0Ya",
        "TOKENSMITH_ISSUER": f"http://127.0.0.1:{port}",
        "TOKENSMITH_PORT": str(port),
    }
    env.pop("TOKENSMITH_CONFIG", None)
    proc = subprocess.Popen(
        [_cli(), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("tokensmith serve did not start")
        yield Server(base, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


class _Listener(http.server.BaseHTTPRequestHandler):
    """The partner app's redirect endpoint: remembers the URL it was sent to."""

    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = b"<!doctype html><title>Partner</title><h1>Connected</h1>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (_Listener,), {"hits": []})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/callback", handler.hits
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _accounts(server: Server, redirect_uri: str) -> tuple[str, str]:
    merchant = server.cli("merchants", "create", "--name", "Acme Coffee Roasters")
    server.cli(
        "users",
        "create",
        "--merchant",
        merchant["merchant_id"],
        "--email",
        "ann@acme.test",
        "--password-stdin",
        "--role",
        "admin",
        stdin=PASSWORD + "\n",
    )
    app = server.cli(
        "clients",
        "create",
        "--name",
        "Ledger Sync",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        redirect_uri,
        "--scope",
        "read write",
    )
    return app["client_id"], app["client_secret"]


def _shoot(page: Any, name: str) -> None:
    page.screenshot(path=str(screenshots_dir() / name), full_page=True)


def _log_in_and_approve(browser: Any, url: str, redirect_uri: str) -> str:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    assert page.title().startswith("Sign in")
    _shoot(page, "login.png")
    page.get_by_label("E-mail address").fill("ann@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=wants access to")
    assert "Acme Coffee Roasters" in page.content()
    _shoot(page, "consent.png")
    page.set_viewport_size({"width": 390, "height": 844})
    _shoot(page, "consent-mobile.png")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(redirect_uri + "?**")
    landed = str(page.url)
    page.close()
    return landed


def test_partner_flow_in_chromium(
    server: Server, listener: tuple[str, list[str]], browser: Any
) -> None:
    from authlib.common.security import generate_token
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client

    redirect_uri, hits = listener
    client_id, secret = _accounts(server, redirect_uri)
    token_url = server.base + "/oauth/token"
    oauth = OAuth2Client(
        client_id,
        secret,
        scope="read write",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = generate_token(64)
    url, state = oauth.create_authorization_url(
        server.base + "/oauth/authorize", code_verifier=verifier
    )
    landed = _log_in_and_approve(browser, url, redirect_uri)
    assert hits and f"state={state}" in landed and "iss=" in landed

    first = oauth.fetch_token(token_url, authorization_response=landed, code_verifier=verifier)
    assert first["expires_in"] == 7200 and first["scope"] == "read write"
    second = oauth.refresh_token(token_url, refresh_token=first["refresh_token"])
    third = oauth.refresh_token(token_url, refresh_token=second["refresh_token"])
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3

    def active(token: str) -> bool:
        r = httpx.post(
            server.base + "/oauth/introspect", data={"token": token}, auth=(client_id, secret)
        )
        return bool(r.json()["active"])

    assert active(third["access_token"]) and active(third["refresh_token"])
    with pytest.raises(OAuthError, match="invalid_grant"):
        oauth.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert not active(third["access_token"])
    assert not active(third["refresh_token"])


def test_unknown_app_shows_an_error_page_in_chromium(server: Server, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.base + "/oauth/authorize?response_type=code&client_id=nope")
    assert "can\u2019t be used" in page.content()
    _shoot(page, "error.png")
    page.close()
