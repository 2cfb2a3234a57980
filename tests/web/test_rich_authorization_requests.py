"""RFC 9396 end to end over HTTP: PAR and the authorization endpoint, the consent page, the
token endpoint (code, refresh, client_credentials), introspection and the metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Harness, make_settings, running_app
from tests.partner import (
    REDIRECT,
    Partner,
    hidden_fields,
    make_partner,
    pkce_pair,
    query_of,
    sent_to,
)
from tokensmith.core.admin import create_api_key
from tokensmith.core.clock import FrozenClock

DETAILS = "invalid_authorization_details"
IBAN = "DE02120300000000202051"
PAYMENT: dict[str, Any] = {
    "type": "payment_initiation",
    "actions": ["initiate", "status"],
    "instructedAmount": {"currency": "EUR", "amount": "1234.50"},
    "creditorName": "Bäckerei Müller GmbH",
    "creditorAccount": {"iban": IBAN},
    "remittanceInformationUnstructured": "Invoice 2026-117",
}
ACCOUNTS: dict[str, Any] = {
    "type": "account_information",
    "actions": ["read_balances", "read_transactions"],
    "accounts": [{"iban": IBAN}],
    "expiry": "2027-03-31",
}
CUSTOMER_SCHEMA = {
    "type": "object",
    "required": ["type", "actions"],
    "properties": {
        "type": {"const": "customer_information"},
        "actions": {"type": "array", "items": {"enum": ["read"]}},
    },
    "additionalProperties": False,
}


def text(details: list[dict[str, Any]]) -> str:
    return json.dumps(details)


@pytest.fixture
async def partner(harness: Harness) -> Partner:
    return await make_partner(harness)


async def push(p: Partner, **extra: str | None) -> httpx.Response:
    return await p.http.post("/oauth/par", data=p.params(**extra), auth=(p.app.client_id, p.secret))


async def consent_page(p: Partner, lang: str = "en-US", **extra: str | None) -> httpx.Response:
    """Log in and open the consent page of the authorization request ``extra`` makes."""
    await p.login()
    page = await p.http.get(
        "/oauth/authorize", params=p.params(**extra), headers={"accept-language": lang}
    )
    assert page.status_code == 200 and 'action="/oauth/authorize/decision"' in page.text, page.text
    return page


async def approve(p: Partner, page: httpx.Response, **changes: str) -> str:
    r = await p.decide(page, **changes)
    destination = sent_to(r)
    assert destination is not None, r.text[:500]
    q = query_of(destination)
    assert "code" in q, q
    return q["code"]


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


# -- the whole flow ----------------------------------------------------------------------------


async def test_a_pushed_payment_is_shown_approved_and_carried_into_every_token(
    partner: Partner,
) -> None:
    verifier, challenge = pkce_pair()
    r = await push(
        partner,
        authorization_details=text([PAYMENT]),
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert r.status_code == 201, r.text
    await partner.login()
    page = await partner.http.get(
        "/oauth/authorize",
        params={"client_id": partner.app.client_id, "request_uri": r.json()["request_uri"]},
    )
    assert "€1,234.50" in page.text and "Bäckerei Müller GmbH" in page.text
    assert "DE02 1203 0000 0000 2020 51" in page.text and "Invoice 2026-117" in page.text
    code = await approve(partner, page)
    r = await partner.exchange(code, code_verifier=verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["authorization_details"] == [PAYMENT]  # RFC 9396 §7
    assert claims_of(body["access_token"])["authorization_details"] == [PAYMENT]
    assert (await partner.introspect(body["access_token"]))["authorization_details"] == [PAYMENT]
    refresh_info = await partner.introspect(body["refresh_token"])
    assert refresh_info["authorization_details"] == [PAYMENT]
    again = await partner.refresh(body["refresh_token"])
    assert again.status_code == 200 and again.json()["authorization_details"] == [PAYMENT]


async def test_a_request_without_details_gets_no_details_anywhere(partner: Partner) -> None:
    tokens = await partner.tokens()
    assert "authorization_details" not in tokens
    assert "authorization_details" not in claims_of(tokens["access_token"])
    assert "authorization_details" not in await partner.introspect(tokens["access_token"])


async def test_a_refresh_may_narrow_the_details_but_never_widen_them(partner: Partner) -> None:
    page = await consent_page(partner, authorization_details=text([PAYMENT, ACCOUNTS]))
    code = await approve(partner, page)
    tokens = (await partner.exchange(code)).json()
    assert tokens["authorization_details"] == [PAYMENT, ACCOUNTS]
    fewer = dict(ACCOUNTS, actions=["read_balances"])
    r = await partner.refresh(tokens["refresh_token"], authorization_details=text([fewer]))
    assert r.status_code == 200 and r.json()["authorization_details"] == [fewer], r.text
    # the family keeps what was granted: the next refresh may ask for all of it again
    r = await partner.refresh(r.json()["refresh_token"])
    assert r.json()["authorization_details"] == [PAYMENT, ACCOUNTS]
    more = dict(PAYMENT, instructedAmount={"currency": "EUR", "amount": "99999.00"})
    refused = await partner.refresh(r.json()["refresh_token"], authorization_details=text([more]))
    assert (refused.status_code, refused.json()["error"]) == (400, DETAILS)


async def test_the_code_exchange_may_narrow_the_details(partner: Partner) -> None:
    page = await consent_page(partner, authorization_details=text([PAYMENT, ACCOUNTS]))
    code = await approve(partner, page)
    r = await partner.exchange(code, authorization_details=text([ACCOUNTS]))
    assert r.status_code == 200 and r.json()["authorization_details"] == [ACCOUNTS], r.text


async def test_details_asked_for_at_the_token_endpoint_need_some_granted(
    partner: Partner,
) -> None:
    page = await consent_page(partner)
    code = await approve(partner, page)
    r = await partner.exchange(code, authorization_details=text([PAYMENT]))
    assert (r.status_code, r.json()["error"]) == (400, DETAILS)


async def test_an_opaque_token_is_introspected_with_its_details(harness: Harness) -> None:
    p = await make_partner(harness, token_format="opaque")
    page = await consent_page(p, authorization_details=text([ACCOUNTS]))
    tokens = (await p.exchange(await approve(p, page))).json()
    assert tokens["access_token"].count(".") != 2
    assert (await p.introspect(tokens["access_token"]))["authorization_details"] == [ACCOUNTS]


# -- the consent page --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "amount"),
    [("en-US", "€1,234.50"), ("de-DE,de;q=0.9", "1.234,50\xa0€"), ("fr", "1\u202f234,50\xa0€")],
)
async def test_the_amount_is_formatted_for_the_readers_locale(
    partner: Partner, lang: str, amount: str
) -> None:
    page = await consent_page(partner, lang, authorization_details=text([PAYMENT]))
    assert f'<p class="detail-amount" aria-label="Amount: {amount}' in page.text
    assert "to <strong>Bäckerei Müller GmbH</strong>" in page.text


async def test_account_access_is_shown_as_a_list(partner: Partner) -> None:
    page = await consent_page(partner, authorization_details=text([ACCOUNTS]))
    assert "<li>See your account balances</li>" in page.text
    assert "<li>See your transactions</li>" in page.text
    assert "<li>DE02 1203 0000 0000 2020 51</li>" in page.text
    assert "March 31, 2027" in page.text


async def test_details_are_escaped_on_the_consent_page(partner: Partner) -> None:
    evil = dict(PAYMENT, creditorName="<script>alert(1)</script>")
    page = await consent_page(partner, authorization_details=text([evil]))
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_a_remembered_consent_does_not_approve_a_payment(partner: Partner) -> None:
    page = await consent_page(partner)
    await approve(partner, page, remember="yes")
    silent = await partner.authorize()
    assert sent_to(silent) is not None  # the scopes alone: answered at once
    asked = await partner.authorize(authorization_details=text([PAYMENT]))
    assert asked.status_code == 200 and "€1,234.50" in asked.text


async def test_approving_a_payment_offers_and_remembers_nothing(partner: Partner) -> None:
    """RFC 9396 details are approved once: the page has no "Don't ask again", and a
    ``remember`` slipped into the form does not let the app's scopes through unasked."""
    page = await consent_page(partner, authorization_details=text([PAYMENT]))
    assert 'name="remember"' not in page.text
    await approve(partner, page, remember="yes")
    again = await partner.authorize()
    assert again.status_code == 200 and 'action="/oauth/authorize/decision"' in again.text
    assert 'name="remember"' in again.text  # a scopes-only request may be remembered


