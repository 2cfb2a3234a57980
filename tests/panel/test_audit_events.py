"""Audit events asserted per action: each action, through the real endpoints (or the
core service where no endpoint changes it), records exactly the expected event (type,
actor, merchant, subject, outcome, details), and no secret of the action appears anywhere
in the stored row or its webhook outbox row. Issuing tokens records nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FrozenClock, Harness, make_settings, running_app
from tests.panel.conftest import Browser, Shop, login
from tests.partner import PASSWORD, REDIRECT, Partner, continued_to, csrf_of, query_of
from tokensmith.core.audit import By
from tokensmith.storage.sql import SqlStore
from tokensmith.storage.sql.tables import audit_events, audit_outbox

WEBHOOK_SECRET = "whsec-Kq3Lm8Np2Rt7Vw1Xz5"
GRANTS = ("authorization_code", "refresh_token")


@pytest.fixture
async def harness(tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Harness]:
    """The app on SQLite with the webhook on, so that each event also gets an outbox row
    (never delivered here: the job looks once an hour)."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'app.db'}",
        audit_webhook_url="https://hooks.example.test/audit",
        audit_webhook_secret=WEBHOOK_SECRET,
        audit_webhook_interval=3600,
    )
    async with running_app(settings, clock) as h:
        yield h


@dataclass
class Expected:
    type: str
    actor: str
    merchant_id: str | None
    subject: str | None
    outcome: str = "success"
    details: dict[str, Any] = field(default_factory=dict)
    #: values the action handled that must be nowhere in the stored rows
    secrets: list[str] = field(default_factory=list)
    #: the source address, when the action came over HTTP
    source: str | None = None


@dataclass
class World:
    h: Harness
    shop: Shop
    admin: Browser

    @property
    def admin_actor(self) -> str:
        return f"user:{self.shop.admin.user_id}"

    async def partner(self) -> Partner:
        app, secret = await self.h.client(
            name="Ledger Sync",
            grant_types=GRANTS,
            redirect_uris=(REDIRECT,),
            merchant_id=self.shop.merchant.merchant_id,
        )
        return Partner(self.h, self.shop.merchant, self.shop.admin, app, secret)

    async def consented(self, remember: bool = True) -> tuple[Partner, dict[str, Any]]:
        p = await self.partner()
        await p.login()
        page = await p.authorize(scope="read")
        decided = await p.decide(page, **({"remember": "yes"} if remember else {}))
        r = await p.exchange(query_of(continued_to(decided))["code"])
        assert r.status_code == 200, r.text
        return p, dict(r.json())


PANEL = "203.0.113.9"  # the panel browsers' address
DIRECT = "203.0.113.7"  # the harness client's


async def _login_ok(w: World) -> Expected:
    b = await login(w.h, w.shop.member)
    await b.http.aclose()
    m = w.shop.member
    return Expected(
        "login.succeeded", f"user:{m.user_id}", w.shop.merchant.merchant_id, m.user_id,
        details={"username": m.email}, secrets=[PASSWORD], source=PANEL,
    )  # fmt: skip


async def _login(w: World, email: str, password: str) -> None:
    page = await w.h.http.get("/login")
    r = await w.h.http.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 400, r.text


async def _login_wrong_password(w: World) -> Expected:
    wrong = "Tr0ub4dor&3-wrong"
    await _login(w, w.shop.admin.email, wrong)
    return Expected(
        "login.failed", "anonymous", w.shop.merchant.merchant_id, w.shop.admin.user_id,
        outcome="failure", details={"username": w.shop.admin.email, "reason": "bad_credentials"},
        secrets=[wrong], source=DIRECT,
    )  # fmt: skip


async def _login_unknown_name(w: World) -> Expected:
    typed = "hunter2-Pasted-In-The-Email-Field"  # a password typed into the e-mail field
    await _login(w, typed, "whatever-password")
    return Expected(
        "login.failed", "anonymous", None, None, outcome="failure",
        details={"reason": "bad_credentials", "username": ("unknown:", len(typed.lower()))},
        secrets=[typed, typed.lower(), "whatever-password"], source=DIRECT,
    )  # fmt: skip


async def _logout(w: World) -> Expected:
    r = await w.admin.post("/logout")
    assert r.status_code == 303
    return Expected("logout", w.admin_actor, w.shop.merchant.merchant_id, w.shop.admin.user_id,
                    source=PANEL)  # fmt: skip


async def _key_created(w: World) -> Expected:
    client_id, secret = await w.admin.create_key("Shop backend", ("read",))
    return Expected(
        "client.created", w.admin_actor, w.shop.merchant.merchant_id, client_id,
        details={"kind": "key", "name": "Shop backend", "scope": "read"}, secrets=[secret],
        source=PANEL,
    )  # fmt: skip


async def _key_rotated(w: World) -> Expected:
    client_id, old = await w.admin.create_key()
    _, new, _ = await w.admin.reveal(
        await w.admin.post(f"/panel/keys/{client_id}/rotate", {"overlap": "0"})
    )
    return Expected(
        "client.secret_rotated", w.admin_actor, w.shop.merchant.merchant_id, client_id,
        details={"old_valid_for": "0"}, secrets=[old, new], source=PANEL,
    )  # fmt: skip


