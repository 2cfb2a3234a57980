"""Helpers of the admin API tests: an app with a platform admin client, and tokens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Harness, make_settings, running_app
from tests.partner import FAST_PASSWORDS
from tokensmith.core.audit import AuditEvent, AuditQuery
from tokensmith.core.clock import FrozenClock

ADMIN = "/admin/v1"
ALL_SCOPES = (
    "admin:merchants admin:users admin:clients admin:keys admin:tokens admin:consents admin:audit"
)


@dataclass
class Admin:
    """The app, and a token of a platform client holding every admin scope."""

    h: Harness
    token: str
    client_id: str
    secret: str

    @property
    def http(self) -> httpx.AsyncClient:
        return self.h.http

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        sent = {"authorization": f"Bearer {token or self.token}"} | (headers or {})
        return await self.http.request(
            method, ADMIN + path, json=json, params=params, headers=sent, content=content
        )

    async def client_token(
        self, scope: str, merchant_id: str | None = None, **spec: Any
    ) -> tuple[str, str, str]:
        """A client registered with ``scope`` and a token of it: (id, secret, token)."""
        client, secret = await self.h.client(scope=scope, merchant_id=merchant_id, **spec)
        return client.client_id, secret, await token_of(self.h, client.client_id, secret)

    async def events(self) -> list[AuditEvent]:
        """Every audit event the app recorded, oldest first."""
        newest_first = [e async for e in self.h.ctx.audit.stream(AuditQuery())]
        return newest_first[::-1]


async def token_of(h: Harness, client_id: str, secret: str, **form: str) -> str:
    r = await h.token(client_id, secret, **form)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@contextlib.asynccontextmanager
async def admin_app(tmp_path: Path, clock: FrozenClock, **settings: Any) -> AsyncIterator[Admin]:
    db = f"sqlite:///{tmp_path / 'admin.db'}"
    async with running_app(
        make_settings(tmp_path, db, **settings), clock, passwords=FAST_PASSWORDS
    ) as h:
        client, secret = await h.client(name="platform automation", scope=ALL_SCOPES)
        token = await token_of(h, client.client_id, secret)
        yield Admin(h, token, client.client_id, secret)
