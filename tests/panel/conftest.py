"""Fixtures of the merchant panel tests: merchants, users, and logged-in browsers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Harness
from tests.partner import PASSWORD, csrf_of, make_user
from tokensmith.core.admin import create_merchant
from tokensmith.core.models import Merchant, User

_SECRET = re.compile(r'id="reveal-secret"[^>]*value="([^"]+)"')
_IDENT = re.compile(r'id="reveal-id"[^>]*value="([^"]+)"')


@dataclass
class Browser:
    """One logged-in browser: its own cookies, against the shared in-process app."""

    h: Harness
    http: httpx.AsyncClient
    user: User

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, **kw)

    async def csrf(self) -> str:
        return csrf_of((await self.http.get("/panel/users")).text)

    async def post(
        self, path: str, data: dict[str, str] | None = None, csrf: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", await self.csrf())
        return await self.http.post(path, data=form)

    async def reveal(self, response: httpx.Response) -> tuple[str, str, httpx.Response]:
        """Follow the 303 of an action that made a secret: (id, secret, page)."""
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith("/panel/reveal/")
        page = await self.http.get(location)
        assert page.status_code == 200, page.text
        return _IDENT.search(page.text).group(1), _SECRET.search(page.text).group(1), page

    async def create_key(
        self, name: str = "Shop backend", scopes: tuple[str, ...] = ("read",)
    ) -> tuple[str, str]:
        form = {"name": name} | {f"scope_{s}": "on" for s in scopes}
        client_id, secret, _ = await self.reveal(await self.post("/panel/keys", form))
        return client_id, secret


async def login(h: Harness, user: User) -> Browser:
    transport = httpx.ASGITransport(h.asgi, client=("203.0.113.9", 50001))
    http = httpx.AsyncClient(transport=transport, base_url="https://auth.example.test")
    page = await http.get("/login")
    r = await http.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/panel",
        },
    )
    assert r.status_code == 303, r.text
    return Browser(h, http, user)


@dataclass
class Shop:
    merchant: Merchant
    admin: User
    member: User


async def make_shop(h: Harness, name: str) -> Shop:
    merchant = await create_merchant(h.ctx.store, h.clock, h.ctx.rand, name)
    slug = name.lower().replace(" ", "")
    admin = await make_user(h, merchant, f"admin@{slug}.test", "admin")
    member = await make_user(h, merchant, f"member@{slug}.test", "member")
    return Shop(merchant, admin, member)


@pytest.fixture
async def shop(harness: Harness) -> Shop:
    return await make_shop(harness, "Acme Shop")


@pytest.fixture
async def admin(harness: Harness, shop: Shop) -> AsyncIterator[Browser]:
    b = await login(harness, shop.admin)
    yield b
    await b.http.aclose()


@pytest.fixture
async def member(harness: Harness, shop: Shop) -> AsyncIterator[Browser]:
    b = await login(harness, shop.member)
    yield b
    await b.http.aclose()


async def flush(h: Harness) -> None:
    await h.ctx.panel.flusher.flush()


@pytest.fixture
async def other(harness: Harness) -> Shop:
    return await make_shop(harness, "Globex")


@pytest.fixture
async def operator(harness: Harness, shop: Shop) -> AsyncIterator[Browser]:
    user = await make_user(harness, None, "ops@platform.test", "operator")
    b = await login(harness, user)
    yield b
    await b.http.aclose()
