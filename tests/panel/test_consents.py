"""Integration > API > Consents: the consent resources a merchant's users decided on, with
their status and a line of what each is for, filtered by status; Revoke ends one and its
tokens. A merchant sees only its users' consents; an operator sees every merchant's."""

from __future__ import annotations

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop
from tests.partner import REDIRECT, Partner
from tests.web.test_consent_resources import (
    ACCOUNTS,
    GRANTS,
    PAYMENT,
    authorized_tokens,
    lodged,
)

LINE = "Payment of 1234.50 EUR to Bäckerei Müller GmbH"


async def _partner(h: Harness, shop: Shop) -> Partner:
    app, secret = await h.client(
        name="Ledger Sync",
        scope="read write consents",
        grant_types=GRANTS,
        redirect_uris=(REDIRECT,),
    )
    return Partner(h, shop.merchant, shop.admin, app, secret)


async def test_an_authorized_consent_is_listed_with_what_it_is_for(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    empty = await admin.get("/panel/consents")
    assert empty.status_code == 200 and "No consents" in empty.text
    assert 'href="/panel/consents"' in empty.text  # in the navigation
    p = await _partner(harness, shop)
    consent_id = await lodged(p, [PAYMENT])
    await authorized_tokens(p, consent_id)
    page = await admin.get("/panel/consents")
    assert LINE in page.text and "Ledger Sync" in page.text and consent_id in page.text
    assert "status-authorized" in page.text
    assert f'href="/panel/consents/{consent_id}/revoke"' in page.text


@pytest.mark.parametrize(
    ("status", "listed"), [("authorized", True), ("rejected", False), ("bogus", True)]
)
async def test_the_list_filters_by_status(
    harness: Harness, shop: Shop, admin: Browser, status: str, listed: bool
) -> None:
    p = await _partner(harness, shop)
    consent_id = await lodged(p, [ACCOUNTS])
    await authorized_tokens(p, consent_id)
    page = await admin.get("/panel/consents", params={"status": status})
    assert (consent_id in page.text) is listed


async def test_revoking_a_consent_stops_its_tokens(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    p = await _partner(harness, shop)
    consent_id = await lodged(p, [ACCOUNTS])
    tokens = await authorized_tokens(p, consent_id)
    confirm = await admin.get(f"/panel/consents/{consent_id}/revoke")
    assert confirm.status_code == 200 and "Revoke consent" in confirm.text
    forged = await admin.post(f"/panel/consents/{consent_id}/revoke", {"csrf_token": "forged"})
    assert forged.status_code == 403  # a POST from another site revokes nothing
    assert (await p.introspect(tokens["access_token"]))["active"] is True
    done = await admin.post(f"/panel/consents/{consent_id}/revoke")
    assert done.headers["location"] == "/panel/consents?done=consent-revoked"
    assert (await p.introspect(tokens["access_token"]))["active"] is False
    assert (await p.introspect(tokens["refresh_token"]))["active"] is False
    page = await admin.get("/panel/consents")
    assert "status-revoked" in page.text
    assert f'href="/panel/consents/{consent_id}/revoke"' not in page.text
    again = await admin.post(f"/panel/consents/{consent_id}/revoke")
    assert again.status_code == 303  # already revoked: nothing more to do


async def test_a_member_sees_consents_but_may_not_revoke(
    harness: Harness, shop: Shop, member: Browser
) -> None:
    p = await _partner(harness, shop)
    consent_id = await lodged(p, [ACCOUNTS])
    tokens = await authorized_tokens(p, consent_id)
    page = await member.get("/panel/consents")
    assert consent_id in page.text and "/revoke" not in page.text
    assert (await member.post(f"/panel/consents/{consent_id}/revoke")).status_code == 403
    assert (await p.introspect(tokens["access_token"]))["active"] is True


async def test_another_merchants_consent_is_neither_shown_nor_revoked(
    harness: Harness, shop: Shop, other: Shop, admin: Browser, operator: Browser
) -> None:
    theirs = await _partner(harness, other)
    consent_id = await lodged(theirs, [ACCOUNTS])
    tokens = await authorized_tokens(theirs, consent_id)
    assert consent_id not in (await admin.get("/panel/consents")).text
    assert (await admin.get(f"/panel/consents/{consent_id}/revoke")).status_code == 404
    assert (await admin.post(f"/panel/consents/{consent_id}/revoke")).status_code == 404
    assert (await theirs.introspect(tokens["access_token"]))["active"] is True
    # an operator sees every merchant's, and may revoke them
    assert consent_id in (await operator.get("/panel/consents")).text
    done = await operator.post(f"/panel/consents/{consent_id}/revoke")
    assert done.status_code == 303
    assert (await theirs.introspect(tokens["access_token"]))["active"] is False
