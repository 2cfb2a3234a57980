"""private_key_jwt (RFC 7523 §2.2) at every endpoint that authenticates clients, in
process: the token endpoint, introspection, revocation and PAR; refusals as 401
``invalid_client`` counted like wrong secrets; the metadata (RFC 8414); a ``jti`` refused
by a second instance sharing the database."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.assertions import ISSUER, TOKEN_URL, ClientKey, assertion_form
from tests.conftest import REDIS_URL, Harness, make_settings, running_app
from tests.partner import make_partner
from tokensmith.core.clock import FrozenClock
from tokensmith.core.models import Client

KEY = ClientKey.generate("ES256")
OTHER = ClientKey.generate("ES256", kid=KEY.kid)


async def keyed(h: Harness, **spec: Any) -> Client:
    spec.setdefault("jwks", KEY.jwks())
    client, secret = await h.client(**spec)
    assert secret == "" and client.auth_methods == ("private_key_jwt",)
    return client


async def token(h: Harness, assertion: str, **form: str) -> httpx.Response:
    form.setdefault("grant_type", "client_credentials")
    return await h.http.post("/oauth/token", data=assertion_form(assertion, **form))


def refused(r: httpx.Response, words: str = "") -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == "invalid_client" and words in body.get("error_description", "")


async def test_a_client_authenticates_with_its_key_at_the_token_endpoint(h: Harness) -> None:
    c = await keyed(h)
    r = await token(h, KEY.assertion(c.client_id, h.clock.now()))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer"


async def test_the_client_id_may_be_sent_and_must_match(h: Harness) -> None:
    c = await keyed(h)
    r = await token(h, KEY.assertion(c.client_id, h.clock.now()), client_id=c.client_id)
    assert r.status_code == 200, r.text
    other = await keyed(h, name="other")
    r = await token(h, KEY.assertion(c.client_id, h.clock.now()), client_id=other.client_id)
    refused(r, "iss must be the client_id")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda c, n: OTHER.assertion(c, n), "signature does not verify"),
        (lambda c, n: KEY.assertion(c, n, aud="https://elsewhere.test"), "aud"),
        (lambda c, n: KEY.assertion(c, n - 600), "expired"),
        (lambda c, n: KEY.assertion(c, n, lifetime=3600), "at most 300"),
        (lambda c, n: KEY.assertion(c, n, drop=("jti",)), "jti"),
    ],
    ids=["another key", "wrong aud", "expired", "long-lived", "no jti"],
)
async def test_a_bad_assertion_is_invalid_client(h: Harness, make: Any, words: str) -> None:
    c = await keyed(h)
    refused(await token(h, make(c.client_id, h.clock.now())), words)


async def test_a_replayed_assertion_is_refused(h: Harness) -> None:
    c = await keyed(h)
    assertion = KEY.assertion(c.client_id, h.clock.now())
    assert (await token(h, assertion)).status_code == 200
    refused(await token(h, assertion), "used before")


async def test_client_secret_jwt_is_refused_with_a_clear_description(h: Harness) -> None:
    import jwt

    c = await keyed(h)
    now = h.clock.now()
    claims = {"iss": c.client_id, "sub": c.client_id, "aud": TOKEN_URL, "exp": now + 60}
    hs = jwt.encode(claims | {"jti": "x"}, "s" * 40, algorithm="HS256")
    refused(await token(h, hs), "(client_secret_jwt) is not accepted from this client")


async def test_an_unknown_client_gets_no_detail(h: Harness) -> None:
    r = await token(h, KEY.assertion("c_nobody", h.clock.now()))
    refused(r)
    assert r.json()["error_description"] == "client authentication failed"


async def test_a_secret_client_may_not_send_an_assertion(h: Harness) -> None:
    c, _ = await h.client()
    refused(await token(h, KEY.assertion(c.client_id, h.clock.now())), "failed")


async def test_a_keyed_client_has_no_secret_to_send(h: Harness) -> None:
    c = await keyed(h)
    refused(await h.token(c.client_id, "anything"))


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"client_assertion": "a.b.c"}, 400),
        ({"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, 400),
        ({"client_assertion_type": "urn:other", "client_assertion": "a.b.c"}, 401),
        (
            {
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "a.b.c",
            },
            401,
        ),
    ],
    ids=["no type", "no assertion", "other type", "unreadable"],
)
async def test_malformed_assertion_parameters(
    h: Harness, form: dict[str, str], status: int
) -> None:
    r = await h.http.post("/oauth/token", data={"grant_type": "client_credentials", **form})
    assert r.status_code == status, r.text


async def test_an_assertion_and_a_secret_together_are_refused(h: Harness) -> None:
    c = await keyed(h)
    form = assertion_form(
        KEY.assertion(c.client_id, h.clock.now()), grant_type="client_credentials"
    )
    r = await h.http.post("/oauth/token", data=form, auth=(c.client_id, "x"))
    assert r.status_code == 400 and "one client authentication" in r.text


async def test_failures_count_toward_the_limits(h: Harness) -> None:
    c = await keyed(h)
    codes = [
        (await token(h, OTHER.assertion(c.client_id, h.clock.now()))).status_code for _ in range(12)
    ]
    assert codes[:10] == [401] * 10 and codes[-1] == 429
    # throttled: even a good assertion waits
    assert (await token(h, KEY.assertion(c.client_id, h.clock.now()))).status_code == 429


async def test_introspection_and_revocation_accept_assertions(h: Harness) -> None:
    c = await keyed(h)
    issued = (await token(h, KEY.assertion(c.client_id, h.clock.now()))).json()["access_token"]
    now = h.clock.now()
    for aud in (ISSUER + "/oauth/introspect", TOKEN_URL, ISSUER):
        form = assertion_form(KEY.assertion(c.client_id, now, aud=aud), token=issued)
        r = await h.http.post("/oauth/introspect", data=form)
        assert r.status_code == 200 and r.json()["active"] is True, r.text
    form = assertion_form(
        KEY.assertion(c.client_id, now, aud=ISSUER + "/oauth/revoke"), token=issued
    )
    assert (await h.http.post("/oauth/revoke", data=form)).status_code == 200
    form = assertion_form(OTHER.assertion(c.client_id, now), token=issued)
    refused(await h.http.post("/oauth/introspect", data=form), "signature")


async def test_a_pushed_request_authenticates_with_an_assertion(h: Harness) -> None:
    p = await make_partner(h, jwks=KEY.jwks())
    assertion = KEY.assertion(p.app.client_id, h.clock.now(), aud=ISSUER + "/oauth/par")
    r = await h.http.post("/oauth/par", data=p.params() | assertion_form(assertion))
    assert r.status_code == 201, r.text
    bad = OTHER.assertion(p.app.client_id, h.clock.now(), aud=ISSUER)
    refused(await h.http.post("/oauth/par", data=p.params() | assertion_form(bad)))


async def test_the_metadata_advertises_private_key_jwt(h: Harness) -> None:
    meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
    for endpoint in ("token", "introspection", "revocation"):
        assert "private_key_jwt" in meta[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "client_secret_jwt" not in meta[f"{endpoint}_endpoint_auth_methods_supported"]
        algs = meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert algs == ["ES256", "PS256", "EdDSA"]


async def test_the_algorithms_are_a_setting(tmp_path: Path, clock: FrozenClock) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'a.db'}", client_assertion_signing_algs="PS256"
    )
    async with running_app(settings, clock) as h:
        c = await keyed(h)
        refused(await token(h, KEY.assertion(c.client_id, clock.now())), "alg must be one of PS256")
        meta = (await h.http.get("/.well-known/oauth-authorization-server")).json()
        assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["PS256"]


async def test_a_jti_is_refused_by_another_instance_sharing_the_database(
    db_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_settings(tmp_path, db_url)
    async with running_app(settings, clock) as one, running_app(settings, clock) as two:
        c = await keyed(one)
        assertion = KEY.assertion(c.client_id, clock.now())
        assert (await token(one, assertion)).status_code == 200
        refused(await token(two, assertion), "used before")


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="TOKENSMITH_TEST_REDIS_URL not set")
async def test_a_jti_is_refused_by_another_instance_sharing_a_redis(
    tmp_path: Path, clock: FrozenClock
) -> None:
    prefix = f"tokensmith-test:{secrets.token_hex(6)}:"
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    settings = make_settings(tmp_path, db, redis_url=REDIS_URL, redis_prefix=prefix)
    async with running_app(settings, clock) as one, running_app(settings, clock) as two:
        c = await keyed(one)
        assertion = KEY.assertion(c.client_id, clock.now())
        assert (await token(one, assertion)).status_code == 200
        refused(await token(two, assertion), "used before")
        keys = [k async for k in one.ctx.redis.scan_iter(match=prefix + "replay:pkjwt:*")]
        assert len(keys) == 1
        await one.ctx.redis.delete(*keys)


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def test_a_refused_assertion_is_kept_as_a_failed_authentication(h: Harness) -> None:
    """The panel's list of failed authentications shows assertion failures by reason."""
    c = await keyed(h)
    assertion = KEY.assertion(c.client_id, h.clock.now())
    await token(h, assertion)
    await token(h, assertion)  # replayed
    await token(h, OTHER.assertion(c.client_id, h.clock.now()))
    failures = h.ctx.observer.recorder.drain().failures
    assert [f.reason for f in failures] == ["assertion_replay", "bad_signature"]
    assert all(f.client_id == c.client_id for f in failures)