# -- tampering with the decision ---------------------------------------------------------------


async def test_a_decision_with_other_details_than_shown_is_refused(partner: Partner) -> None:
    page = await consent_page(partner, authorization_details=text([PAYMENT]))
    bigger = dict(PAYMENT, instructedAmount={"currency": "EUR", "amount": "9999.00"})
    r = await partner.decide(page, authorization_details=text([bigger]))
    assert r.status_code == 400 and sent_to(r) is None
    assert DETAILS in r.text
    # the form as shown still goes through
    assert await approve(partner, page)


async def test_details_slipped_into_a_form_that_showed_none_are_refused(
    partner: Partner,
) -> None:
    page = await consent_page(partner)
    r = await partner.decide(page, authorization_details=text([PAYMENT]))
    assert r.status_code == 400 and DETAILS in r.text


async def test_a_decision_without_the_mac_is_refused(partner: Partner) -> None:
    page = await consent_page(partner, authorization_details=text([PAYMENT]))
    form = hidden_fields(page.text) | {"decision": "allow"}
    del form["details_mac"]
    r = await partner.http.post("/oauth/authorize/decision", data=form)
    assert r.status_code == 400 and DETAILS in r.text


async def test_a_pushed_requests_details_cannot_be_replaced_in_the_form(
    partner: Partner,
) -> None:
    r = await push(partner, authorization_details=text([PAYMENT]))
    await partner.login()
    page = await partner.http.get(
        "/oauth/authorize",
        params={"client_id": partner.app.client_id, "request_uri": r.json()["request_uri"]},
    )
    bigger = dict(PAYMENT, instructedAmount={"currency": "EUR", "amount": "9999.00"})
    code = await approve(partner, page, authorization_details=text([bigger]))
    tokens = (await partner.exchange(code)).json()
    assert tokens["authorization_details"] == [PAYMENT]  # the pushed ones, not the form's


