"""Integration > API > Open API keys: add, show once, rotate with overlap, revoke."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tests.conftest import Harness, make_settings, running_app
from tests.panel.conftest import Browser, Shop, flush, login


async def test_a_new_key_shows_its_secret_once_and_the_secret_gets_a_token(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    made = await admin.post(
        "/panel/keys", {"name": "Shop", "scope_read": "on", "scope_write": "on"}
    )
    client_id, secret, page = await admin.reveal(made)
    assert page.headers["cache-control"] == "no-store"
    assert "shown only once" in page.text

    again = await admin.get(made.headers["location"])
    assert again.status_code == 410 and secret not in again.text
    assert "already shown" in again.text

    token = await harness.token(client_id, secret)
    assert token.status_code == 200 and token.json()["scope"] == "read write"
    client = await harness.ctx.store.get_client(client_id)
    assert client is not None and client.merchant_id == shop.merchant.merchant_id
    assert client.scopes == ("read", "write") and client.grant_types == ("client_credentials",)


async def test_the_reveal_belongs_to_the_browser_session_that_made_the_key(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    made = await admin.post("/panel/keys", {"name": "Shop", "scope_read": "on"})
    elsewhere = await login(harness, shop.admin)  # the same person, another browser
    stolen = await elsewhere.get(made.headers["location"])
    assert stolen.status_code == 410 and 'id="reveal-secret"' not in stolen.text
    _, secret, _ = await admin.reveal(made)  # not burned by the other browser
    assert secret
    await elsewhere.http.aclose()


async def test_the_database_never_holds_the_secret_in_clear(
    harness: Harness, admin: Browser, tmp_path: Path
) -> None:
    made = await admin.post("/panel/keys", {"name": "Shop", "scope_read": "on"})
    _, secret, _ = await admin.reveal(made)
    files = list(tmp_path.glob("app.db*"))
    assert files and all(secret.encode() not in f.read_bytes() for f in files)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"scope_read": "on"}, "Give the key a name"),
        ({"name": "   ", "scope_read": "on"}, "Give the key a name"),
        ({"name": "x" * 201, "scope_read": "on"}, "Give the key a name"),
        ({"name": "Shop"}, "Choose at least one scope"),
        ({"name": "Shop", "scope_payments": "on"}, "Choose at least one scope"),
        ({"name": "Shop", "scope_read": "yes"}, "Choose at least one scope"),
    ],
    ids=["no-name", "blank-name", "long-name", "no-scope", "unknown-scope", "odd-value"],
)
async def test_an_incomplete_key_form_is_shown_again_with_the_problem(
    harness: Harness, shop: Shop, admin: Browser, form: dict[str, str], message: str
) -> None:
    r = await admin.post("/panel/keys", form)
    assert r.status_code == 400 and message in html.unescape(r.text)
    assert 'aria-invalid="true"' in r.text or "scopes-error" in r.text
    assert await harness.ctx.store.list_clients(shop.merchant.merchant_id) == []


async def test_only_the_scopes_the_merchant_may_grant_are_offered(
    tmp_path: Path, clock: object
) -> None:
    from tests.panel.conftest import make_shop

    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 's.db'}", panel_scopes=("read", "payments")
    )
    async with running_app(settings, clock) as h:  # type: ignore[arg-type]
        shop = await make_shop(h, "Acme Shop")
        admin = await login(h, shop.admin)
        page = await admin.get("/panel/keys/new")
        assert 'name="scope_payments"' in page.text and 'name="scope_admin"' not in page.text
        refused = await admin.post("/panel/keys", {"name": "x", "scope_admin": "on"})
        assert refused.status_code == 400
        _, secret, _ = await admin.reveal(
            await admin.post("/panel/keys", {"name": "x", "scope_payments": "on"})
        )
        assert secret
        await admin.http.aclose()


async def test_rotation_keeps_the_old_secret_working_for_the_chosen_overlap(
    harness: Harness, admin: Browser
) -> None:
    client_id, old = await admin.create_key()
    _, new, page = await admin.reveal(
        await admin.post(f"/panel/keys/{client_id}/rotate", {"overlap": "3600"})
    )
    assert new != old and "keeps working" in page.text
    assert (await harness.token(client_id, old)).status_code == 200
    assert (await harness.token(client_id, new)).status_code == 200
    detail = await admin.get(f"/panel/keys/{client_id}")
    assert "Rotating" in detail.text and "Previous, works until" in detail.text
    harness.clock.advance(3601)
    assert (await harness.token(client_id, old)).status_code == 401
    assert (await harness.token(client_id, new)).status_code == 200


async def test_rotation_without_overlap_stops_the_old_secret_at_once(
    harness: Harness, admin: Browser
) -> None:
    client_id, old = await admin.create_key()
    assert (await harness.token(client_id, old)).status_code == 200  # now cached
    _, new, _ = await admin.reveal(
        await admin.post(f"/panel/keys/{client_id}/rotate", {"overlap": "0"})
    )
    assert (await harness.token(client_id, old)).status_code == 401
    assert (await harness.token(client_id, new)).status_code == 200


@pytest.mark.parametrize("overlap", ["", "5", "-1", "3600.0", "abc", "99999999999"])
async def test_only_the_offered_overlaps_are_accepted(
    harness: Harness, admin: Browser, overlap: str
) -> None:
    client_id, secret = await admin.create_key()
    r = await admin.post(f"/panel/keys/{client_id}/rotate", {"overlap": overlap})
    assert r.status_code == 400 and "offered overlaps" in r.text
    assert (await harness.token(client_id, secret)).status_code == 200


async def test_revoking_asks_first_then_refuses_token_requests_at_once(
    harness: Harness, admin: Browser
) -> None:
    client_id, secret = await admin.create_key("Nightly reports")
    assert (await harness.token(client_id, secret)).status_code == 200
    confirm = await admin.get(f"/panel/keys/{client_id}/revoke")
    assert confirm.status_code == 200 and f'action="/panel/keys/{client_id}/revoke"' in confirm.text
    assert (await harness.token(client_id, secret)).status_code == 200

    done = await admin.post(f"/panel/keys/{client_id}/revoke")
    assert done.status_code == 303 and done.headers["location"] == "/panel/keys?done=key-revoked"
    refused = await harness.token(client_id, secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    listing = await admin.get(done.headers["location"])
    assert "Revoked" in listing.text and "refused from now on" in listing.text
    detail = await admin.get(f"/panel/keys/{client_id}")
    assert "Rotate secret" not in detail.text and "was revoked" in detail.text
    rotate = await admin.post(f"/panel/keys/{client_id}/rotate", {"overlap": "0"})
    assert rotate.status_code == 400
    assert (await admin.get(f"/panel/keys/{client_id}/revoke")).status_code == 404


async def test_the_list_shows_each_key_and_when_it_was_last_used(
    harness: Harness, admin: Browser
) -> None:
    empty = await admin.get("/panel/keys")
    assert "No API keys yet" in empty.text
    client_id, secret = await admin.create_key("Checkout")
    assert "Never" in (await admin.get("/panel/keys")).text
    await harness.token(client_id, secret)
    assert "Just now" in (await admin.get("/panel/keys")).text  # not yet written
    await flush(harness)
    harness.clock.advance(600)
    listing = await admin.get("/panel/keys")
    assert "Checkout" in listing.text and client_id in listing.text and "10 min ago" in listing.text
