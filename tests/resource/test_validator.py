"""TokenValidator: RFC 9068 JWTs checked locally, opaque tokens by RFC 7662 introspection."""

from __future__ import annotations

import asyncio
import base64
import json

import jwt
import pytest
from resource_fakes import (
    AUDIENCE,
    ISSUER,
    RS_CLIENT_ID,
    RS_SECRET,
    FakeIssuer,
    b64,
    make_key,
    mint,
    unsigned,
)

from tokensmith.resource import (
    AccessToken,
    InvalidToken,
    SyncTokenValidator,
    TokenValidator,
    ValidationUnavailable,
)

NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys():
    return {alg: make_key(alg) for alg in ("ES256", "RS256", "EdDSA")}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(keys, clock) -> FakeIssuer:
    return FakeIssuer(list(keys.values()), clock=clock)


@pytest.fixture
def validator(issuer, clock) -> TokenValidator:
    return TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.async_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
    )


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
async def test_valid_rfc9068_token_is_accepted(validator, keys, alg):
    token = await validator.validate(mint(keys[alg], NOW))
    assert isinstance(token, AccessToken)
    assert token.sub == "user-42" and token.client_id == "merchant-7"
    assert token.scopes == {"read", "write"} and token.has_scopes("read")
    assert token.exp == NOW + 300 and token.kind == "jwt"
    assert token.claims["aud"] == AUDIENCE


async def test_audience_list_and_application_typ_are_accepted(validator, keys):
    token = mint(keys["ES256"], NOW, header={"typ": "application/at+jwt"}, aud=["other", AUDIENCE])
    assert (await validator.validate(token)).sub == "user-42"


async def test_small_clock_skew_is_tolerated(validator, keys):
    await validator.validate(mint(keys["ES256"], NOW, exp=int(NOW) - 5))
    await validator.validate(mint(keys["ES256"], NOW, nbf=int(NOW) + 5, iat=int(NOW) + 5))


def _tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["scope"] = "read write admin"
    return f"{head}.{b64(json.dumps(data).encode())}.{sig}"


def _hs256_with_public_key(keys) -> str:
    # Algorithm confusion: HMAC keyed with the RSA public key's PEM.
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": keys["RS256"].kid}).encode())
    body = b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 300}).encode())
    return f"{header}.{body}.{b64(b'x' * 32)}"


REJECTIONS = [
    ("wrong typ", lambda k: mint(k["ES256"], NOW, header={"typ": "JWT"}), "typ"),
    ("missing typ", lambda k: mint(k["ES256"], NOW, header={"typ": None}), "typ"),
    ("wrong issuer", lambda k: mint(k["ES256"], NOW, iss="https://evil.test"), "issuer"),
    ("wrong audience", lambda k: mint(k["ES256"], NOW, aud="other-api"), "audience"),
    ("expired", lambda k: mint(k["RS256"], NOW, exp=int(NOW) - 60), "expired"),
    ("nbf in future", lambda k: mint(k["EdDSA"], NOW, nbf=int(NOW) + 120), "not yet valid"),
    ("iat in future", lambda k: mint(k["EdDSA"], NOW, iat=int(NOW) + 120), "future"),
    ("missing jti", lambda k: mint(k["ES256"], NOW, jti=None), "missing claim jti"),
    ("missing exp", lambda k: mint(k["ES256"], NOW, exp=None), "missing claim exp"),
    ("alg none", lambda k: unsigned(NOW), "algorithm"),
    ("HS256 confusion", _hs256_with_public_key, "algorithm"),
    ("bad signature", lambda k: _tamper(mint(k["ES256"], NOW)), "signature"),
    (
        "signature of another key",
        lambda k: (
            mint(k["ES256"], NOW, header={"kid": make_key("ES256").kid}).rsplit(".", 1)[0]
            + "."
            + mint(k["ES256"], NOW).rsplit(".", 1)[1]
        ),
        "key",
    ),
    (
        "alg does not match kid's key",
        lambda k: jwt.encode(
            {"iss": ISSUER},
            k["ES256"].private,
            algorithm="ES256",
            headers={"typ": "at+jwt", "kid": k["RS256"].kid},
        ),
        "does not match",
    ),
    ("garbage 3 parts", lambda k: "a.b.c", "malformed"),
    ("garbage json", lambda k: f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'x')}", "malformed"),
    ("non-ascii", lambda k: "é.é.é", "malformed"),
    ("crit header", lambda k: mint(k["ES256"], NOW, header={"crit": ["exp"]}), "critical"),
]


