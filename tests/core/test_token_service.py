"""The token service against the in-memory store."""

from __future__ import annotations

import jwt
import pytest

from tests.core.conftest import POLICY_JWT, POLICY_OPAQUE, Core
from tokensmith.core import errors
from tokensmith.core.admin import rotate_client_secret
from tokensmith.core.client_admin import ClientAdmin
from tokensmith.core.keyring import signing_key
from tokensmith.core.randomness import SystemRandomness


async def test_jwt_client_credentials_writes_nothing(core: Core) -> None:
    client, secret = await core.client()
    _, issued = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert issued.access_token.count(".") == 2
    assert core.store.tokens == {}


async def test_opaque_token_is_stored_as_hash_with_expiry(core: Core) -> None:
    client, secret = await core.client()
    _, issued = await core.service.token(core.request(client.client_id, secret), POLICY_OPAQUE)
    [record] = core.store.tokens.values()
    assert record.token_hash != issued.access_token
    assert record.expires_at == record.issued_at + 7200


async def test_token_expires_by_the_injected_clock(core: Core) -> None:
    client, secret = await core.client()
    _, issued = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert (await core.service.introspect(issued.access_token, client))["active"] is True
    core.clock.advance(3599)
    assert (await core.service.introspect(issued.access_token, client))["active"] is True
    core.clock.advance(1)
    assert (await core.service.introspect(issued.access_token, client)) == {"active": False}


@pytest.mark.parametrize("policy", [POLICY_JWT, POLICY_OPAQUE], ids=["jwt", "opaque"])
async def test_revoked_token_is_inactive(core: Core, policy: object) -> None:
    client, secret = await core.client()
    _, issued = await core.service.token(core.request(client.client_id, secret), policy)  # type: ignore[arg-type]
    await core.service.revoke(issued.access_token, client)
    assert await core.service.introspect(issued.access_token, client) == {"active": False}


async def test_revoking_another_clients_token_is_refused(core: Core) -> None:
    a, a_secret = await core.client()
    b, _ = await core.client()
    _, issued = await core.service.token(core.request(a.client_id, a_secret), POLICY_JWT)
    with pytest.raises(errors.UnauthorizedClient):
        await core.service.revoke(issued.access_token, b)
    assert (await core.service.introspect(issued.access_token, a))["active"] is True


async def test_foreign_token_is_inactive_without_introspection_scope(core: Core) -> None:
    a, a_secret = await core.client()
    b, _ = await core.client()
    rs, _ = await core.client(scope="introspection")
    _, issued = await core.service.token(core.request(a.client_id, a_secret), POLICY_JWT)
    assert await core.service.introspect(issued.access_token, b) == {"active": False}
    assert (await core.service.introspect(issued.access_token, rs))["active"] is True


async def test_token_of_revoked_client_is_inactive(core: Core) -> None:
    client, secret = await core.client()
    rs, _ = await core.client(scope="introspection")
    _, issued = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    await core.clients.revoke_client(client.client_id, core.clock.now())
    assert await core.service.introspect(issued.access_token, rs) == {"active": False}


@pytest.mark.parametrize("policy", [POLICY_JWT, POLICY_OPAQUE], ids=["jwt", "opaque"])
async def test_token_of_deleted_client_is_inactive_at_once(core: Core, policy: object) -> None:
    client, secret = await core.client()
    rs, _ = await core.client(scope="introspection")
    _, issued = await core.service.token(core.request(client.client_id, secret), policy)  # type: ignore[arg-type]
    assert (await core.service.introspect(issued.access_token, rs))["active"] is True  # cached
    admin = ClientAdmin(
        core.store,
        core.clock,
        SystemRandomness(),
        max_ttl=86400,
        invalidate=core.clients.invalidate,
    )
    assert await admin.delete(client.client_id) is True
    assert await core.service.introspect(issued.access_token, rs) == {"active": False}
    with pytest.raises(errors.InvalidClient):
        await core.service.token(core.request(client.client_id, secret), policy)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    ids=["empty", "unknown-opaque", "not-a-jwt", "alg-none"],
)
async def test_unknown_tokens_are_inactive(core: Core, token: str) -> None:
    client, _ = await core.client()
    if not token:
        with pytest.raises(errors.InvalidRequest):
            await core.service.introspect(token, client)
        return
    assert await core.service.introspect(token, client) == {"active": False}


async def test_token_signed_by_another_key_is_foreign(core: Core) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    client, _ = await core.client()
    other = ec.generate_private_key(ec.SECP256R1())
    kid = (await core.keyring.codec()).signing_kid
    forged = jwt.encode(
        {
            "iss": "https://auth.example.test",
            "exp": core.clock.now() + 60,
            "client_id": client.client_id,
        },
        other,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": kid},
    )
    assert await core.service.introspect(forged, client) == {"active": False}


