"""Stored tokens and token ids: keys in issue order, nothing of the token in clear."""

from __future__ import annotations

import hashlib

import pytest

from tests.core.conftest import ISSUER, POLICY_OPAQUE, Core
from tokensmith.core.credentials import (
    ORDER_DIGITS,
    hash_secret,
    new_secret,
    new_token,
    new_token_id,
    token_key,
)
from tokensmith.core.issuers import IssuerBinding
from tokensmith.core.models import AccessTokenRecord
from tokensmith.core.randomness import SystemRandomness

RAND = SystemRandomness()
NOW = 1_700_000_000.0


def test_tokens_issued_later_have_keys_that_sort_after() -> None:
    times = [NOW, NOW + 0.001, NOW + 1, NOW + 86400, NOW + 10 * 365 * 86400]
    keys = [token_key(new_token(RAND, t)) for t in times]
    ids = [new_token_id(RAND, t) for t in times]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_token_carries_256_random_bits_after_its_issue_time() -> None:
    token = new_token(RAND, NOW)
    assert token[:ORDER_DIGITS] == f"{int(NOW * 1000):012x}"
    assert len(token) == ORDER_DIGITS + 43  # 256 bits, base64url without padding
    assert new_token(RAND, NOW)[ORDER_DIGITS:] != token[ORDER_DIGITS:]


def test_token_key_holds_the_issue_time_and_a_hash_not_the_token() -> None:
    token = new_token(RAND, NOW)
    key = token_key(token)
    assert len(key) == 64 and key.startswith(token[:ORDER_DIGITS])
    assert key[ORDER_DIGITS:] == hashlib.sha256(token.encode()).hexdigest()[: 64 - ORDER_DIGITS]
    assert token[ORDER_DIGITS:] not in key


@pytest.mark.parametrize(
    "token",
    [
        new_secret(RAND),  # a token issued before tokens carried their issue time
        "G" * ORDER_DIGITS + new_secret(RAND),  # the right length, no hex prefix
        "0" * ORDER_DIGITS + new_secret(RAND) + "x",  # one character too many
        "",
    ],
    ids=["older-token", "not-hex", "too-long", "empty"],
)
def test_token_of_another_shape_is_looked_up_by_its_sha256(token: str) -> None:
    assert token_key(token) == hash_secret(token)


async def test_opaque_token_issued_before_the_prefix_stays_valid(core: Core) -> None:
    # stored before migration 0006 too, so without an issuer: its issuer's instance is
    # told so by ``legacy_token_issuer``
    core.service.minter.binding = IssuerBinding.of(ISSUER, legacy_issuer=ISSUER)
    client, _ = await core.client()
    older = new_secret(RAND)
    now = core.clock.now()
    record = AccessTokenRecord(
        "older-jti", client.client_id, client.client_id, "read", now, now + 60, hash_secret(older)
    )
    await core.store.add_access_token(record)
    assert (await core.service.introspect(older, client))["active"] is True


async def test_opaque_tokens_are_stored_in_issue_order(core: Core) -> None:
    client, secret = await core.client()
    for _ in range(3):
        await core.service.token(core.request(client.client_id, secret), POLICY_OPAQUE)
        core.clock.advance(1)
    records = sorted(core.store.tokens.values(), key=lambda r: r.issued_at)
    hashes = [r.token_hash or "" for r in records]
    assert hashes == sorted(hashes)
    assert [r.jti for r in records] == sorted(r.jti for r in records)
