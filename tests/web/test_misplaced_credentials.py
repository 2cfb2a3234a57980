"""A credential sent in any field, the wrong one included, reaches no log line, no table and
no ``repr``: a ``client_id`` that names no client is written as a keyed fingerprint
(``unknown:<length>:<8 hex>``), never as it was sent."""

from __future__ import annotations

import io
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import REDIS_URL, Harness, make_settings, running_app
from tests.partner import Partner, csrf_of, make_partner
from tests.web.test_rate_limiting import TBC, redis_apps, skip_without_redis
from tokensmith.core.admin import create_api_key
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    AuthorizationCode,
    Client,
    ClientSecret,
    IssuedToken,
    RefreshTokenRecord,
    Session,
    SigningKeyRecord,
    User,
)
from tokensmith.core.panel_models import Reveal
from tokensmith.core.requests import ClientCredentials, TokenRequest
from tokensmith.logs import JsonFormatter, configure_logging
from tokensmith.storage.sql.rotation import Rotation
from tokensmith.storage.sql.tables import auth_failures
from tokensmith.web.panel.reveal import Secret

ENDPOINTS = ["/oauth/token", "/o/token/", "/oauth/auth", TBC]


def secret_shaped() -> str:
    """Like a generated secret: 256 bits, base64url, 43 characters."""
    return secrets.token_urlsafe(32)


Logged = Callable[[], str]


@pytest.fixture(params=["json", "text", "records"])
def captured(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[Logged]:
    """Everything logged so far: by the ``tokensmith`` loggers at level DEBUG, through the
    handler as configured for production (JSON or text) or, unconfigured, as records with
    all their fields (pytest's ``caplog``); and by any other logger at INFO. (Below INFO,
    database drivers log the parameters of every statement, client_id lookups included.)"""
    ts_logger, root = logging.getLogger("tokensmith"), logging.getLogger()
    saved = (ts_logger.handlers[:], ts_logger.level, ts_logger.propagate, root.level)
    buf = io.StringIO()
    everything_else = logging.StreamHandler(buf)
    everything_else.setFormatter(JsonFormatter())
    if request.param == "records":
        ts_logger.handlers[:], ts_logger.propagate = [], True
        caplog.set_level(logging.INFO)
        caplog.set_level(logging.DEBUG, logger="tokensmith")
    else:
        configure_logging(request.param == "json", "DEBUG")
        for handler in ts_logger.handlers:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(buf)
        root.addHandler(everything_else)
        root.setLevel(logging.INFO)

    def logged() -> str:
        for handler in ts_logger.handlers:
            handler.flush()  # lines wait for the end of the event loop's pass
        records = [repr(vars(r)) + "\n" + r.getMessage() for r in caplog.records]
        if request.param != "records":
            records = []  # the same records, already in ``buf``
        return buf.getvalue() + "\n".join(records)

    try:
        yield logged
    finally:
        root.removeHandler(everything_else)
        ts_logger.handlers[:], ts_logger.level, ts_logger.propagate, _ = saved
        root.setLevel(saved[3])


@dataclass
class Sent:
    """The credential-shaped values sent, by the field they were sent in."""

    values: dict[str, str]

    def new(self, field: str) -> str:
        self.values[field] = value = secret_shaped()
        return value


async def _token_endpoints(h: Harness, apikey: str, client_id: str, sent: Sent) -> None:
    """Misplaced or wrong credentials at every token endpoint, in every field."""
    for endpoint in ENDPOINTS:
        headers = {"apikey": apikey} if endpoint == TBC else {}
        body = {"grant_type": "client_credentials"} if endpoint.startswith("/o") else {}
        stray = sent.new(f"client_id at {endpoint}")
        r = await h.http.post(
            endpoint, data={**body, "client_id": stray, "client_secret": "x"}, headers=headers
        )
        assert r.status_code in (400, 401), r.text
        r = await h.http.post(
            endpoint,
            data={**body, "client_id": client_id, "client_secret": sent.new(f"secret {endpoint}")},
            headers=headers,
        )
        assert r.status_code in (400, 401), r.text
    basic_id, basic_secret = sent.new("Basic user"), sent.new("Basic password")
    r = await h.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(basic_id, basic_secret)
    )
    assert r.status_code == 401
    # refused before authentication: an unsupported grant type, a wrong apikey
    r = await h.http.post(
        "/oauth/token",
        data={"grant_type": "password", "client_id": sent.new("client_id, bad grant")},
    )
    assert r.status_code == 400
    r = await h.http.post(
        TBC,
        data={"client_id": sent.new("client_id, bad apikey"), "client_secret": "x"},
        headers={"apikey": sent.new("apikey")},
    )
    assert r.status_code == 401