# -- refusals ----------------------------------------------------------------------------------

BAD = [
    pytest.param("[]", id="empty"),
    pytest.param("{", id="not-json"),
    pytest.param(text([{"type": "wire_transfer"}]), id="unknown-type"),
    pytest.param(text([dict(PAYMENT, creditorName="")]), id="empty-payee"),
    pytest.param(
        text([dict(PAYMENT, instructedAmount={"currency": "EUR", "amount": "1,00"})]),
        id="comma-amount",
    ),
    pytest.param(text([PAYMENT] * 11), id="too-many"),
]


@pytest.mark.parametrize("raw", BAD)
async def test_bad_details_are_redirected_from_the_authorization_endpoint(
    partner: Partner, raw: str
) -> None:
    r = await partner.authorize(authorization_details=raw)
    assert r.status_code == 303
    q = query_of(r.headers["location"])
    assert r.headers["location"].startswith(REDIRECT)
    assert (q["error"], q["state"]) == (DETAILS, "st-123") and q["error_description"]


@pytest.mark.parametrize("raw", BAD)
async def test_bad_details_are_refused_by_the_par_endpoint(partner: Partner, raw: str) -> None:
    r = await push(partner, authorization_details=raw)
    assert (r.status_code, r.json()["error"]) == (400, DETAILS), r.text


@pytest.mark.parametrize("raw", BAD)
async def test_bad_details_are_refused_by_the_token_endpoint(harness: Harness, raw: str) -> None:
    client, secret = await harness.client()
    r = await harness.token(client.client_id, secret, authorization_details=raw)
    assert (r.status_code, r.json()["error"]) == (400, DETAILS), r.text


async def test_a_client_held_to_some_types_is_refused_the_others(harness: Harness) -> None:
    p = await make_partner(harness, authorization_details_types=("account_information",))
    r = await push(p, authorization_details=text([PAYMENT]))
    assert (r.status_code, r.json()["error"]) == (400, DETAILS)
    assert "may not request 'payment_initiation'" in r.json()["error_description"]
    assert (await push(p, authorization_details=text([ACCOUNTS]))).status_code == 201


# -- client_credentials (RFC 9396 §6.1) --------------------------------------------------------


async def test_client_credentials_carry_the_details_asked_for(harness: Harness) -> None:
    client, secret = await harness.client()
    r = await harness.token(client.client_id, secret, authorization_details=text([ACCOUNTS]))
    assert r.status_code == 200 and r.json()["authorization_details"] == [ACCOUNTS], r.text
    assert claims_of(r.json()["access_token"])["authorization_details"] == [ACCOUNTS]