@pytest.mark.parametrize(("case", "make", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
async def test_bad_tokens_are_rejected(validator, keys, case, make, reason):
    with pytest.raises(InvalidToken) as info:
        await validator.validate(make(keys))
    assert reason in info.value.description
    assert info.value.status_code == 401


async def test_unknown_kid_triggers_one_rate_limited_jwks_refetch(validator, issuer, keys, clock):
    await validator.validate(mint(keys["ES256"], NOW))
    assert issuer.jwks_fetches == 1
    rotated = make_key("ES256")
    issuer.keys.append(rotated)
    clock.now += 31
    # many concurrent requests with the new kid: exactly one refetch, all accepted
    results = await asyncio.gather(*(validator.validate(mint(rotated, NOW)) for _ in range(50)))
    assert len(results) == 50 and issuer.jwks_fetches == 2
    # another unknown kid right away: no refetch (at most once per 30 s), rejected
    stranger = make_key("RS256")
    issuer.keys.append(stranger)
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await validator.validate(mint(stranger, clock.now))
    assert issuer.jwks_fetches == 2
    clock.now += 31
    assert (await validator.validate(mint(stranger, clock.now))).sub == "user-42"
    assert issuer.jwks_fetches == 3


async def test_key_rotated_in_soon_after_a_fetch_is_fetched_at_once(validator, issuer, keys, clock):
    """OpenID Connect Core §10.1.1: the issuer may sign with a new key at once.  A kid no
    fetch has looked for yet waits only a second, not the whole refetch interval; a kid
    the latest fetch did not have waits the interval (junk cannot force fetches)."""
    await validator.validate(mint(keys["ES256"], NOW))
    assert issuer.jwks_fetches == 1
    clock.now += 2
    rotated = make_key("ES256")
    issuer.keys.append(rotated)
    assert (await validator.validate(mint(rotated, clock.now))).sub == "user-42"
    assert issuer.jwks_fetches == 2
    junk = make_key("ES256")  # never published
    clock.now += 2
    for _ in range(3):
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await validator.validate(mint(junk, clock.now))
        clock.now += 2
    assert issuer.jwks_fetches == 3  # one look for the junk kid, then the interval applies
    clock.now += 30
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await validator.validate(mint(junk, clock.now))
    assert issuer.jwks_fetches == 4


def test_sync_validator_fetches_a_freshly_rotated_kid(issuer, keys, clock):
    v = SyncTokenValidator(ISSUER, AUDIENCE, http_client=issuer.sync_client(), clock=clock)
    v.validate(mint(keys["RS256"], NOW))
    clock.now += 2
    rotated = make_key("RS256")
    issuer.keys.append(rotated)
    assert v.validate(mint(rotated, clock.now)).sub == "user-42"
    assert issuer.jwks_fetches == 2


async def test_removed_key_stops_validating_after_jwks_max_age(issuer, keys, clock):
    v = TokenValidator(
        ISSUER, AUDIENCE, http_client=issuer.async_client(), clock=clock, jwks_max_age=600
    )
    await v.validate(mint(keys["RS256"], NOW))
    issuer.keys = [k for k in issuer.keys if k.alg != "RS256"]
    clock.now += 601
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await v.validate(mint(keys["RS256"], clock.now))
    assert issuer.jwks_fetches == 2


async def test_jwks_outage_at_start_is_unavailable_not_invalid(issuer, keys, clock):
    issuer.jwks_status = 503
    v = TokenValidator(ISSUER, AUDIENCE, http_client=issuer.async_client(), clock=clock)
    with pytest.raises(ValidationUnavailable) as info:
        await v.validate(mint(keys["ES256"], NOW))
    assert info.value.status_code == 503
    with pytest.raises(ValidationUnavailable):  # still no keys, no hammering either
        await v.validate(mint(keys["ES256"], NOW))
    assert issuer.jwks_fetches == 1


async def test_jwks_outage_later_keeps_the_known_keys(issuer, keys, clock):
    v = TokenValidator(
        ISSUER, AUDIENCE, http_client=issuer.async_client(), clock=clock, jwks_max_age=60
    )
    await v.validate(mint(keys["ES256"], NOW))
    issuer.jwks_status = 500
    clock.now += 120
    assert (await v.validate(mint(keys["ES256"], clock.now))).sub == "user-42"


async def test_explicit_jwks_uri_skips_discovery(issuer, keys, clock):
    v = TokenValidator(
        ISSUER,
        AUDIENCE,
        jwks_uri=ISSUER + "/.well-known/jwks.json",
        introspection_endpoint=ISSUER + "/o/introspect/",
        http_client=issuer.async_client(),
        clock=clock,
    )
    await v.validate(mint(keys["EdDSA"], NOW))
    assert issuer.metadata_fetches == 0


async def test_validator_rejects_symmetric_algorithms_at_construction():
    with pytest.raises(ValueError):
        TokenValidator(ISSUER, AUDIENCE, algorithms=["HS256"])
    with pytest.raises(ValueError):
        TokenValidator(ISSUER, [])


# -- introspection (RFC 7662) ----------------------------------------------------------------
async def test_opaque_token_is_introspected_with_basic_auth_and_cached_until_exp(
    validator, issuer, clock
):
    issuer.introspection["opaque-1"] = {
        "active": True,
        "token_type": "Bearer",
        "scope": "read",
        "client_id": "merchant-7",
        "sub": "user-1",
        "exp": NOW + 30,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    token = await validator.validate("opaque-1")
    assert token.kind == "opaque" and token.scopes == {"read"} and token.sub == "user-1"
    request = issuer.introspections[0]
    assert request.headers["authorization"].startswith("Basic ")
    assert b"token=opaque-1" in request.content
    for _ in range(5):
        await validator.validate("opaque-1")
    assert len(issuer.introspections) == 1
    clock.now += 31  # the cached answer never outlives the token's exp
    issuer.introspection["opaque-1"]["active"] = False
    with pytest.raises(InvalidToken):
        await validator.validate("opaque-1")
    assert len(issuer.introspections) == 2


async def test_inactive_or_foreign_opaque_tokens_are_rejected(validator, issuer):
    issuer.introspection["other-aud"] = {"active": True, "token_type": "Bearer", "aud": "elsewhere"}
    for token in ("never-issued", "other-aud"):
        with pytest.raises(InvalidToken, match="not active"):
            await validator.validate(token)


#: RFC 7662 §2.2 ``token_type`` of an active answer, and whether the guard takes the token.
TOKEN_TYPES = [
    ("Bearer", {"token_type": "Bearer"}, True),
    ("bearer, any case", {"token_type": "bearer"}, True),
    ("access_token (RFC 7009 hint)", {"token_type": "access_token"}, True),
    ("refresh_token", {"token_type": "refresh_token"}, False),
    ("Refresh_Token, any case", {"token_type": "Refresh_Token"}, False),
    ("another type", {"token_type": "N_A"}, False),
    ("not a string", {"token_type": ["Bearer"]}, False),
    ("no token_type", {}, False),
    (
        "Bearer, but token_use refresh_token",
        {"token_type": "Bearer", "token_use": "refresh_token"},
        False,
    ),
    ("Bearer, token_use access_token", {"token_type": "Bearer", "token_use": "access_token"}, True),
]


@pytest.mark.parametrize(
    ("case", "fields", "accepted"), TOKEN_TYPES, ids=[c[0] for c in TOKEN_TYPES]
)
async def test_only_access_tokens_pass_introspection(keys, clock, issuer, case, fields, accepted):
    issuer.introspection["tok"] = {"active": True, "scope": "read", "iss": ISSUER} | fields
    sync = SyncTokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.sync_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
    )
    validator = TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.async_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
    )

    async def validate_async() -> AccessToken:
        return await validator.validate("tok")

    async def validate_sync() -> AccessToken:
        return await asyncio.to_thread(sync.validate, "tok")

    for validate in (validate_async, validate_sync):
        for _ in range(2):  # the second answer comes from the cache
            if accepted:
                assert (await validate()).scopes == {"read"}
            else:
                with pytest.raises(InvalidToken, match="not an access token"):
                    await validate()
    assert len(issuer.introspections) == 2  # once per validator


async def test_untyped_answers_pass_when_the_issuer_answers_for_access_tokens_only(clock, issuer):
    issuer.introspection["tok"] = {"active": True, "scope": "read"}
    issuer.introspection["rt"] = {"active": True, "scope": "read", "token_type": "refresh_token"}
    validator = TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.async_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        require_token_type=False,
    )
    assert (await validator.validate("tok")).scopes == {"read"}
    with pytest.raises(InvalidToken):
        await validator.validate("rt")


