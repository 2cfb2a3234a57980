"""Panel forms with a NUL, which PostgreSQL refuses in text: a 400 page and nothing
stored, on both databases (each once answered 500 on PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop, login, make_shop

APP = {"name": "Ledger", "redirect_uris": "https://ledger.example/cb", "scope_read": "on"}
USER = {"email": "new@acme.test", "password": "a long passphrase", "role": "member"}


@pytest.fixture
async def shop_any(harness_any: Harness) -> Shop:
    return await make_shop(harness_any, "Acme Shop")


@pytest.fixture
async def admin_any(harness_any: Harness, shop_any: Shop) -> AsyncIterator[Browser]:
    b = await login(harness_any, shop_any.admin)
    yield b
    await b.http.aclose()


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/panel/keys", {"name": "Shop\x00backend", "scope_read": "on"}),
        ("/panel/devkeys", {"name": "Dev\x00key"}),
        ("/panel/apps", APP | {"name": "Led\x00ger"}),
        ("/panel/apps", APP | {"form_uri": "https://ledger.example/\x00"}),
        ("/panel/apps", APP | {"redirect_uris": "https://ledger.example/c\x00b"}),
        ("/panel/users", USER | {"email": "new\x00@acme.test"}),
        ("/panel/users", USER | {"password": "a long\x00passphrase"}),
        ("/panel/keys", {"name": "Shop backend", "scope_read": "on", "x\x00": "1"}),
    ],
    ids=[
        "key-name",
        "devkey-name",
        "app-name",
        "app-form-uri",
        "app-redirect-uri",
        "user-email",
        "user-password",
        "field-name",
    ],
)
async def test_a_nul_in_a_panel_form_is_a_400_page_and_stores_nothing(
    harness_any: Harness, shop_any: Shop, admin_any: Browser, path: str, form: dict[str, str]
) -> None:
    r = await admin_any.post(path, form)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    store = harness_any.ctx.store
    merchant_id = shop_any.merchant.merchant_id
    assert await store.list_clients(merchant_id) == []
    assert await store.list_api_keys(merchant_id) == []
    assert len(await store.list_users(merchant_id)) == 2  # the shop's admin and member
