"""The panel in real Chromium, for a platform operator, against ``tokensmith serve --demo``:
a client made in the CLI without ``--merchant`` shows in the operator's lists with its
merchant column, and the operator revokes it from the panel; the demo's operator sees the
demo's partner app (which has no merchant); the demo merchant's admin sees neither.

Needs Debian's ``chromium`` and Python Playwright (never ``playwright install``); skips
cleanly without them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.test_panel import Server, _cli, _free_port
from tests.chromium import CHROMIUM, chromium
from tokensmith.demo import DEMO_ADMIN_EMAIL, DEMO_OPERATOR_EMAIL, DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    tmp = tmp_path_factory.mktemp("operator")
    port = _free_port()
    db = f"sqlite:///{tmp / 'demo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")} | {
        "TOKENSMITH_DATABASE_URL": db,
        "TOKENSMITH_SECRET_KEY": "operator-secret-Qw7Zt2Kd9Lm4Rb6Hx1Nv8Fs3Jp0Yc",
        "TOKENSMITH_ISSUER": f"http://127.0.0.1:{port}",
        "TOKENSMITH_PORT": str(port),
        "TOKENSMITH_CLIENT_CACHE_TTL": "0",
    }
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [_cli(), "serve", "--demo"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT
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
            pytest.fail("tokensmith serve --demo did not start")
        yield Server(base, env, db)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(demo: Server) -> Iterator[Any]:
    with chromium() as b:
        yield b


def _login(browser: Any, server: Server, email: str) -> Any:
    page = browser.new_context(viewport={"width": 1360, "height": 860}).new_page()
    page.goto(server.base + "/panel")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/panel/keys")
    return page


def test_the_operator_sees_and_revokes_a_client_made_in_the_cli_without_merchant(
    demo: Server, browser: Any
) -> None:
    made = demo.cli("clients", "create", "--name", "Nightly batch")
    assert made["merchant_id"] is None
    assert demo.token(made["client_id"], made["client_secret"]).status_code == 200

    page = _login(browser, demo, DEMO_OPERATOR_EMAIL)
    row = page.get_by_role("row").filter(has_text="Nightly batch")
    assert row.get_by_role("cell", name="None (platform)").is_visible()
    demo_row = page.get_by_role("row").filter(has_text="Demo API key")
    assert demo_row.get_by_role("cell", name="Demo Shop").is_visible()

    page.get_by_role("link", name="Nightly batch").click()
    page.wait_for_url(f"**/panel/keys/{made['client_id']}")
    page.goto(f"{demo.base}/panel/keys/{made['client_id']}/revoke")
    page.get_by_role("button", name="Revoke key").click()
    page.wait_for_url("**/panel/keys?done=key-revoked")
    assert demo.token(made["client_id"], made["client_secret"]).status_code == 401
    page.context.close()


def test_the_demo_operator_sees_the_demo_app(demo: Server, browser: Any) -> None:
    page = _login(browser, demo, DEMO_OPERATOR_EMAIL)
    page.goto(demo.base + "/panel/apps")
    row = page.get_by_role("row").filter(has_text="Demo partner app")
    assert row.get_by_role("cell", name="None (platform)").is_visible()
    page.get_by_role("link", name="Demo partner app").click()
    page.wait_for_url("**/panel/apps/demo-app")
    assert page.get_by_role("heading", name="Demo partner app").first.is_visible()
    page.context.close()


def test_the_demo_merchant_admin_sees_only_the_merchants_clients(
    demo: Server, browser: Any
) -> None:
    page = _login(browser, demo, DEMO_ADMIN_EMAIL)
    assert page.get_by_role("link", name="Demo API key").is_visible()
    assert page.get_by_text("Nightly batch").count() == 0
    assert page.get_by_role("columnheader", name="Merchant").count() == 0
    page.goto(demo.base + "/panel/apps")
    assert page.get_by_text("Demo partner app").count() == 0
    page.context.close()