async def test_introspection_outage_is_unavailable(validator, issuer):
    issuer.introspection_status = 502
    with pytest.raises(ValidationUnavailable):
        await validator.validate("opaque-2")


async def test_opaque_token_without_introspection_endpoint_is_invalid(keys, clock, issuer):
    v = TokenValidator(
        ISSUER,
        AUDIENCE,
        jwks_uri=ISSUER + "/.well-known/jwks.json",
        discover=False,
        http_client=issuer.async_client(),
    )
    with pytest.raises(InvalidToken):
        await v.validate("opaque")


# -- sync twin ----------------------------------------------------------------------------------
def test_sync_validator_accepts_rotates_and_rejects(issuer, keys, clock):
    v = SyncTokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.sync_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
    )
    assert v.validate(mint(keys["RS256"], NOW)).client_id == "merchant-7"
    rotated = make_key("EdDSA")
    issuer.keys.append(rotated)
    with pytest.raises(InvalidToken, match="unknown signing key"):  # refetch rate limit
        v.validate(mint(rotated, NOW))
    clock.now += 30
    assert v.validate(mint(rotated, clock.now)).sub == "user-42"
    assert issuer.jwks_fetches == 2
    with pytest.raises(InvalidToken):
        v.validate(mint(keys["RS256"], clock.now, aud="x"))
    issuer.introspection["op"] = {"active": True, "token_type": "Bearer", "scope": "read"}
    assert v.validate("op").scopes == {"read"}
    assert RS_SECRET not in repr(v)


async def test_repeated_token_skips_signature_check_but_not_expiry(
    validator, keys, clock, monkeypatch
):
    token = mint(keys["ES256"], NOW, exp=int(NOW) + 60)
    await validator.validate(token)
    calls = []
    original = validator._verify
    monkeypatch.setattr(validator, "_verify", lambda *a: calls.append(a) or original(*a))
    for _ in range(10):
        await validator.validate(token)
    assert calls == []
    clock.now += 71  # past exp + leeway: rejected although cached
    with pytest.raises(InvalidToken, match="expired"):
        await validator.validate(token)


async def test_cached_token_of_a_removed_key_is_rejected_after_reload(issuer, keys, clock):
    v = TokenValidator(
        ISSUER, AUDIENCE, http_client=issuer.async_client(), clock=clock, jwks_max_age=600
    )
    token = mint(keys["EdDSA"], NOW, exp=int(NOW) + 3600)
    await v.validate(token)
    issuer.keys = [k for k in issuer.keys if k.alg != "EdDSA"]
    clock.now += 601
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await v.validate(token)
