"""JWT client authentication in the token client (RFC 7523 §2.2, §3): ``private_key_jwt``
against the real server in process (with DPoP and its nonce), a fresh assertion for every
request (retries included), and the key never shown."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.conftest import Harness, make_settings, running_app

from tokensmith.client import (
    AsyncTokenClient,
    ClientSecretJwt,
    InvalidClient,
    PrivateKeyJwt,
    TokenClient,
)
from tokensmith.core.clock import FrozenClock

ISSUER = "https://auth.example.test"
TOKEN_URL = ISSUER + "/oauth/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def jwks_of(key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return json.dumps({"keys": [public | {"kid": kid}]})


@pytest.fixture
def frozen() -> FrozenClock:
    return FrozenClock(float(int(time.time())))


async def serve(tmp_path: Path, clock: FrozenClock, **settings: Any) -> AsyncIterator[Harness]:
    db = f"sqlite:///{tmp_path / 'app.db'}"
    async with running_app(make_settings(tmp_path, db, **settings), clock) as h:
        yield h


@pytest.fixture
async def h(tmp_path: Path, frozen: FrozenClock) -> AsyncIterator[Harness]:
    async for harness in serve(tmp_path, frozen):
        yield harness


@pytest.fixture
async def h_nonce(tmp_path: Path, frozen: FrozenClock) -> AsyncIterator[Harness]:
    async for harness in serve(tmp_path, frozen, dpop_nonce=True):
        yield harness


async def keyed_client(h: Harness, key: ec.EllipticCurvePrivateKey, kid: str = "k1") -> str:
    client, _ = await h.client(jwks=jwks_of(key, kid))
    return client.client_id


# -- against the server ---------------------------------------------------------------------


async def test_a_client_with_a_pem_key_gets_a_token_from_the_server(h: Harness) -> None:
    key = new_key()
    client_id = await keyed_client(h, key)
    atc = AsyncTokenClient(
        TOKEN_URL, client_id, private_key=pem_of(key), key_id="k1", http_client=h.http,
        clock=h.clock.now,
    )  # fmt: skip
    assert atc.auth_method == "private_key_jwt"
    token = await atc.get_token()
    assert token.token_type == "Bearer"
    assert (await atc.refresh()).access_token != token.access_token  # a second, new assertion


async def test_the_issuer_as_audience_is_accepted(h: Harness) -> None:
    key = new_key()
    client_id = await keyed_client(h, key)
    signer = PrivateKeyJwt(key, key_id="k1", audience=ISSUER)
    atc = AsyncTokenClient(
        TOKEN_URL, client_id, private_key=signer, http_client=h.http, clock=h.clock.now
    )
    assert (await atc.get_token()).access_token


async def test_with_dpop_and_a_server_nonce_the_retry_carries_a_new_assertion(
    h_nonce: Harness,
) -> None:
    """The server asks for a DPoP nonce first (RFC 9449 §8): the retry would be refused as
    a replay if it reused the assertion."""
    key = new_key()
    client_id = await keyed_client(h_nonce, key)
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        form = parse_qs(request.content.decode())
        sent.extend(form.get("client_assertion", []))

    h_nonce.http.event_hooks["request"].append(record)
    atc = AsyncTokenClient(
        TOKEN_URL, client_id, private_key=key, key_id="k1", dpop=True, http_client=h_nonce.http,
        clock=h_nonce.clock.now,
    )  # fmt: skip
    token = await atc.get_token()
    assert token.is_dpop
    assert len(sent) == 2 and sent[0] != sent[1]


async def test_discovery_with_a_private_key_chooses_private_key_jwt(h: Harness) -> None:
    key = new_key()
    client_id = await keyed_client(h, key)
    atc = await AsyncTokenClient.from_issuer(
        ISSUER, client_id, private_key=key, key_id="k1", http_client=h.http, clock=h.clock.now
    )
    assert atc.auth_method == "private_key_jwt" and atc.token_url == TOKEN_URL
    assert (await atc.get_token()).access_token


async def test_a_key_the_server_does_not_know_is_invalid_client(h: Harness) -> None:
    client_id = await keyed_client(h, new_key())
    atc = AsyncTokenClient(
        TOKEN_URL, client_id, private_key=new_key(), key_id="k1", http_client=h.http,
        clock=h.clock.now,
    )  # fmt: skip
    with pytest.raises(InvalidClient):
        await atc.get_token()


# -- what is sent ---------------------------------------------------------------------------


class Recorder:
    """A token endpoint that answers 500 ``fail`` times, then a token; keeps every form."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.forms: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append(form)
        if len(self.forms) <= self.fail:
            return httpx.Response(500)
        return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer"})


