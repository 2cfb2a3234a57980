"""Two issuers on one database: each vouches only for the tokens it issued.

Instance A (issuer ``https://a.auth.test``) and instance B (``https://b.auth.test``) share a
database, and so share its clients and signing keys. A token A issued must be inactive at
B's introspection (RFC 7662 §2.2), a refresh token of A must not be exchanged at B (RFC
6749 §6), and a code of A must not be redeemed at B (§4.1.3); each keeps working at A.
Rows written before migration 0006 carry no issuer: only the issuer named by
``legacy_token_issuer`` honours them.  On SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import Harness, make_settings, running_app
from tests.partner import REDIRECT, Partner, make_user, pkce_pair
from tokensmith.core.admin import create_merchant
from tokensmith.core.clock import FrozenClock
from tokensmith.storage.sql.tables import access_tokens, authorization_codes, refresh_tokens

A = "https://a.auth.test"
B = "https://b.auth.test"


@dataclass
class Issued:
    """Tokens instance A issued, and who may use them."""

    tokens: dict[str, str]
    #: the client each token was issued to
    owners: dict[str, tuple[str, str]]
    verifier: str
    rs: tuple[str, str]  # a resource server's client with the ``introspection`` scope


@contextlib.asynccontextmanager
async def two_issuers(
    db_url: str, tmp_path: Path, clock: FrozenClock, **settings: Any
) -> AsyncIterator[tuple[Harness, Harness]]:
    a_settings = make_settings(tmp_path, db_url, issuer=A, **settings)
    b_settings = make_settings(tmp_path, db_url, issuer=B, **settings)
    async with running_app(a_settings, clock) as a, running_app(b_settings, clock) as b:
        yield a, b


async def _partner(h: Harness, tag: str) -> Partner:
    """:func:`tests.partner.make_partner` with names of its own (the database is shared)."""
    merchant = await create_merchant(h.ctx.store, h.clock, h.ctx.rand, f"Shop {tag}")
    user = await make_user(h, merchant, email=f"ann@{tag}.test")
    app, secret = await h.client(
        name=f"Ledger Sync {tag}",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(REDIRECT,),
        token_format="opaque",
    )
    return Partner(h, merchant, user, app, secret)


async def issue_at(h: Harness, tag: str = "a") -> Issued:
    """One token of every stored kind, issued by ``h``."""
    tokens: dict[str, str] = {}
    owners: dict[str, tuple[str, str]] = {}
    for fmt in ("opaque", "jwt"):
        client, secret = await h.client(name=f"{fmt} key {tag}", token_format=fmt)
        r = await h.token(client.client_id, secret)
        assert r.status_code == 200, r.text
        tokens[f"{fmt} access token"] = r.json()["access_token"]
        owners[f"{fmt} access token"] = (client.client_id, secret)
    partner = await _partner(h, tag)
    pair = await partner.tokens()
    tokens["partner access token"] = pair["access_token"]
    tokens["refresh token"] = pair["refresh_token"]
    verifier, challenge = pkce_pair()
    tokens["authorization code"] = await partner.code(
        code_challenge=challenge, code_challenge_method="S256"
    )
    rs, rs_secret = await h.client(name=f"payments api {tag}", scope="introspection")
    for kind in ("partner access token", "refresh token", "authorization code"):
        owners[kind] = (partner.app.client_id, partner.secret)
    return Issued(tokens, owners, verifier, (rs.client_id, rs_secret))


async def introspect(h: Harness, issued: Issued, kind: str) -> httpx.Response:
    return await h.http.post(
        "/oauth/introspect", data={"token": issued.tokens[kind]}, auth=issued.rs
    )


async def refresh(h: Harness, issued: Issued, kind: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": issued.tokens[kind]}
    return await h.http.post("/oauth/token", data=form, auth=issued.owners[kind])


async def redeem(h: Harness, issued: Issued, kind: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": issued.tokens[kind],
        "redirect_uri": REDIRECT,
        "code_verifier": issued.verifier,
    }
    return await h.http.post("/oauth/token", data=form, auth=issued.owners[kind])


async def revoke(h: Harness, issued: Issued, kind: str) -> httpx.Response:
    return await h.http.post(
        "/oauth/revoke", data={"token": issued.tokens[kind]}, auth=issued.owners[kind]
    )


def refused(r: httpx.Response, action: str) -> bool:
    """How an instance answers a token that is not its own."""
    if action in ("refresh", "redeem"):
        return r.status_code == 400 and r.json()["error"] == "invalid_grant"
    if action == "introspect":
        return r.status_code == 200 and r.json() == {"active": False}
    return r.status_code == 200  # RFC 7009 §2.2: an unknown token is no error


def accepted(r: httpx.Response, action: str) -> bool:
    if action == "introspect":
        return r.status_code == 200 and r.json()["active"] is True
    return r.status_code == 200


KINDS = ("opaque access token", "jwt access token", "partner access token", "refresh token")
ACTIONS = {"introspect": introspect, "refresh": refresh, "redeem": redeem, "revoke": revoke}

#: A token of A used at B; then the same token at A, which must be untouched by B.
FOREIGN = [
    ("opaque access token", "introspect", "introspect"),
    ("jwt access token", "introspect", "introspect"),
    ("partner access token", "introspect", "introspect"),
    ("refresh token", "introspect", "introspect"),
    ("refresh token", "refresh", "refresh"),
    ("authorization code", "introspect", "redeem"),
    ("authorization code", "redeem", "redeem"),
    ("jwt access token", "revoke", "introspect"),
    ("opaque access token", "revoke", "introspect"),
    ("partner access token", "revoke", "introspect"),
    ("refresh token", "revoke", "refresh"),
]


@pytest.mark.parametrize(
    ("kind", "at_b", "then_at_a"), FOREIGN, ids=[f"{k}-{a}" for k, a, _ in FOREIGN]
)
async def test_a_token_is_only_good_at_the_issuer_that_issued_it(
    db_url: str, tmp_path: Path, clock: FrozenClock, kind: str, at_b: str, then_at_a: str
) -> None:
    async with two_issuers(db_url, tmp_path, clock) as (a, b):
        issued = await issue_at(a)
        r = await ACTIONS[at_b](b, issued, kind)
        assert refused(r, at_b), (r.status_code, r.text)
        r = await ACTIONS[then_at_a](a, issued, kind)
        assert accepted(r, then_at_a), (r.status_code, r.text)


async def test_each_issuer_vouches_for_its_own_tokens_only(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    """Both ways round, every kind at once: introspection at the other issuer says
    inactive, at the issuer itself active with its own ``iss``."""
    async with two_issuers(db_url, tmp_path, clock) as (a, b):
        of_a, of_b = await issue_at(a, "a"), await issue_at(b, "b")
        for mine, other, issued, iss in ((a, b, of_a, A), (b, a, of_b, B)):
            for kind in KINDS:
                assert (await introspect(other, issued, kind)).json() == {"active": False}
                body = (await introspect(mine, issued, kind)).json()
                assert body["active"] is True and body["iss"] == iss, (kind, body)


# -- rows from before migration 0006 ------------------------------------------------------------

#: The stored kinds, and how each is used at an instance.
LEGACY = [
    ("opaque access token", "introspect"),
    ("partner access token", "introspect"),
    ("refresh token", "introspect"),
    ("refresh token", "refresh"),
    ("authorization code", "redeem"),
]


async def _forget_issuers(h: Harness) -> None:
    """What rows written before migration 0006 look like: no issuer."""
    engine = h.ctx.store.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        for table in (access_tokens, refresh_tokens, authorization_codes):
            await conn.execute(update(table).values(issuer_tag=None))


@pytest.mark.parametrize(("kind", "action"), LEGACY, ids=[f"{k}-{a}" for k, a in LEGACY])
async def test_rows_without_an_issuer_are_honoured_by_the_legacy_issuer_only(
    db_url: str, tmp_path: Path, clock: FrozenClock, kind: str, action: str
) -> None:
    async with two_issuers(db_url, tmp_path, clock, legacy_token_issuer=A + "/") as (a, b):
        issued = await issue_at(a)
        await _forget_issuers(a)
        assert refused(await ACTIONS[action](b, issued, kind), action)
        assert accepted(await ACTIONS[action](a, issued, kind), action)


@pytest.mark.parametrize(("kind", "action"), LEGACY, ids=[f"{k}-{a}" for k, a in LEGACY])
async def test_rows_without_an_issuer_are_honoured_by_no_one_when_told_none(
    db_url: str, tmp_path: Path, clock: FrozenClock, kind: str, action: str
) -> None:
    async with two_issuers(db_url, tmp_path, clock, legacy_token_issuer="none") as (a, b):
        issued = await issue_at(a)
        await _forget_issuers(a)
        for h in (a, b):
            assert refused(await ACTIONS[action](h, issued, kind), action)


@pytest.mark.parametrize(("kind", "action"), LEGACY, ids=[f"{k}-{a}" for k, a in LEGACY])
async def test_rows_without_an_issuer_survive_the_upgrade_by_default(
    db_url: str, tmp_path: Path, clock: FrozenClock, kind: str, action: str
) -> None:
    """A one-issuer deployment upgraded to 0006 keeps its sessions: with the setting left
    empty, untagged rows are honoured."""
    async with two_issuers(db_url, tmp_path, clock) as (a, _b):
        issued = await issue_at(a)
        await _forget_issuers(a)
        assert accepted(await ACTIONS[action](a, issued, kind), action)
