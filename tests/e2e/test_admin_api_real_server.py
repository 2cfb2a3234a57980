"""The admin API against a real ``tokensmith serve`` on a loopback port: an operator's
round trip with raw HTTP calls (``httpx``, no tokensmith code), and ``schemathesis``
generating requests from ``/admin/v1/openapi.json``: no answer is a 5xx and every answer
conforms to the document (status, media type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e

ADMIN_SCOPES = "admin:all"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("admin-api")
    with running_server(workdir, f"sqlite:///{workdir / 'tokensmith.db'}", "--log-json") as s:
        yield s
        assert not [v for v in s.secrets_seen if v in s.log()], "a secret reached the log"


def _token(server: Server, client_id: str, secret: str) -> str:
    r = httpx.post(
        server.base_url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def admin_token(admin_server: Server) -> str:
    client_id, secret = admin_server.client(
        "--name", "platform automation", "--scope", ADMIN_SCOPES
    )
    return _token(admin_server, client_id, secret)


def test_an_operator_onboards_a_merchant_and_offboards_its_client(
    admin_server: Server, admin_token: str
) -> None:
    base = admin_server.base_url + "/admin/v1"
    auth = {"authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base, headers=auth) as api:
        merchant = api.post("/merchants", json={"name": "Corner Shop"})
        assert merchant.status_code == 201, merchant.text
        merchant_id = merchant.json()["merchant_id"]
        made = api.post(
            "/clients", json={"name": "till", "merchant_id": merchant_id, "scope": "payments"}
        )
        assert made.status_code == 201, made.text
        client_id, first = made.json()["client_id"], made.json()["client_secret"]
        admin_server.secrets_seen.append(first)
        rotated = api.post(f"/clients/{client_id}/secret", json={"keep_old_for": 0})
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["client_secret"]
        admin_server.secrets_seen.append(second)
        assert second != first
        token = _token(admin_server, client_id, second)
        old = httpx.post(
            admin_server.base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, first),
        )
        assert old.status_code == 401
        intro = {"token": token}
        introspect = admin_server.base_url + "/oauth/introspect"
        assert httpx.post(introspect, data=intro, auth=(client_id, second)).json()["active"]
        revoked = api.post(f"/merchants/{merchant_id}/revoke-tokens")
        assert revoked.status_code == 200 and revoked.json()["clients"] == 1
        assert httpx.post(introspect, data=intro, auth=(client_id, second)).json() == {
            "active": False
        }
        assert api.delete(f"/clients/{client_id}").status_code == 204
        assert api.get(f"/clients/{client_id}").status_code == 404
        gone = httpx.post(
            admin_server.base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, second),
        )
        assert gone.status_code == 401


def test_every_admin_operation_answers_as_documented(
    admin_server: Server, admin_token: str
) -> None:
    schema = schemathesis.openapi.from_url(admin_server.base_url + "/admin/v1/openapi.json")
    headers = {"authorization": f"Bearer {admin_token}"}
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        answers_as_documented()


@pytest.mark.browser
def test_the_docs_page_sends_an_operation_with_the_pasted_token(
    admin_server: Server, admin_token: str
) -> None:
    """In Chromium: the page lists the operations from the document and its form calls
    one, with no script or style from anywhere else (CSP) and no console error."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console", lambda m: errors.append(m.text) if "Content-Security" in m.text else None
            )
            page.goto(admin_server.base_url + "/admin/v1/docs")
            assert page.locator("details.op").count() >= 30
            page.fill("#token", admin_token)
            page.click("#listMerchants summary")
            page.click("#listMerchants button")
            answer = page.locator("#listMerchants pre.answer")
            answer.filter(has_text="200").wait_for()
            assert '"items"' in answer.inner_text()
            assert errors == []
        finally:
            browser.close()