def sync_client(recorder: Recorder, **kwargs: Any) -> TokenClient:
    kwargs.setdefault("clock", lambda: 1_700_000_000.0)
    return TokenClient(
        TOKEN_URL,
        "c_1",
        http_client=httpx.Client(transport=httpx.MockTransport(recorder)),
        sleep=lambda _: None,
        **kwargs,
    )


def test_the_assertion_follows_rfc_7523_section_3() -> None:
    key = new_key()
    recorder = Recorder()
    sync_client(recorder, private_key=key, key_id="k1").get_token()
    form = recorder.forms[0]
    assert form["client_assertion_type"] == JWT_BEARER and form["client_id"] == "c_1"
    assert "client_secret" not in form
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header == {"alg": "ES256", "kid": "k1", "typ": "JWT"}
    claims = jwt.decode(
        form["client_assertion"], key.public_key(), algorithms=["ES256"], audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims["iss"] == claims["sub"] == "c_1"
    assert claims["iat"] == 1_700_000_000 and 0 < claims["exp"] - claims["iat"] <= 60
    assert len(claims["jti"]) >= 16


def test_every_retry_carries_a_new_assertion() -> None:
    recorder = Recorder(fail=2)
    sync_client(recorder, private_key=new_key()).get_token()
    assertions = [f["client_assertion"] for f in recorder.forms]
    jtis = {jwt.decode(a, options={"verify_signature": False})["jti"] for a in assertions}
    assert len(assertions) == 3 and len(jtis) == 3


def test_a_private_jwk_brings_its_kid_and_alg() -> None:
    key = new_key()
    private_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)) | {"kid": "from-jwk"}
    signer = PrivateKeyJwt(json.dumps(private_jwk))
    assert signer.key_id == "from-jwk" and signer.alg == "ES256"


def test_client_secret_jwt_signs_with_the_secret() -> None:
    recorder = Recorder()
    sync_client(recorder, client_secret="s" * 43, auth_method="client_secret_jwt").get_token()
    assertion = recorder.forms[0]["client_assertion"]
    assert jwt.get_unverified_header(assertion)["alg"] == "HS256"
    claims = jwt.decode(
        assertion, "s" * 43, algorithms=["HS256"], audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )  # fmt: skip
    assert claims["iss"] == "c_1" and "client_secret" not in recorder.forms[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auth_method": "private_key_jwt"}, "needs a private_key"),
        ({"client_secret": "s", "auth_method": "client_secret_jwt", "signing_alg": "none"}, "HS"),
        ({"auth_method": "client_secret_jwt"}, "needs a client_secret"),
        ({"private_key": new_key(), "auth_method": "client_secret_basic"}, "private_key_jwt"),
        ({"private_key": new_key(), "signing_alg": "PS256"}, "does not fit"),
        ({"private_key": new_key(), "signing_alg": "HS256"}, "unsupported"),
        ({"private_key": new_key(), "dialect": "tpay"}, "oauth dialect"),
        ({"private_key": b"not a pem"}, None),
    ],
    ids=[
        "no key",
        "alg none",
        "no secret",
        "key with basic",
        "alg unfit",
        "hmac with a key",
        "tpay dialect",
        "bad pem",
    ],
)
def test_unusable_configurations_are_refused(kwargs: dict[str, Any], message: str | None) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        TokenClient(TOKEN_URL, "c_1", **kwargs)


def test_an_assertion_lives_at_most_sixty_seconds() -> None:
    with pytest.raises(ValueError, match="60"):
        PrivateKeyJwt(new_key(), lifetime=120)
    with pytest.raises(ValueError, match="60"):
        ClientSecretJwt("s", lifetime=61)


def test_the_key_is_never_shown_or_logged(caplog: pytest.LogCaptureFixture) -> None:
    key = new_key()
    pem = pem_of(key).decode()
    private_d = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))["d"]
    recorder = Recorder(fail=10)
    tc = sync_client(recorder, private_key=pem, key_id="k1")
    caplog.set_level(logging.DEBUG, logger="tokensmith.client")
    with pytest.raises(Exception) as raised:
        tc.get_token()
    secret_hmac = ClientSecretJwt("the-secret-value")
    shown = " ".join(
        [repr(tc), str(tc), repr(tc._signer), str(raised.value), caplog.text, repr(secret_hmac)]
    )
    assert "k1" in repr(tc._signer)
    for leak in ("PRIVATE KEY", pem[40:80], private_d, "the-secret-value"):
        assert leak not in shown
