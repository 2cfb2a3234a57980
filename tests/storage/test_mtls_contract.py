"""RFC 8705 in every store (memory, SQLite, PostgreSQL; migration 0010): a client's
``tls_client_auth`` subject and certificate binding, and the ``x5t#S256`` of access tokens
and of token families, through every write path that stores them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage.conftest import ROTATION_FORMS, store_of
from tests.storage.old_schema import down_and_up, old_client_at
from tests.storage.test_contract import _client, _token
from tests.storage.test_partner_contract import _code, _family, _rt, _seed
from tokensmith.core.ports import Store

X5T = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"


async def test_a_clients_mtls_registration_round_trips(store: Store) -> None:
    client = _client(
        secrets=(),
        auth_methods=("tls_client_auth",),
        tls_auth_kind="subject_dn",
        tls_auth_value="CN=bank-client,O=Example Bank,C=GE",
        cert_bound_tokens=True,
    )
    await store.add_client(client)
    assert await store.get_client("c1") == client
    changed = client.evolve(
        tls_auth_kind="san_dns", tls_auth_value="a.example", cert_bound_tokens=False
    )
    await store.update_client(changed)
    assert await store.get_client("c1") == changed
    assert await store.list_clients() == [changed]


async def test_a_client_without_mtls_reads_back_unbound(store: Store) -> None:
    await store.add_client(_client())
    found = await store.get_client("c1")
    assert found is not None
    assert (found.tls_auth_kind, found.tls_auth_value, found.cert_bound_tokens) == (
        None,
        None,
        False,
    )


async def test_an_opaque_tokens_certificate_binding_is_stored(store: Store) -> None:
    record = _token(x5t_s256=X5T)
    await store.add_access_token(record)
    assert await store.find_access_token("t" * 64) == record
    by_jti = await store.find_access_token_by_jti("j1")
    assert by_jti is not None and by_jti.x5t_s256 == X5T


@pytest.mark.parametrize("kind", ROTATION_FORMS)
async def test_a_familys_certificate_binding_survives_redemption_and_rotation(
    kind: str, tmp_path: Path
) -> None:
    async with store_of(kind, tmp_path) as store:
        await _seed(store)
        await store.add_code(_code())
        family = _family(x5t_s256=X5T)
        first_access = _token("a1", family_id="f1", token_hash=None, x5t_s256=X5T)
        assert await store.redeem_code("c" * 64, 150.0, family, _rt("r1" * 32), first_access)
        grant = await store.find_refresh_grant("r1" * 32)
        assert grant is not None and grant.family == family
        access = _token("a2", family_id="f1", token_hash="u" * 64, x5t_s256=X5T)
        new = _rt("r2" * 32, issued_at=200.0, expires_at=1200.0)
        assert await store.rotate_refresh_token("r1" * 32, new, 200.0, access)
        stored = await store.find_access_token("u" * 64)
        assert stored is not None and stored.x5t_s256 == X5T
        again = await store.find_access_token_by_jti("a1")
        assert again is not None and again.x5t_s256 == X5T


async def test_rows_from_before_migration_0010_read_back_unbound(db_url: str) -> None:
    """Migration 0010 adds nullable columns and a false ``cert_bound_tokens`` to existing
    rows, and downgrades cleanly."""
    from tokensmith.storage.sql import SqlStore, make_engine, migrate

    engine = make_engine(db_url)
    await old_client_at(engine, "0009")
    await migrate(engine)
    store = SqlStore(engine)
    try:
        old = await store.get_client("old")
        assert old is not None and old.cert_bound_tokens is False and old.tls_auth_kind is None
        await down_and_up(engine, "0009")
        await store.add_access_token(_token(x5t_s256=X5T))
        assert (await store.find_access_token("t" * 64)) == _token(x5t_s256=X5T)
    finally:
        await store.close()
