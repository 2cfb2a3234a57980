"""No client secret, access token, apikey or Authorization header value ever reaches a log
line (JSON or text), nor the ``repr`` of the objects that carry them."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET_KEY, make_settings, running_app
from tokensmith.core.admin import create_api_key
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import hash_secret
from tokensmith.core.models import ApiKey, Client, ClientSecret, IssuedToken
from tokensmith.core.requests import ClientCredentials, TokenRequest
from tokensmith.logs import JsonFormatter, configure_logging
from tokensmith.settings import Settings

TBC = "/v2/tpay/access-token"
WRONG_SECRET = "Wr0ngSecretThatLooksReal_" + "q" * 18
WRONG_APIKEY = "Wr0ngApiKeyThatLooksReal_" + "z" * 18


@pytest.fixture(params=["json", "text"])
def captured(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Everything logged, by the ``tokensmith`` loggers as configured for production (JSON or
    text, level DEBUG) and by any other logger through the root."""
    ts_logger, root = logging.getLogger("tokensmith"), logging.getLogger()
    saved = (ts_logger.handlers[:], ts_logger.level, ts_logger.propagate, root.level)
    buf = io.StringIO()
    configure_logging(request.param == "json", "DEBUG")
    for handler in ts_logger.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buf)
    everything_else = logging.StreamHandler(buf)
    everything_else.setFormatter(JsonFormatter())
    root.addHandler(everything_else)
    root.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.removeHandler(everything_else)
        ts_logger.handlers[:], ts_logger.level, ts_logger.propagate, _ = saved
        root.setLevel(saved[3])


async def test_issuance_refusal_introspection_and_revocation_log_no_secret(
    captured: io.StringIO, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'logs.db'}")
    async with running_app(settings, clock) as h:
        client, secret = await h.client(scope="read write introspection")
        opaque, opaque_secret = await h.client(token_format="opaque")
        _, apikey = await create_api_key(h.ctx.store, clock, h.ctx.rand, "log test")
        basic = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        wrong_basic = (
            "Basic " + base64.b64encode(f"{client.client_id}:{WRONG_SECRET}".encode()).decode()
        )
        cc = {"grant_type": "client_credentials"}
        issued = [
            await h.http.post("/oauth/token", data=cc, headers={"authorization": basic}),
            await h.http.post(
                "/o/token/",
                data={**cc, "client_id": opaque.client_id, "client_secret": opaque_secret},
            ),
            await h.http.post(
                "/oauth/auth", data={"client_id": client.client_id, "client_secret": secret}
            ),
            await h.http.post(
                TBC,
                data={"client_id": client.client_id, "client_secret": secret},
                headers={"apikey": apikey},
            ),
        ]
        assert [r.status_code for r in issued] == [200] * 4
        tokens = [r.json()["access_token"] for r in issued]
        refused = [
            await h.http.post("/oauth/token", data=cc, headers={"authorization": wrong_basic}),
            await h.http.post(
                "/o/token/",
                data={**cc, "client_id": client.client_id, "client_secret": WRONG_SECRET},
            ),
            await h.http.post(
                TBC,
                data={"client_id": client.client_id, "client_secret": secret},
                headers={"apikey": WRONG_APIKEY},
            ),
            await h.http.post(
                "/oauth/introspect",
                data={"token": tokens[0]},
                headers={"authorization": wrong_basic},
            ),
        ]
        assert [r.status_code for r in refused] == [401, 401, 401, 401]
        for token in tokens:
            r = await h.http.post(
                "/oauth/introspect", data={"token": token}, headers={"authorization": basic}
            )
            assert r.status_code == 200
        r = await h.http.post(
            "/oauth/revoke", data={"token": tokens[1]}, auth=(opaque.client_id, opaque_secret)
        )
        assert r.status_code == 200

    logged = captured.getvalue()
    # the capture works: the audit trail is there, with the client id and no secret
    assert "token issued" in logged and "token refused" in logged
    assert client.client_id in logged
    forbidden = {
        "client secret": secret,
        "second client secret": opaque_secret,
        "wrong secret": WRONG_SECRET,
        "apikey": apikey,
        "wrong apikey": WRONG_APIKEY,
        "Authorization value": basic.split(" ", 1)[1],
        "wrong Authorization value": wrong_basic.split(" ", 1)[1],
        "key-sealing secret": SECRET_KEY,
        **{f"access token {i}": t for i, t in enumerate(tokens)},
        **{f"JWT signature {i}": t.rsplit(".", 1)[1] for i, t in enumerate(tokens) if "." in t},
    }
    leaked = [name for name, value in forbidden.items() if value in logged]
    assert not leaked, f"logged: {leaked}"


def test_reprs_hold_no_secret() -> None:
    secret, token, refresh = (
        "s3cr3t-Hq4Wz8Lk2Rt6Vb9Mx1Dc5Nf3Gs7Jp0Yab",
        "t0ken-" + "b" * 37,
        "r3fresh-" + "c" * 35,
    )
    client = Client(
        client_id="abc",
        name="n",
        scopes=("read",),
        secrets=(ClientSecret(hash_secret(secret), 0.0),),
    )
    creds = ClientCredentials("abc", secret, "client_secret_basic")
    issued = IssuedToken(
        access_token=token,
        expires_in=60,
        scope="read",
        issued_at=0,
        jti="j",
        client_id="abc",
        subject="abc",
        refresh_token=refresh,
    )
    settings = Settings(
        secret_key=secret,
        database_url="postgresql://user:dbpass-xyz@db/x",
        redis_url="redis://:redispass-xyz@r:6379/0",
    )
    apikey = ApiKey(key_id="ak_1", name="k", key_hash=hash_secret(secret), created_at=0.0)
    shown = {
        "Client": repr(client),
        "ClientCredentials": repr(creds),
        "TokenRequest": repr(TokenRequest("client_credentials", {}, creds)),
        "IssuedToken": repr(issued),
        "Settings": repr(settings) + str(settings),
        "ApiKey": repr(apikey),
    }
    assert "abc" in shown["Client"] and "abc" in shown["ClientCredentials"]  # reprs do show ids
    for name, text in shown.items():
        for value in (secret, hash_secret(secret), token, refresh, "dbpass-xyz", "redispass-xyz"):
            assert value not in text, f"{name} repr shows {value!r}"