async def _throttled(h: Harness, sent: Sent) -> None:
    """A client_id refused by the limits, before any lookup."""
    stray = sent.new("client_id, throttled")
    for _ in range(11):
        r = await h.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(stray, "wrong")
        )
    assert r.status_code == 429


async def _partner_fields(p: Partner, sent: Sent) -> None:
    """Codes, verifiers, refresh tokens and tokens to introspect or revoke, all wrong."""
    r = await p.exchange(sent.new("code"), code_verifier=sent.new("code_verifier"))
    assert r.status_code == 400
    r = await p.refresh(sent.new("refresh_token"))
    assert r.status_code == 400
    auth = (p.app.client_id, p.secret)
    for path in ("/oauth/introspect", "/oauth/revoke"):
        r = await p.http.post(path, data={"token": sent.new(f"token at {path}")}, auth=auth)
        assert r.status_code == 200
        stray = sent.new(f"client_id at {path}")
        r = await p.http.post(path, data={"token": "x"}, auth=(stray, sent.new(f"secret {path}")))
        assert r.status_code == 401


async def _logins(p: Partner, sent: Sent) -> None:
    """A password in the e-mail field, and wrong passwords."""
    page = await p.http.get("/login")
    form = {"csrf_token": csrf_of(page.text), "next": "/account/apps"}
    for email in (sent.new("password in the e-mail field"), p.user.email):
        r = await p.http.post(
            "/login", data={**form, "email": email, "password": sent.new(f"password {email}")}
        )
        assert r.status_code == 400


async def _table(h: Harness) -> str:
    await h.ctx.panel.flusher.flush()
    engine = h.ctx.store.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(auth_failures))).all()
    assert rows, "the failures were written"
    return "\n".join(repr(tuple(r)) for r in rows)


async def test_credentials_sent_in_any_field_reach_no_log_and_no_table(
    captured: Logged, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'misplaced.db'}")
    sent = Sent({})
    async with running_app(settings, clock) as h:
        client, _ = await h.client()
        _, apikey = await create_api_key(h.ctx.store, clock, h.ctx.rand, "misplaced")
        partner = await make_partner(h)
        await _token_endpoints(h, apikey, client.client_id, sent)
        await _partner_fields(partner, sent)
        await _logins(partner, sent)
        await _throttled(h, sent)
        table = await _table(h)
    logged = captured()
    assert "token refused" in logged and client.client_id in table  # the capture works
    leaked = {
        where: [field for field, value in sent.values.items() if value in text]
        for where, text in (("log", logged), ("auth_failures", table))
    }
    assert leaked == {"log": [], "auth_failures": []}
    # refusals are named by the known client, or by a fingerprint
    assert client.client_id in logged and "unknown:43:" in logged and "unknown:43:" in table


async def test_fingerprints_agree_across_instances_sharing_the_secret_key(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    stray = secret_shaped()
    labels = []
    for _ in range(2):
        async with running_app(settings, clock) as h:
            r = await h.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(stray, "x")
            )
            assert r.status_code == 401
            labels.append(await _table(h))
    first, both = (re.findall(r"unknown:43:[0-9a-f]{8}", t) for t in labels)
    assert len(first) == 1 and both == first * 2


async def test_a_known_client_is_still_named_in_the_audit_line(
    captured: Logged, harness: Harness
) -> None:
    client, secret = await harness.client()
    r = await harness.token(client.client_id, secret, scope="admin")  # refused after authentication
    assert r.status_code == 400
    r = await harness.token(client.client_id, "wrong")
    assert r.status_code == 401
    lines = [line for line in captured().splitlines() if "token.refused" in line]
    assert len(lines) == 2 and all(client.client_id in line for line in lines)


