"""Helpers for the partner-app flow (authorization code + refresh tokens) in tests."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import Harness
from tokensmith.core.accounts import create_user
from tokensmith.core.admin import create_merchant
from tokensmith.core.models import Client, Merchant, User
from tokensmith.core.passwords import Passwords

#: Cheap argon2id parameters: the hash still verifies with the app's default hasher.
FAST_PASSWORDS = Passwords(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORD = "correct horse battery staple"
REDIRECT = "https://partner.example/callback"
ISSUER = "https://auth.example.test"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]*)">')
#: The CSP of every page: forms may post and redirect to this server only.
FORM_ACTION = "form-action 'self';"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def hidden_fields(html: str) -> dict[str, str]:
    return {k: htmllib.unescape(v) for k, v in _HIDDEN.findall(html)}


def continued_to(r: httpx.Response) -> str:
    """Where a continue page sends the browser on: the answer of a form whose next stop
    may be another site is a page of ours (CSP ``form-action 'self'``) that refreshes."""
    assert r.status_code == 200 and "location" not in r.headers, (r.status_code, r.text[:300])
    assert FORM_ACTION in r.headers["content-security-policy"]
    found = _REFRESH.search(r.text)
    assert found, "not a continue page"
    url = htmllib.unescape(found.group(1))
    assert f'href="{found.group(1)}"' in r.text, "no link for a browser that does not refresh"
    return url


def sent_to(r: httpx.Response) -> str | None:
    """Where a response sends the browser next: a redirect's ``Location`` or a continue
    page's URL; ``None`` for a page the browser stays on."""
    if r.status_code in (302, 303):
        return r.headers["location"]
    if r.status_code == 200 and _REFRESH.search(r.text):
        return continued_to(r)
    return None


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def make_user(
    h: Harness,
    merchant: Merchant | None,
    email: str = "ann@shop.test",
    role: str = "admin",
) -> User:
    return await create_user(
        h.ctx.store,
        h.ctx.store,
        FAST_PASSWORDS,
        h.clock,
        h.ctx.rand,
        email=email,
        password=PASSWORD,
        role=role,
        merchant=merchant.merchant_id if merchant else None,
    )


@dataclass
class Partner:
    """A merchant, one of its users, and a confidential partner app."""

    h: Harness
    merchant: Merchant
    user: User
    app: Client
    secret: str

    @property
    def http(self) -> httpx.AsyncClient:
        return self.h.http

    def params(self, **extra: str | None) -> dict[str, str]:
        base: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": REDIRECT,
            "scope": "read write",
            "state": "st-123",
        }
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    async def login(self, email: str | None = None, password: str = PASSWORD) -> httpx.Response:
        page = await self.http.get("/login")
        return await self.http.post(
            "/login",
            data={
                "email": email or self.user.email,
                "password": password,
                "csrf_token": csrf_of(page.text),
                "next": "/account/apps",
            },
        )

    async def authorize(self, **extra: str | None) -> httpx.Response:
        return await self.http.get("/oauth/authorize", params=self.params(**extra))

    async def decide(
        self, page: httpx.Response, decision: str = "allow", **extra: str
    ) -> httpx.Response:
        form = hidden_fields(page.text) | {"decision": decision} | extra
        return await self.http.post("/oauth/authorize/decision", data=form)

    async def code(self, **extra: str | None) -> str:
        """Log in if needed, approve, and return the code from the redirect."""
        page = await self.authorize(**extra)
        if page.status_code == 200 and 'action="/login"' in page.text:
            await self.login()
            page = await self.authorize(**extra)
        if page.status_code == 200:
            page = await self.decide(page)
        destination = sent_to(page)
        assert destination is not None, page.text
        q = query_of(destination)
        assert "code" in q, q
        return q["code"]

    async def exchange(self, code: str, auth: Any = "basic", **form: str) -> httpx.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT} | form
        data = {k: v for k, v in data.items() if v is not None}
        if auth == "basic":
            return await self.http.post(
                "/oauth/token", data=data, auth=(self.app.client_id, self.secret)
            )
        return await self.http.post("/oauth/token", data=data)

    async def refresh(self, refresh_token: str, **form: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token} | form
        return await self.http.post(
            "/oauth/token", data=data, auth=(self.app.client_id, self.secret)
        )

    async def tokens(self, **extra: str | None) -> dict[str, Any]:
        verifier, challenge = pkce_pair()
        code = await self.code(code_challenge=challenge, code_challenge_method="S256", **extra)
        r = await self.exchange(code, code_verifier=verifier)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def introspect(self, token: str) -> dict[str, Any]:
        r = await self.http.post(
            "/oauth/introspect", data={"token": token}, auth=(self.app.client_id, self.secret)
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


async def make_partner(h: Harness, **spec: Any) -> Partner:
    merchant = await create_merchant(h.ctx.store, h.clock, h.ctx.rand, "Acme Shop")
    user = await make_user(h, merchant)
    spec.setdefault("name", "Ledger Sync")
    spec.setdefault("grant_types", ("authorization_code", "refresh_token"))
    spec.setdefault("redirect_uris", (REDIRECT,))
    app, secret = await h.client(**spec)
    return Partner(h, merchant, user, app, secret)
