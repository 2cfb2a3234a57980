"""One payment, once, in real Chromium against a real ``tokensmith serve``.

The partner app (``examples/partner_payment.py``'s functions, ``tokensmith.client``)
lodges a consent for 120.00 EUR to a named payee and pushes the authorization request
with its ``consent_id``; a person signs in, reads the amount and the payee on the consent
page and approves; the app exchanges the code (PKCE) and calls the payments API of
``examples/payment_initiation.py`` (uvicorn on a loopback port, ``consume=True``): the
approved payment is made once, another amount is refused, a second use is refused, and
the consent ends ``consumed``.

Needs Debian's ``chromium`` and Python Playwright (never ``playwright install``); skips
cleanly without them.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.chromium import chromium, redirect_listener
from tests.e2e.conftest import Server, base_env, free_port
from tests.integration.live import ROOT, load_example, serve_asgi
from tests.tree_guard import screenshots_dir
from tokensmith.client import PKCE, TokenClient, make_state
from tokensmith.resource import TokenValidator

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:.*httpx2.*"),
]

EMAIL = "payer@roasters.test"
PASSWORD = "correct horse battery staple"
PAYEE = "Merchant A"
IBAN = "DE02120300000000202051"
PAYMENT = {"amount": "120.00", "currency": "EUR", "creditor_iban": IBAN, "creditor_name": PAYEE}
LANDING_TIMEOUT_MS = 10_000

partner = load_example("partner_payment")
payments_api = load_example("payment_initiation")


@pytest.fixture
def callback() -> Iterator[str]:
    with redirect_listener() as (url, _):
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _app_and_api(server: Server, redirect_uri: str, name: str) -> tuple[tuple[str, str], ...]:
    """The partner app (lodges consents, asks for payments) and the payments API's own
    client (spends consents, as it introspects)."""
    app = ["--name", name, "--scope", "write consents", "--redirect-uri", redirect_uri]
    app += ["--grant-type", "authorization_code", "--grant-type", "client_credentials"]
    made = server.clients(app, ["--name", f"{name} API", "--scope", "introspection"])
    return tuple(made)


@pytest.fixture(scope="module")
def payer(server: Server) -> str:
    server.merchant_admin("Payment Test Roasters", EMAIL, PASSWORD)
    return EMAIL


def _consent_page(browser: Any, url: str) -> Any:
    """Open ``url``, sign in, and return the page once it shows the consent."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("text=wants access to")
    return page


def _decide(page: Any, decision: str, redirect_uri: str) -> dict[str, list[str]]:
    page.get_by_role("button", name=decision).click()
    page.wait_for_url(redirect_uri + "?**", timeout=LANDING_TIMEOUT_MS)
    landed = parse_qs(urlsplit(str(page.url)).query)
    page.context.close()
    return landed


def _introspect(server: Server, token: str, api: tuple[str, str]) -> dict[str, Any]:
    r = httpx.post(server.base_url + "/oauth/introspect", data={"token": token}, auth=api)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_an_approved_payment_is_made_once_and_only_as_approved_in_chromium(
    server: Server, payer: str, callback: str, browser: Any
) -> None:
    app, api = _app_and_api(server, callback, "Pay Partner")
    server.secrets_seen.extend([app[1], api[1]])
    with TokenClient.from_issuer(server.base_url, *app) as tc:
        detail = partner.payment_detail("120.00", "EUR", PAYEE, IBAN)
        consent = tc.create_consent([detail], expires_in=600)
        assert consent.status == "awaiting_authorization"
        assert consent.authorization_details == (detail,) and consent.client_id == app[0]

        pkce, state = PKCE.generate(), make_state()
        url = partner.push_authorization(tc, app[1], consent.consent_id, callback, state, pkce)
        page = _consent_page(browser, url)
        # what the person reads before approving: the amount and the payee
        assert page.locator(".detail-amount").inner_text() == "\u20ac120.00"
        assert page.locator(".detail-payee").inner_text() == f"to {PAYEE}"
        assert page.get_by_text(PAYEE).is_visible()
        page.screenshot(path=str(screenshots_dir() / "consent-payment.png"), full_page=True)
        landed = _decide(page, "Allow", callback)
        assert landed["state"] == [state]
        assert tc.get_consent(consent.consent_id).status == "authorized"

        token = tc.exchange_code(landed["code"][0], callback, pkce.verifier)
        server.secrets_seen.append(token.access_token)
        assert token.refresh_token is None  # a payment is made once: nothing to refresh
        seen = _introspect(server, token.access_token, api)
        assert seen["active"] and seen["consent_id"] == consent.consent_id
        assert seen["authorization_details"] == [detail]

        validator = TokenValidator(
            server.base_url, server.base_url, client_id=api[0], client_secret=api[1]
        )
        with serve_asgi(payments_api.create_app(validator)) as base:
            other = partner.pay(base, tc, PAYMENT | {"amount": "121.00"})
            assert other.status_code == 403, other.text
            assert tc.get_consent(consent.consent_id).status == "authorized"  # untouched

            made = partner.pay(base, tc, PAYMENT)
            assert made.status_code == 201, made.text
            assert made.json()["consent_id"] == consent.consent_id
            assert made.json()["status"] == "accepted"

            again = partner.pay(base, tc, PAYMENT)
            assert again.status_code == 403, again.text
            assert again.json()["error"] == "insufficient_scope"
            assert again.json()["error_description"] == "consent already used (consumed)"
            assert 'error="insufficient_scope"' in again.headers["www-authenticate"]
            assert partner.pay(base, tc, PAYMENT | {"amount": "1.00"}).status_code == 403
        assert tc.get_consent(consent.consent_id).status == "consumed"