async def test_client_credentials_are_held_to_the_clients_types(harness: Harness) -> None:
    client, secret = await harness.client(authorization_details_types=())
    r = await harness.token(client.client_id, secret, authorization_details=text([ACCOUNTS]))
    assert (r.status_code, r.json()["error"]) == (400, DETAILS)


async def test_every_dialect_refuses_bad_details_with_their_error(harness: Harness) -> None:
    client, secret = await harness.client()
    bad = {"authorization_details": "[]"}
    creds = {"client_id": client.client_id, "client_secret": secret}
    tpay = await harness.http.post("/oauth/auth", data=creds | bad)
    assert (tpay.status_code, tpay.json()["error"]) == (400, DETAILS)
    dot = await harness.http.post(
        "/o/token/", data=creds | bad | {"grant_type": "client_credentials"}
    )
    assert (dot.status_code, dot.json()["error"]) == (400, DETAILS)
    _, apikey = await create_api_key(harness.ctx.store, harness.clock, harness.ctx.rand, "app")
    tbc = await harness.http.post(
        "/v2/tpay/access-token", data=creds | bad, headers={"apikey": apikey}
    )
    assert tbc.status_code == 400 and tbc.json()["code"] == DETAILS, tbc.text


# -- metadata and registered types -------------------------------------------------------------


async def test_the_metadata_lists_the_types(harness: Harness) -> None:
    meta = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["authorization_details_types_supported"] == [
        "account_information",
        "payment_initiation",
    ]


async def test_types_of_the_configured_file_and_the_registry_are_accepted(
    tmp_path: Path, clock: FrozenClock
) -> None:
    file = tmp_path / "types.json"
    file.write_text(json.dumps({"customer_information": CUSTOMER_SCHEMA}))
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'app.db'}", authorization_details_types=str(file)
    )
    async with running_app(settings, clock) as h:
        await h.ctx.store.save_details_type("loyalty_points", '{"type":"object"}', 0.0)
    async with running_app(settings, clock) as h:  # registered types are read at start
        meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
        assert "customer_information" in meta["authorization_details_types_supported"]
        assert "loyalty_points" in meta["authorization_details_types_supported"]
        client, secret = await h.client()
        asked = [{"type": "customer_information", "actions": ["read"]}]
        r = await h.token(client.client_id, secret, authorization_details=text(asked))
        assert r.status_code == 200 and r.json()["authorization_details"] == asked
        page = await make_partner(h)
        consent = await consent_page(page, authorization_details=text(asked))
        assert "customer_information" in consent.text and "[&#34;read&#34;]" in consent.text


async def test_a_broken_types_file_stops_the_server(tmp_path: Path, clock: FrozenClock) -> None:
    from tokensmith.config_error import ConfigError

    file = tmp_path / "types.json"
    file.write_text('{"x": {"type": 5}}')
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'app.db'}", authorization_details_types=str(file)
    )
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        async with running_app(settings, clock):
            pass


async def test_a_type_registered_or_removed_while_running_applies_without_a_restart(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """Another instance (the CLI) changes the stored types; this one follows within
    ``authorization_details_types_refresh`` seconds."""
    import asyncio

    from tokensmith.core.authorization_details import TypeRegistry

    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'app.db'}", authorization_details_types_refresh=0.02
    )
    asked = [{"type": "customer_information", "actions": ["read"]}]

    async def supported(h: Harness) -> list[str]:
        meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
        return list(meta["authorization_details_types_supported"])

    async def until(h: Harness, present: bool) -> None:
        for _ in range(200):
            if ("customer_information" in await supported(h)) == present:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the registered types were not re-read")

    async with running_app(settings, clock) as h:
        client, secret = await h.client()
        refused = await h.token(client.client_id, secret, authorization_details=text(asked))
        assert refused.status_code == 400 and refused.json()["error"] == DETAILS
        registry = TypeRegistry(h.ctx.store, clock)
        await registry.add("customer_information", json.dumps(CUSTOMER_SCHEMA))
        await until(h, present=True)
        r = await h.token(client.client_id, secret, authorization_details=text(asked))
        assert r.status_code == 200 and r.json()["authorization_details"] == asked
        await registry.remove("customer_information")
        await until(h, present=False)
        gone = await h.token(client.client_id, secret, authorization_details=text(asked))
        assert gone.status_code == 400 and "unknown type" in gone.json()["error_description"]