# -- reprs -------------------------------------------------------------------------------

S = {name: secret_shaped() for name in ("secret", "token", "refresh", "code", "verifier", "key")}
H = {name: hash_secret(value) for name, value in S.items()}


def _refresh_record() -> RefreshTokenRecord:
    return RefreshTokenRecord(H["refresh"], "f1", "app", "read", 0.0, 1.0, replaced_by=H["token"])


def _models() -> dict[str, object]:
    """Every request and record that holds a credential or its hash."""
    creds = ClientCredentials("abc", S["secret"], "client_secret_basic")
    params = {
        "refresh_token": S["refresh"],
        "code": S["code"],
        "code_verifier": S["verifier"],
        "client_secret": S["secret"],
        "client_id": S["key"],
    }
    return {
        "ClientCredentials": creds,
        "ClientCredentials, a secret as client_id": ClientCredentials(
            S["secret"], S["token"], "client_secret_post"
        ),
        "TokenRequest": TokenRequest("refresh_token", params, creds, "192.0.2.1"),
        "IssuedToken": IssuedToken(
            S["token"], 60, "read", 0, "j", "abc", "abc", "Bearer", S["refresh"]
        ),
        "Client": Client("abc", "n", ("read",), secrets=(ClientSecret(H["secret"], 0.0),)),
        "ClientSecret": ClientSecret(H["secret"], 0.0),
        "ApiKey": ApiKey("ak_1", "k", H["key"], 0.0),
        "User": User("u1", "a@shop.test", "$argon2id$" + S["secret"], "admin", "m1", 0.0),
        "Session": Session(H["token"], "u1", 0.0, 0.0, 1.0),
        "AuthorizationCode": AuthorizationCode(
            H["code"], "app", "https://a/cb", True, None, "m1", "u1", "read", "f1", 0.0, 1.0
        ),
        "RefreshTokenRecord": _refresh_record(),
        "AccessTokenRecord": AccessTokenRecord("j", "abc", "abc", "read", 0.0, 1.0, H["token"]),
        "SigningKeyRecord": SigningKeyRecord("k1", "ES256", S["key"].encode(), "{}", 0.0),
        "Reveal": Reveal(H["code"], H["token"], S["secret"].encode(), 0.0, 1.0),
        "panel reveal Secret": Secret(
            "t", "Client ID", "abc", "Secret", S["secret"], "/", "b", "s"
        ),
        "Rotation": Rotation(H["code"], _refresh_record(), 0.0, None),
        "Fingerprints": Fingerprints(S["key"].encode()),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_reprs_show_no_credential(name: str) -> None:
    model = _models()[name]
    shown = repr(model) + str(model)
    held = [k for k, v in {**S, **{f"hash of {k}": v for k, v in H.items()}}.items() if v in shown]
    assert held == [], f"{name} shows {held}: {shown}"


def test_reprs_still_show_identifiers() -> None:
    models = _models()
    assert "abc" in repr(models["ClientCredentials"]) and "abc" in repr(models["Client"])
    assert "refresh_token" in repr(models["TokenRequest"])  # the names of the parameters
    assert "43 characters" in repr(models["ClientCredentials, a secret as client_id"])


@pytest.mark.redis
@skip_without_redis
async def test_failure_counter_keys_in_redis_hold_no_presented_value(
    tmp_path: Path, clock: FrozenClock
) -> None:
    import redis.asyncio as aioredis

    stray, typed = secret_shaped(), secret_shaped()
    async with redis_apps(tmp_path, clock, 1) as [app]:
        r = await app.h.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(stray, "x")
        )
        assert r.status_code == 401
        page = await app.h.http.get("/login")
        form = {"csrf_token": csrf_of(page.text), "email": typed, "password": "wrong password"}
        assert (await app.h.http.post("/login", data=form)).status_code == 400
        prefix = app.h.ctx.settings.redis_prefix
        assert REDIS_URL is not None
        redis = aioredis.from_url(REDIS_URL)
        try:
            keys = [k.decode() async for k in redis.scan_iter(match=prefix + "*")]
        finally:
            await redis.aclose()
    assert len(keys) == 4  # client and address, account and address
    assert not [k for k in keys if stray in k or typed.lower() in k]