def test_a_denied_payment_leaves_the_consent_rejected_in_chromium(
    server: Server, payer: str, callback: str, browser: Any
) -> None:
    app, _ = _app_and_api(server, callback, "Denied Partner")
    server.secrets_seen.append(app[1])
    with TokenClient.from_issuer(server.base_url, *app) as tc:
        detail = partner.payment_detail("75.50", "EUR", "Someone Else", IBAN)
        consent = tc.create_consent([detail])
        pkce, state = PKCE.generate(), make_state()
        url = partner.push_authorization(tc, app[1], consent.consent_id, callback, state, pkce)
        page = _consent_page(browser, url)
        assert page.locator(".detail-amount").inner_text() == "\u20ac75.50"
        landed = _decide(page, "Deny", callback)
        assert landed["error"] == ["access_denied"] and "code" not in landed
        assert tc.get_consent(consent.consent_id).status == "rejected"


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the payments API exited:\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise AssertionError(f"the payments API did not start:\n{log.read_text()}")


def test_the_example_scripts_pay_once_in_chromium(
    server: Server, payer: str, browser: Any, tmp_path: Path
) -> None:
    """``python examples/payment_initiation.py`` and ``python examples/partner_payment.py``
    as docs/consents.md runs them; the person approves at the URL the partner prints."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    app, api = _app_and_api(server, redirect_uri, "Script Partner")
    server.secrets_seen.extend([app[1], api[1]])
    api_port, log = free_port(), tmp_path / "api.log"
    api_env = base_env(
        TOKENSMITH_ISSUER=server.base_url,
        TOKENSMITH_AUDIENCE=server.base_url,
        TOKENSMITH_CLIENT_ID=api[0],
        TOKENSMITH_CLIENT_SECRET=api[1],
        PORT=str(api_port),
    )
    with log.open("wb") as out:
        api_proc = subprocess.Popen(
            [sys.executable, "examples/payment_initiation.py"],
            cwd=ROOT,
            env=api_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    partner_proc = None
    try:
        _wait_listening(api_port, api_proc, log)
        partner_proc = subprocess.Popen(
            [
                *(sys.executable, "examples/partner_payment.py", "--issuer", server.base_url),
                *("--client-id", app[0], "--api", f"http://127.0.0.1:{api_port}"),
                *("--redirect-uri", redirect_uri, "--amount", "120.00", "--currency", "EUR"),
                *("--creditor-name", PAYEE, "--creditor-iban", IBAN),
            ],
            cwd=ROOT,
            env=base_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert partner_proc.stdin is not None and partner_proc.stdout is not None
        partner_proc.stdin.write(app[1] + "\n")
        partner_proc.stdin.close()
        printed = [partner_proc.stdout.readline() for _ in range(3)]
        assert printed[0].endswith(": awaiting_authorization\n"), printed
        url = printed[2].strip()
        assert url.startswith(server.base_url + "/oauth/authorize?"), printed

        page = _consent_page(browser, url)
        assert page.locator(".detail-amount").inner_text() == "\u20ac120.00"
        assert page.locator(".detail-payee").inner_text() == f"to {PAYEE}"
        _decide(page, "Allow", redirect_uri)

        rest = partner_proc.stdout.read()
        assert partner_proc.wait(timeout=60) == 0, rest
        lines = rest.splitlines()
        assert lines[0].endswith(": authorized"), rest
        assert lines[1].startswith("payment: 201 ") and '"status":"accepted"' in lines[1], rest
        assert lines[2].startswith("the same payment again: 403 "), rest
        assert "consent already used (consumed)" in lines[2], rest
        assert lines[3].endswith(": consumed"), rest
    finally:
        for proc in (partner_proc, api_proc):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
