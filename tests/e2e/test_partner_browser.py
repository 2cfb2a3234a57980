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

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.chromium import chromium, redirect_listener
from tests.tree_guard import screenshots_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:.*httpx2.*"),
]

PASSWORD = "correct horse battery staple"
#: How long a page may take to land on the app's callback (it takes well under a second).
LANDING_TIMEOUT_MS = 10_000


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


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    with redirect_listener() as found:
        yield found


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


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


def _sign_in(page: Any) -> None:
    page.get_by_label("E-mail address").fill("ann@acme.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _authorize_url(server: Server, client_id: str, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "read write",
            "state": state,
        }
    )
    return f"{server.base}/oauth/authorize?{query}"


def _landed_with_code(page: Any, redirect_uri: str, state: str) -> dict[str, list[str]]:
    page.wait_for_url(redirect_uri + "?**", timeout=LANDING_TIMEOUT_MS)
    assert page.get_by_role("heading", name="Connected").is_visible()
    query = parse_qs(urlsplit(str(page.url)).query)
    assert query["state"] == [state] and len(query["code"][0]) >= 43
    return query


def test_returning_user_signs_in_and_lands_on_the_app_in_chromium(
    server: Server, listener: tuple[str, list[str]], browser: Any
) -> None:
    """Approve with "Don't ask again"; later, in a browser without the session, the login
    form's answer leads on to the app (CSP ``form-action 'self'`` must not stop it)."""
    redirect_uri, hits = listener
    client_id, _ = _accounts(server, redirect_uri)
    first = browser.new_context()
    page = first.new_page()
    page.goto(_authorize_url(server, client_id, redirect_uri, "first"))
    _sign_in(page)
    page.wait_for_selector("text=wants access to")
    assert page.get_by_label("Don\u2019t ask again for Ledger Sync").is_checked()
    page.get_by_role("button", name="Allow").click()
    _landed_with_code(page, redirect_uri, "first")
    first.close()

    later = browser.new_context()
    page = later.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(_authorize_url(server, client_id, redirect_uri, "again"))
    assert page.title().startswith("Sign in")
    _sign_in(page)
    _landed_with_code(page, redirect_uri, "again")
    assert not blocked, blocked
    assert [h for h in hits if "state=again" in h and "code=" in h]
    later.close()


def test_app_whose_callback_hands_over_to_another_site_gets_the_user_there_in_chromium(
    server: Server, browser: Any
) -> None:
    """The consent form's answer reaches the app's callback, which redirects to a page on
    another origin: Chromium applies the consent page's ``form-action`` to that redirect
    too, so the form's navigation has to end on a page of ours."""
    with (
        redirect_listener() as (dashboard, landed),
        redirect_listener(forward=dashboard) as (callback, hits),
    ):
        client_id, _ = _accounts(server, callback)
        context = browser.new_context()
        page = context.new_page()
        page.goto(_authorize_url(server, client_id, callback, "handover"))
        _sign_in(page)
        page.wait_for_selector("text=wants access to")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(dashboard, timeout=LANDING_TIMEOUT_MS)
        assert page.get_by_role("heading", name="Connected").is_visible()
        assert [h for h in hits if "state=handover" in h and "code=" in h]
        assert "/callback" in landed
        context.close()