async def _key_revoked(w: World) -> Expected:
    client_id, secret = await w.admin.create_key()
    assert (await w.admin.post(f"/panel/keys/{client_id}/revoke")).status_code == 303
    return Expected("client.revoked", w.admin_actor, w.shop.merchant.merchant_id, client_id,
                    secrets=[secret], source=PANEL)  # fmt: skip


async def _app_updated(w: World) -> Expected:
    app_id, secret, _ = await w.admin.reveal(
        await w.admin.post(
            "/panel/apps", {"name": "Books", "redirect_uris": REDIRECT, "scope_read": "on"}
        )
    )
    r = await w.admin.post(f"/panel/apps/{app_id}", {"name": "Books 2", "redirect_uris": REDIRECT})
    assert r.status_code == 303, r.text
    return Expected("client.updated", w.admin_actor, w.shop.merchant.merchant_id, app_id,
                    details={"fields": "name"}, secrets=[secret], source=PANEL)  # fmt: skip


async def _keys_changed(w: World) -> Expected:
    """No page edits a client's keys: the core service, as the CLI and the API use it."""
    client, secret = await w.h.client(merchant_id=w.shop.merchant.merchant_id)
    jwks = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}]})
    await w.h.ctx.client_admin.update(client.evolve(jwks=jwks), by=By("cli"))
    return Expected("client.keys_changed", "cli", w.shop.merchant.merchant_id, client.client_id,
                    details={"fields": "jwks"}, secrets=[secret])  # fmt: skip


async def _devkey_created(w: World) -> Expected:
    key_id, value, _ = await w.admin.reveal(await w.admin.post("/panel/devkeys", {"name": "Mob"}))
    return Expected("apikey.created", w.admin_actor, w.shop.merchant.merchant_id, key_id,
                    details={"name": "Mob"}, secrets=[value], source=PANEL)  # fmt: skip


async def _devkey_revoked(w: World) -> Expected:
    key_id, value, _ = await w.admin.reveal(await w.admin.post("/panel/devkeys", {"name": "Mob"}))
    assert (await w.admin.post(f"/panel/devkeys/{key_id}/revoke")).status_code == 303
    return Expected("apikey.revoked", w.admin_actor, w.shop.merchant.merchant_id, key_id,
                    secrets=[value], source=PANEL)  # fmt: skip


NEW_PASSWORD = "a new user's Pa55word, long enough"


async def _user_created(w: World) -> Expected:
    r = await w.admin.post(
        "/panel/users", {"email": "Zed@Acme.test", "password": NEW_PASSWORD, "role": "member"}
    )
    assert r.status_code == 303, r.text
    user = await w.h.ctx.store.find_user_by_email("zed@acme.test")
    assert user is not None
    return Expected(
        "user.created", w.admin_actor, w.shop.merchant.merchant_id, user.user_id,
        details={"email": "zed@acme.test", "role": "member"}, secrets=[NEW_PASSWORD],
        source=PANEL,
    )  # fmt: skip


async def _user_disabled(w: World) -> Expected:
    uid = w.shop.member.user_id
    assert (await w.admin.post(f"/panel/users/{uid}/disable")).status_code == 303
    return Expected("user.disabled", w.admin_actor, w.shop.merchant.merchant_id, uid,
                    source=PANEL)  # fmt: skip


async def _consent_granted(w: World) -> Expected:
    p = await w.partner()
    await p.login()
    page = await p.authorize(scope="read")
    before = await _count(w.h)
    decided = await p.decide(page, remember="yes")
    assert "code" in query_of(continued_to(decided))
    w.marker = before  # type: ignore[attr-defined]
    return Expected(
        "consent.granted", w.admin_actor, w.shop.merchant.merchant_id, p.app.client_id,
        details={"scope": "read", "remembered": True}, secrets=[p.secret], source=DIRECT,
    )  # fmt: skip


async def _consent_withdrawn_by_user(w: World) -> Expected:
    p, tokens = await w.consented()
    page = await w.h.http.get("/account/apps")
    w.marker = await _count(w.h)  # type: ignore[attr-defined]
    r = await w.h.http.post(
        f"/oauth/consents/{p.app.client_id}/withdraw", data={"csrf_token": csrf_of(page.text)}
    )
    assert r.status_code == 303, r.text
    return Expected(
        "consent.withdrawn", w.admin_actor, w.shop.merchant.merchant_id, p.app.client_id,
        details={"scope_of": "user", "consents": 1, "grants": 1},
        secrets=[tokens["access_token"], tokens["refresh_token"], p.secret], source=DIRECT,
    )  # fmt: skip


async def _consent_withdrawn_in_panel(w: World) -> Expected:
    p, tokens = await w.consented(remember=False)
    w.marker = await _count(w.h)  # type: ignore[attr-defined]
    r = await w.admin.post(f"/panel/authorized/{p.app.client_id}/revoke")
    assert r.status_code == 303, r.text
    return Expected(
        "consent.withdrawn", w.admin_actor, w.shop.merchant.merchant_id, p.app.client_id,
        details={"scope_of": "merchant", "consents": 0, "grants": 1},
        secrets=[tokens["access_token"], tokens["refresh_token"]], source=PANEL,
    )  # fmt: skip


