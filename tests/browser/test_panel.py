"""The merchant panel in real Chromium against a real ``tokensmith serve``.

A merchant admin logs in, adds a key, copies the secret from the page (and from the
clipboard), gets a token with it, rotates it with an overlap, revokes it and sees token
requests fail; another merchant's ids are refused; a member sees no forms. Screenshots of
the main pages go to a temporary folder, or with ``TOKENSMITH_SCREENSHOTS=docs/screenshots``
to ``docs/screenshots/panel-*.png``.

Needs Debian's ``chromium`` and Python Playwright (never ``playwright install``); skips
cleanly without them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chromium import CHROMIUM, chromium
from tests.tree_guard import screenshots_dir

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PASSWORD = "correct horse battery staple"
APP_REDIRECT = "https://ledger-sync.example/oauth/callback"


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
    db: str

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

    def user(self, merchant: str, email: str, role: str) -> None:
        self.cli(
            "users", "create", "--merchant", merchant, "--email", email,
            "--password-stdin", "--role", role, stdin=PASSWORD + "\n",
        )  # fmt: skip

    def token(self, client_id: str, secret: str) -> httpx.Response:
        return httpx.post(
            self.base + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=10,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("panel")
    port = _free_port()
    db = f"sqlite:///{tmp / 'panel.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")} | {
        "TOKENSMITH_DATABASE_URL": db,
        "TOKENSMITH_SECRET_KEY": "panel-secret-Gm6Vt1Kq9Wz4Rb7Hd2Lx5Nc8Fs3Jp0Ye",
        "TOKENSMITH_ISSUER": f"http://127.0.0.1:{port}",
        "TOKENSMITH_PORT": str(port),
        "TOKENSMITH_COMPAT": "tpay,tbc",
        "TOKENSMITH_ACTIVITY_FLUSH_INTERVAL": "0.3",
        "TOKENSMITH_FAILURES_PER_ADDRESS": "10000",
        "TOKENSMITH_FAILURES_PER_CLIENT": "10000",
    }
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [_cli(), "serve"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("tokensmith serve did not start")
        yield Server(base, env, db)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@dataclass
class Accounts:
    acme: str
    globex: str
    globex_key: str
    globex_app: str


@pytest.fixture(scope="module")
def accounts(server: Server) -> Accounts:
    acme = server.cli("merchants", "create", "--name", "Acme Coffee Roasters")["merchant_id"]
    globex = server.cli("merchants", "create", "--name", "Globex")["merchant_id"]
    server.user(acme, "ann@acme.test", "admin")
    server.user(acme, "bob@acme.test", "member")
    server.user(globex, "gina@globex.test", "admin")
    key = server.cli("clients", "create", "--name", "Globex ERP", "--merchant", globex)
    app = server.cli(
        "clients", "create", "--name", "Globex Books", "--merchant", globex,
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--redirect-uri", "https://globex.example/cb",
    )  # fmt: skip
    return Accounts(acme, globex, key["client_id"], app["client_id"])


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _page(browser: Any, server: Server, email: str) -> Any:
    context = browser.new_context(
        viewport={"width": 1360, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    page = context.new_page()
    page.goto(server.base + "/panel")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/panel/keys")
    return page


def _shoot(page: Any, name: str) -> None:
    page.screenshot(path=str(screenshots_dir() / f"panel-{name}.png"), full_page=True)


def _read_secret(page: Any) -> tuple[str, str]:
    assert "shown only once" in page.content()
    return (
        page.locator("#reveal-id").input_value(),
        page.locator("#reveal-secret").input_value(),
    )


def _add_key(page: Any, name: str, scopes: tuple[str, ...] = ("read",)) -> tuple[str, str]:
    page.goto(page.url.split("/panel")[0] + "/panel/keys/new")
    page.get_by_label("Name").fill(name)
    for s in ("read", "write", "admin"):
        page.locator(f"#scope_{s}").set_checked(s in scopes)
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url("**/panel/reveal/**")
    return _read_secret(page)


def test_a_merchant_adds_copies_uses_rotates_and_revokes_a_key(
    server: Server, accounts: Accounts, browser: Any
) -> None:
    page = _page(browser, server, "ann@acme.test")
    from playwright.sync_api import expect

    assert page.get_by_role("heading", name="No API keys yet").is_visible()
    _shoot(page, "keys-empty")

    page.get_by_role("link", name="Add new key").click()
    page.get_by_label("Name").fill("Shop backend (production)")
    page.locator("#scope_write").check()
    _shoot(page, "key-new")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url("**/panel/reveal/**")
    reveal_url = page.url
    client_id, secret = _read_secret(page)

    # the copy button puts the secret on the clipboard and says so in a live region
    page.get_by_role("button", name="Copy Client secret").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(page.locator("#copy-status")).to_contain_text("copied")  # no eval: our CSP forbids it
    _shoot(page, "reveal")

    # reloading, or coming back to it, never shows the secret again
    page.reload()
    assert secret not in page.content() and "already shown" in page.content()
    page.get_by_role("link", name="Go to Open API keys").click()
    page.go_back()
    assert page.url == reveal_url and secret not in page.content()

    assert server.token(client_id, secret).status_code == 200
    tpay = httpx.post(
        server.base + "/oauth/auth", data={"client_id": client_id, "client_secret": secret}
    )
    assert tpay.status_code == 200 and tpay.json()["token_type"] == "Bearer"

    # rotate with an hour's overlap: both secrets work
    page.goto(f"{server.base}/panel/keys/{client_id}")
    page.get_by_label("Old secret keeps working for").select_option("3600")
    page.get_by_role("button", name="Rotate secret").click()
    page.wait_for_url("**/panel/reveal/**")
    _, rotated = _read_secret(page)
    assert rotated != secret
    assert server.token(client_id, secret).status_code == 200
    assert server.token(client_id, rotated).status_code == 200

    # rotate with no overlap: the previous secrets stop at once
    page.goto(f"{server.base}/panel/keys/{client_id}")
    page.get_by_label("Old secret keeps working for").select_option("0")
    page.get_by_role("button", name="Rotate secret").click()
    page.wait_for_url("**/panel/reveal/**")
    _, latest = _read_secret(page)
    assert server.token(client_id, rotated).status_code == 401
    assert server.token(client_id, latest).status_code == 200

    page.goto(f"{server.base}/panel/keys/{client_id}")
    _shoot(page, "key-detail")
    page.get_by_role("link", name="Revoke key…").click()
    assert page.get_by_role("heading", name="Revoke “Shop backend (production)”?").is_visible()
    _shoot(page, "confirm-revoke")
    page.get_by_role("button", name="Revoke key").click()
    page.wait_for_url("**/panel/keys?done=key-revoked")
    assert "Token requests with it are refused" in page.content()
    refused = server.token(client_id, latest)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    page.context.close()


def test_another_merchants_ids_are_not_found(
    server: Server, accounts: Accounts, browser: Any
) -> None:
    page = _page(browser, server, "ann@acme.test")
    for path in (
        f"/panel/keys/{accounts.globex_key}",
        f"/panel/keys/{accounts.globex_key}/revoke",
        f"/panel/apps/{accounts.globex_app}",
        f"/panel/activity?client_id={accounts.globex_key}",
    ):
        response = page.goto(server.base + path)
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Not found").is_visible()
    page.context.close()


def test_a_merchant_requires_dpop_of_a_partner_app(
    server: Server, accounts: Accounts, browser: Any
) -> None:
    made = server.cli(
        "clients", "create", "--name", "Acme Ledger", "--merchant", accounts.acme,
        "--grant-type", "authorization_code", "--grant-type", "client_credentials",
        "--redirect-uri", APP_REDIRECT,
    )  # fmt: skip
    client_id, secret = made["client_id"], made["client_secret"]
    assert server.token(client_id, secret).status_code == 200
    page = _page(browser, server, "ann@acme.test")
    page.goto(f"{server.base}/panel/apps/{client_id}")
    page.get_by_label("Require DPoP").check()
    page.get_by_role("button", name="Save security settings").click()
    page.wait_for_url("**done=security-saved")
    assert page.locator("#require_dpop").is_checked()
    refused = server.token(client_id, secret)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"
    page.context.close()


def _seed_activity(server: Server, client_ids: list[str]) -> None:
    """A week of hourly counts, as a busy integration would have (for the screenshot)."""
    from tokensmith.core.panel_models import TokenCount, hour_of
    from tokensmith.storage.sql import SqlStore, make_engine

    now = time.time()
    rows = []
    for n, cid in enumerate(client_ids):
        for h in range(7 * 24):
            hour = hour_of(now) - h * 3600
            local = (hour // 3600 + 2) % 24
            busy = 40 + 60 * (8 <= local <= 20) + (h * 37 % 23)
            rows.append(TokenCount(cid, hour, busy // (n + 1), (h % 11 == 0) * (h % 4), hour + 60))

    async def write() -> None:
        store = SqlStore(make_engine(server.db))
        try:
            await store.add_token_counts(rows)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(asyncio.run, write()).result()


def test_screenshots_of_every_page(server: Server, accounts: Accounts, browser: Any) -> None:
    page = _page(browser, server, "ann@acme.test")
    backend, backend_secret = _add_key(page, "Checkout service", ("read", "write"))
    reports, _ = _add_key(page, "Nightly reports", ("read",))
    _add_key(page, "Refund worker", ("read", "write"))
    for _ in range(3):
        assert server.token(backend, backend_secret).status_code == 200
    for wrong in ("guess-1", "guess-2"):
        assert server.token(backend, wrong).status_code == 401
    assert server.token("nosuchclient0", "x").status_code == 401
    _seed_activity(server, [backend, reports])
    time.sleep(1.0)  # the server flushes its counters every 0.3 s

    page.goto(server.base + "/panel/keys")
    _shoot(page, "keys")

    page.goto(server.base + "/panel/activity")
    assert "Wrong secret" in page.content() and "guess-1" not in page.content()
    page.locator("#hourly-title").scroll_into_view_if_needed()
    page.locator(".chart .bar").nth(9).hover()
    assert page.locator(".chart-tip").first.is_visible()
    _shoot(page, "activity")

    page.goto(server.base + "/panel/apps/new")
    page.get_by_label("App name").fill("Ledger Sync")
    page.get_by_label("Redirect URIs").fill(APP_REDIRECT)
    page.get_by_label("Form URI").fill("https://ledger-sync.example/connect")
    page.locator("#scope_write").check()
    page.get_by_role("button", name="Register app").click()
    page.wait_for_url("**/panel/reveal/**")
    app_id, _ = _read_secret(page)
    page.get_by_role("link", name="I have saved the secret — continue").click()
    _shoot(page, "app-detail")
    page.goto(server.base + "/panel/apps")
    _shoot(page, "apps")

    _approve(page, server, app_id)
    page.goto(server.base + "/panel/authorized")
    assert page.get_by_role("cell", name="ann@acme.test").is_visible()
    _shoot(page, "authorized")

    page.goto(server.base + "/panel/devkeys/new")
    page.get_by_label("Name").fill("Mobile app")
    page.get_by_role("button", name="Create key").click()
    page.wait_for_url("**/panel/reveal/**")
    page.goto(server.base + "/panel/devkeys")
    _shoot(page, "devkeys")

    page.goto(server.base + "/panel/users")
    _shoot(page, "users")
    page.context.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    phone.goto(server.base + "/panel/keys")
    phone.get_by_label("E-mail address").fill("ann@acme.test")
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url("**/panel/keys")
    _shoot(phone, "keys-mobile")
    phone.context.close()

    server.cli(
        "users", "create", "--email", "ops@platform.test", "--password-stdin", "--role", "operator",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    ops = _page(browser, server, "ops@platform.test")
    ops.get_by_label("Show merchant").select_option(label="Globex")  # submits by itself
    ops.wait_for_url("**/panel/keys?done=merchant-switched")
    assert ops.get_by_role("link", name="Globex ERP").is_visible()
    _shoot(ops, "operator")
    ops.context.close()

    member = _page(browser, server, "bob@acme.test")
    assert member.get_by_role("link", name="Add new key").count() == 0
    assert member.locator("form[method=post]").count() == 1  # only "Sign out"
    _shoot(member, "member-view")
    member.context.close()


def _approve(page: Any, server: Server, app_id: str) -> None:
    """Ann approves the app (remembering it), as a partner's user would."""
    page.route(APP_REDIRECT + "**", lambda route: route.fulfill(body="connected"))
    query = f"response_type=code&client_id={app_id}&redirect_uri={APP_REDIRECT}&scope=read&state=s1"
    page.goto(f"{server.base}/oauth/authorize?{query}")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(APP_REDIRECT + "**")
