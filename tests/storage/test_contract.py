"""One contract for every store: the in-memory one and SQLAlchemy on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest

from tokensmith.core.models import (
    AccessTokenRecord,
    ApiKey,
    Client,
    ClientSecret,
    Merchant,
    SigningKeyRecord,
)
from tokensmith.core.ports import Store


def _client(cid: str = "c1", **kw: object) -> Client:
    base: dict[str, object] = {
        "client_id": cid,
        "name": "name",
        "scopes": ("read", "write"),
        "secrets": (ClientSecret("h" * 64, 1.0),),
        "created_at": 1.0,
    }
    base.update(kw)
    return Client(**base)  # type: ignore[arg-type]


def _token(jti: str = "j1", **kw: object) -> AccessTokenRecord:
    base: dict[str, object] = {
        "jti": jti,
        "client_id": "c1",
        "subject": "c1",
        "scope": "read",
        "issued_at": 100.0,
        "expires_at": 200.0,
        "token_hash": "t" * 64 if jti == "j1" else None,
    }
    base.update(kw)
    return AccessTokenRecord(**base)  # type: ignore[arg-type]


async def test_client_round_trips_every_field(store: Store) -> None:
    await store.add_merchant(Merchant("m1", "Shop", 1.0))
    client = _client(
        default_scopes=("read",),
        grant_types=("authorization_code", "refresh_token"),
        token_format="opaque",
        access_token_ttl=60,
        merchant_id="m1",
        redirect_uris=("https://a.example/cb", "http://127.0.0.1/cb"),
        form_uri="https://a.example/form",
        auth_methods=("client_secret_basic",),
        profile="fapi2",
    )
    await store.add_client(client)
    assert await store.get_client("c1") == client
    assert await store.get_client("nope") is None
    assert await store.list_clients("m1") == [client]
    assert await store.list_clients("m2") == []


async def test_a_client_profile_is_changed_and_cleared_by_update(store: Store) -> None:
    await store.add_client(_client())
    assert (await store.get_client("c1")).profile is None  # type: ignore[union-attr]
    for profile in ("fapi2", "default", None):
        await store.update_client(_client(profile=profile))
        assert (await store.get_client("c1")).profile == profile  # type: ignore[union-attr]


async def test_default_scopes_none_and_empty_differ(store: Store) -> None:
    await store.add_client(_client("a", default_scopes=None))
    got = await store.get_client("a")
    assert got is not None and got.default_scopes is None


async def test_duplicate_client_id_is_refused(store: Store) -> None:
    await store.add_client(_client())
    with pytest.raises(Exception):
        await store.add_client(_client())


async def test_revoke_client_once(store: Store) -> None:
    await store.add_client(_client())
    assert await store.revoke_client("c1", 5.0) is True
    assert await store.revoke_client("c1", 6.0) is False
    got = await store.get_client("c1")
    assert got is not None and got.revoked_at == 5.0 and not got.active


async def test_rotate_secret_bounds_old_and_drops_ended(store: Store) -> None:
    await store.add_client(_client())
    assert await store.rotate_secret("c1", ClientSecret("n" * 64, 10.0), old_expires_at=70.0)
    got = await store.get_client("c1")
    assert got is not None
    assert [(s.secret_hash[0], s.expires_at) for s in got.secrets] == [("h", 70.0), ("n", None)]
    assert await store.rotate_secret("c1", ClientSecret("o" * 64, 80.0), old_expires_at=80.0)
    got = await store.get_client("c1")
    assert got is not None
    assert [(s.secret_hash[0], s.expires_at) for s in got.secrets] == [("n", 80.0), ("o", None)]
    assert await store.rotate_secret("zz", ClientSecret("p" * 64, 1.0), 1.0) is False


async def test_update_client_keeps_secrets(store: Store) -> None:
    await store.add_client(_client())
    await store.update_client(_client(name="renamed", secrets=(), redirect_uris=("https://x/cb",)))
    got = await store.get_client("c1")
    assert got is not None and got.name == "renamed" and got.redirect_uris == ("https://x/cb",)
    assert len(got.secrets) == 1


async def test_a_clients_disable_and_token_cutoff_round_trip(store: Store) -> None:
    await store.add_client(_client())
    await store.update_client(_client(disabled_at=1500.0, tokens_revoked_before=1400.5))
    got = await store.get_client("c1")
    assert got is not None and (got.disabled_at, got.tokens_revoked_before) == (1500.0, 1400.5)
    assert not got.active and got.token_revoked(1400.0) and not got.token_revoked(1401.0)
    await store.update_client(_client(disabled_at=None))
    again = await store.get_client("c1")
    assert again is not None and again.active and again.tokens_revoked_before is None


async def test_update_client_replaces_and_clears_its_keys(store: Store) -> None:
    await store.add_client(_client())
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    jwks = json.dumps({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]})
    methods = ("client_secret_basic", "client_secret_post", "private_key_jwt")
    await store.update_client(_client(jwks=jwks, auth_methods=methods))
    got = await store.get_client("c1")
    assert got is not None and got.jwks == jwks and got.auth_methods == methods
    await store.update_client(_client(jwks_uri="https://rp.example/jwks", auth_methods=methods))
    got = await store.get_client("c1")
    assert got is not None and got.jwks is None and got.jwks_uri == "https://rp.example/jwks"
    await store.update_client(_client())
    got = await store.get_client("c1")
    assert got is not None and got.jwks is None and got.jwks_uri is None
    assert got.auth_methods == ("client_secret_basic", "client_secret_post")
    assert len(got.secrets) == 1


async def test_a_sealed_secret_is_kept_through_add_and_rotation(store: Store) -> None:
    await store.add_client(_client(secrets=(ClientSecret("h" * 64, 1.0, sealed="gAAAAold"),)))
    new = ClientSecret("n" * 64, 2.0, sealed="gAAAAnew")
    assert await store.rotate_secret("c1", new, 50.0)
    got = await store.get_client("c1")
    assert got is not None
    assert sorted((s.sealed, s.expires_at) for s in got.secrets) == [
        ("gAAAAnew", None),
        ("gAAAAold", 50.0),
    ]
    (listed,) = [c for c in await store.list_clients() if c.client_id == "c1"]
    assert {s.sealed for s in listed.secrets} == {"gAAAAnew", "gAAAAold"}


async def test_access_token_lookup_by_hash_and_jti(store: Store) -> None:
    rec = _token()
    await store.add_access_token(rec)
    assert await store.find_access_token("t" * 64) == rec
    assert await store.find_access_token_by_jti("j1") == rec
    assert await store.find_access_token("x" * 64) is None


async def test_revoking_unstored_jwt_writes_tombstone(store: Store) -> None:
    jwt_rec = _token("j2")
    await store.revoke_access_token(jwt_rec, 150.0)
    got = await store.find_access_token_by_jti("j2")
    assert got is not None and got.revoked_at == 150.0 and not got.active_at(160.0)


async def test_revoking_twice_keeps_first_time(store: Store) -> None:
    await store.add_access_token(_token())
    await store.revoke_access_token(_token(), 150.0)
    await store.revoke_access_token(_token(), 160.0)
    got = await store.find_access_token_by_jti("j1")
    assert got is not None and got.revoked_at == 150.0


async def test_parallel_revocations_of_one_jwt_agree(store: Store) -> None:
    rec = _token("j3")
    await asyncio.gather(*(store.revoke_access_token(rec, 150.0 + i) for i in range(10)))
    got = await store.find_access_token_by_jti("j3")
    assert got is not None and got.revoked_at is not None


async def test_purge_deletes_expired_in_batches(store: Store) -> None:
    for i in range(5):
        await store.add_access_token(_token(f"old{i}", expires_at=50.0 + i, token_hash=None))
    await store.add_access_token(_token("live", expires_at=500.0, token_hash=None))
    assert await store.purge_access_tokens(before=100.0, batch=3) == 3
    assert await store.purge_access_tokens(before=100.0, batch=3) == 2
    assert await store.purge_access_tokens(before=100.0, batch=3) == 0
    assert await store.find_access_token_by_jti("live") is not None


async def test_signing_keys_retire_and_publish(store: Store) -> None:
    k1 = SigningKeyRecord("k1", "ES256", b"\x00enc", '{"kid":"k1"}', 1.0)
    k2 = SigningKeyRecord("k2", "RS256", b"\x01enc", '{"kid":"k2"}', 2.0)
    await store.add_signing_key(k1, retire_others_at=None)
    await store.add_signing_key(k2, retire_others_at=2.0)
    await store.set_publish_until("k1", 99.0)
    got = {k.kid: k for k in await store.list_signing_keys()}
    assert got["k1"].retired_at == 2.0 and got["k1"].publish_until == 99.0
    assert got["k2"].retired_at is None
    assert got["k1"].private_key_encrypted == b"\x00enc"


async def test_api_keys(store: Store) -> None:
    await store.add_merchant(Merchant("m1", "Shop", 1.0))
    key = ApiKey("ak1", "dev app", "a" * 64, 1.0, "m1")
    await store.add_api_key(key)
    assert await store.find_api_key("a" * 64) == key
    assert await store.list_api_keys("m1") == [key]
    assert await store.revoke_api_key("ak1", 3.0) is True
    assert await store.revoke_api_key("ak1", 4.0) is False
    got = await store.find_api_key("a" * 64)
    assert got is not None and got.revoked_at == 3.0


async def test_replacing_an_api_key_hash_refuses_the_old_value(store: Store) -> None:
    await store.add_api_key(ApiKey("ak1", "dev app", "a" * 64, 1.0))
    assert await store.replace_api_key_hash("ak1", "b" * 64) is True
    assert await store.find_api_key("a" * 64) is None
    got = await store.find_api_key("b" * 64)
    assert got is not None and got.key_id == "ak1" and got.created_at == 1.0
    assert await store.replace_api_key_hash("nope", "c" * 64) is False
    assert await store.revoke_api_key("ak1", 3.0) is True
    assert await store.replace_api_key_hash("ak1", "c" * 64) is False  # only a live key
    assert await store.find_api_key("c" * 64) is None


async def test_merchants_by_id_and_name(store: Store) -> None:
    m = Merchant("m1", "Shop", 1.0)
    await store.add_merchant(m)
    assert await store.get_merchant("m1") == m
    assert await store.find_merchant_by_name("Shop") == m
    assert await store.list_merchants() == [m]
    with pytest.raises(Exception):
        await store.add_merchant(Merchant("m2", "Shop", 2.0))


async def test_first_signing_key_is_inserted_once_under_concurrency(store: Store) -> None:
    keys = [
        SigningKeyRecord(f"k{i}", "ES256", b"enc", f'{{"kid":"k{i}"}}', 1.0 + i) for i in range(8)
    ]
    results = await asyncio.gather(*(store.add_first_signing_key(k) for k in keys))
    assert sum(results) == 1
    assert len(await store.list_signing_keys()) == 1