@pytest.mark.parametrize(
    ("secret", "reason"),
    [("wrong", "bad_secret"), ("", "bad_secret")],
)
async def test_bad_secret_is_invalid_client(core: Core, secret: str, reason: str) -> None:
    client, _ = await core.client()
    with pytest.raises(errors.InvalidClient) as info:
        await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert info.value.reason == reason


async def test_unknown_client_is_invalid_client(core: Core) -> None:
    with pytest.raises(errors.InvalidClient) as info:
        await core.service.token(core.request("nobody", "x"), POLICY_JWT)
    assert info.value.reason == "unknown_client"


async def test_eleventh_failure_in_a_window_is_rate_limited(core: Core) -> None:
    client, secret = await core.client()
    for _ in range(10):
        with pytest.raises(errors.InvalidClient):
            await core.service.token(core.request(client.client_id, "wrong"), POLICY_JWT)
    with pytest.raises(errors.RateLimited) as info:
        await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert 1 <= info.value.retry_after <= 60
    core.clock.advance(60)
    await core.service.token(core.request(client.client_id, secret), POLICY_JWT)


async def test_rotated_secret_overlap_then_only_new(core: Core) -> None:
    client, old = await core.client()
    new = await rotate_client_secret(
        core.clients, core.clock, SystemRandomness(), client.client_id, 300
    )
    for secret in (old, new):
        await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    core.clock.advance(300)
    with pytest.raises(errors.InvalidClient):
        await core.service.token(core.request(client.client_id, old), POLICY_JWT)
    await core.service.token(core.request(client.client_id, new), POLICY_JWT)


async def test_unsupported_grant_is_refused_before_authentication(core: Core) -> None:
    with pytest.raises(errors.UnsupportedGrantType):
        await core.service.token(core.request("x", "y", grant_type="password"), POLICY_JWT)


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def _kids_published(core: Core) -> set[str]:
    await core.keyring.reload()
    return {k["kid"] for k in (await core.keyring.codec()).jwks()["keys"]}


async def test_delayed_rotation_publishes_the_new_key_before_it_signs(core: Core) -> None:
    client, secret = await core.client()
    _, before = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    core.clock.advance(1)  # the new key is the newer one
    new = await core.keyring.rotate("ES256", publish_old_for=3600, activate_after=300)
    assert await _kids_published(core) == {_kid(before.access_token), new.kid}
    core.clock.advance(299)
    _, still = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert _kid(still.access_token) == _kid(before.access_token)
    core.clock.advance(1)
    assert new.kid in await _kids_published(core)
    _, after = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert _kid(after.access_token) == new.kid
    assert (await core.service.introspect(still.access_token, client))["active"] is True
    core.clock.advance(3600)  # the old key is published until its last token expires
    assert await _kids_published(core) == {new.kid}


async def test_rotations_in_a_row_take_over_in_order(core: Core) -> None:
    start = core.clock.now()
    first = signing_key(await core.store.list_signing_keys(), start)
    assert first is not None
    second = await core.keyring.rotate("ES256", publish_old_for=60, activate_after=300)
    core.clock.advance(10)
    third = await core.keyring.rotate("ES256", publish_old_for=60, activate_after=300)
    for at, signer in [(299, first), (300, second), (309, second), (310, third)]:
        core.clock.advance(start + at - core.clock.now())
        current = signing_key(await core.store.list_signing_keys(), core.clock.now())
        assert current is not None and current.kid == signer.kid, at


async def test_rotation_without_delay_overrides_a_pending_one(core: Core) -> None:
    await core.keyring.rotate("ES256", publish_old_for=60, activate_after=300)
    urgent = await core.keyring.rotate("ES256", publish_old_for=60)
    client, secret = await core.client()
    _, issued = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert _kid(issued.access_token) == urgent.kid


async def test_key_rotation_keeps_old_tokens_verifiable(core: Core) -> None:
    client, secret = await core.client()
    _, before = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    await core.keyring.rotate("EdDSA", publish_old_for=3600)
    _, after = await core.service.token(core.request(client.client_id, secret), POLICY_JWT)
    assert jwt.get_unverified_header(after.access_token)["alg"] == "EdDSA"
    assert (await core.service.introspect(before.access_token, client))["active"] is True
    jwks = (await core.keyring.codec()).jwks()["keys"]
    assert len(jwks) == 2
    core.clock.advance(3600)
    await core.keyring.reload()
    assert len((await core.keyring.codec()).jwks()["keys"]) == 1