async def _access_token_revoked(w: World) -> Expected:
    client, secret = await w.h.client(merchant_id=w.shop.merchant.merchant_id)
    before = await _count(w.h)
    r = await w.h.token(client.client_id, secret)
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert await _count(w.h) == before, "issuing a token must write no audit row"
    jti = (await w.h.ctx.service.introspect(token, client))["jti"]
    r = await w.h.http.post("/oauth/revoke", data={"token": token}, auth=(client.client_id, secret))
    assert r.status_code == 200
    return Expected(
        "token.revoked", f"client:{client.client_id}", w.shop.merchant.merchant_id, jti,
        details={"kind": "access_token"}, secrets=[token, secret], source=DIRECT,
    )  # fmt: skip


async def _refresh_token_revoked(w: World) -> Expected:
    p, tokens = await w.consented()
    w.marker = await _count(w.h)  # type: ignore[attr-defined]
    refreshed = await p.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert await _count(w.h) == w.marker, "refreshing a token must write no audit row"  # type: ignore[attr-defined]
    new = refreshed.json()
    r = await w.h.http.post(
        "/oauth/revoke", data={"token": new["refresh_token"]}, auth=(p.app.client_id, p.secret)
    )
    assert r.status_code == 200
    return Expected(
        "token.revoked", f"client:{p.app.client_id}", w.shop.merchant.merchant_id, None,
        details={"kind": "refresh_token"},
        secrets=[tokens["refresh_token"], new["refresh_token"], new["access_token"], p.secret],
        source=DIRECT,
    )  # fmt: skip


CASES: dict[str, Callable[[World], Awaitable[Expected]]] = {
    "login-succeeded": _login_ok,
    "login-failed-wrong-password": _login_wrong_password,
    "login-failed-unknown-name": _login_unknown_name,
    "logout": _logout,
    "client-created": _key_created,
    "client-secret-rotated": _key_rotated,
    "client-revoked": _key_revoked,
    "client-updated": _app_updated,
    "client-keys-changed": _keys_changed,
    "apikey-created": _devkey_created,
    "apikey-revoked": _devkey_revoked,
    "user-created": _user_created,
    "user-disabled": _user_disabled,
    "consent-granted": _consent_granted,
    "consent-withdrawn-by-the-user": _consent_withdrawn_by_user,
    "consent-withdrawn-in-the-panel": _consent_withdrawn_in_panel,
    "access-token-revoked": _access_token_revoked,
    "refresh-token-revoked": _refresh_token_revoked,
}


async def _rows(h: Harness) -> list[dict[str, Any]]:
    store = h.ctx.store
    assert isinstance(store, SqlStore)
    async with store.engine.connect() as conn:
        events = [dict(r._mapping) for r in await conn.execute(select(audit_events))]
        outbox = {r.event_id: r.body for r in await conn.execute(select(audit_outbox))}
    for e in events:
        e["outbox"] = outbox.get(e["id"])
    return sorted(events, key=lambda e: (e["at"], e["id"]))


async def _count(h: Harness) -> set[str]:
    """The ids of the stored events (the clock is frozen: ``at`` orders nothing)."""
    return {r["id"] for r in await _rows(h)}


@pytest.mark.parametrize("case", list(CASES))
async def test_each_action_records_its_event_and_no_secret(
    harness: Harness, shop: Shop, admin: Browser, case: str
) -> None:
    world = World(harness, shop, admin)
    world.marker = await _count(harness)  # type: ignore[attr-defined]
    expected = await CASES[case](world)
    new = [r for r in await _rows(harness) if r["id"] not in world.marker]  # type: ignore[attr-defined]
    mine = [r for r in new if r["type"] == expected.type]
    assert len(mine) == 1, [r["type"] for r in new]
    row = mine[0]
    assert (row["actor"], row["merchant_id"], row["subject"], row["outcome"]) == (
        expected.actor, expected.merchant_id, expected.subject, expected.outcome,
    )  # fmt: skip
    if expected.source is not None:
        assert row["source"] == expected.source
    details = json.loads(row["details"])
    for key, value in expected.details.items():
        if isinstance(value, tuple):  # a fingerprint: its prefix and the typed length
            prefix, length = value
            assert details[key].startswith(f"{prefix}{length}:"), details
        else:
            assert details[key] == value, details
    assert row["outbox"] is not None and json.loads(row["outbox"])["id"] == row["id"]
    for secret in [*expected.secrets, WEBHOOK_SECRET]:
        for stored in await _rows(harness):
            assert secret not in repr(stored), (secret, stored)


def test_every_event_type_of_the_catalogue_is_documented() -> None:
    from tokensmith.core.audit import EVENT_TYPES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    for name in EVENT_TYPES:
        assert f"| `{name}` |" in doc, name
