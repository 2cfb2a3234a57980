"""examples/payment_initiation.py in process: the approved payment is made once; another
amount, currency or payee is refused before the consent is touched; a second use is
refused once the server spent the consent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from resource_fakes import (
    AUDIENCE,
    ISSUER,
    RS_CLIENT_ID,
    RS_SECRET,
    FakeConsents,
    FakeIssuer,
    make_key,
)
from tests.integration.live import load_example

from tokensmith.resource import TokenValidator

NOW = 1_700_000_000.0
KEY = make_key("ES256")
IBAN = "DE02120300000000202051"
DETAIL = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "120.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": IBAN},
}
PAYMENT = {
    "amount": "120.00",
    "currency": "EUR",
    "creditor_iban": IBAN,
    "creditor_name": "Merchant A",
}
example = load_example("payment_initiation")


@pytest.fixture
def server() -> FakeConsents:
    return FakeConsents(FakeIssuer([KEY], clock=lambda: NOW), KEY, NOW, [DETAIL])


@pytest.fixture
def api(server: FakeConsents) -> httpx.AsyncClient:
    validator = TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server.async_handler)),
        clock=lambda: NOW,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        realm="payments",
    )
    app = example.create_app(validator)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_the_approved_payment_is_made_once(
    api: httpx.AsyncClient, server: FakeConsents
) -> None:
    token = server.token("c-1")
    made = await api.post("/payments", json=PAYMENT, headers=bearer(token))
    assert made.status_code == 201, made.text
    assert made.json() | {"payment_id": "x"} == {
        **PAYMENT,
        "payment_id": "x",
        "consent_id": "c-1",
        "status": "accepted",
    }
    again = await api.post("/payments", json=PAYMENT, headers=bearer(token))
    assert again.status_code == 403
    assert again.json()["error_description"] == "consent already used (consumed)"


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param(PAYMENT | {"amount": "120.01"}, id="another-amount"),
        pytest.param(PAYMENT | {"amount": "1200.00"}, id="ten-times-the-amount"),
        pytest.param(PAYMENT | {"currency": "USD"}, id="another-currency"),
        pytest.param(PAYMENT | {"creditor_name": "Mallory"}, id="another-payee-name"),
        pytest.param(PAYMENT | {"creditor_iban": "GB33BUKB20201555555555"}, id="another-account"),
        pytest.param(PAYMENT | {"amount": 120}, id="amount-not-a-string"),
        pytest.param(PAYMENT | {"amount": "lots"}, id="amount-not-a-number"),
        pytest.param({k: v for k, v in PAYMENT.items() if k != "creditor_iban"}, id="no-account"),
        pytest.param([PAYMENT], id="not-an-object"),
    ],
)
async def test_another_payment_is_refused_and_the_consent_kept(
    api: httpx.AsyncClient, server: FakeConsents, asked: Any
) -> None:
    token = server.token("c-1")
    refused = await api.post("/payments", json=asked, headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert server.calls == []  # the consent was not spent on a refused payment
    assert (await api.post("/payments", json=PAYMENT, headers=bearer(token))).status_code == 201


async def test_the_same_amount_written_otherwise_is_the_same_payment(
    api: httpx.AsyncClient, server: FakeConsents
) -> None:
    spaced = PAYMENT | {"amount": "120.0", "creditor_iban": "de02 1203 0000 0000 2020 51"}
    r = await api.post("/payments", json=spaced, headers=bearer(server.token("c-1")))
    assert r.status_code == 201, r.text


async def test_a_body_that_is_not_json_is_refused(
    api: httpx.AsyncClient, server: FakeConsents
) -> None:
    r = await api.post("/payments", content=b"{", headers=bearer(server.token("c-1")))
    assert r.status_code == 403 and server.calls == []
