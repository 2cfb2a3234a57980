"""Every stored token keeps the tag of the issuer that issued it (migration 0006), on every
write path: single and batched access tokens, codes, a redemption's first refresh and
access tokens, rotations (batched; one statement on PostgreSQL) and grace replays.  Rows
written before 0006 read back without one.  In memory, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses

from alembic import command
from sqlalchemy import Connection, text

from tests.storage.test_partner_contract import _code, _family, _rt, _seed
from tokensmith.core.models import AccessTokenRecord
from tokensmith.core.ports import Store
from tokensmith.storage.sql import make_engine, migrate
from tokensmith.storage.sql.migrate import alembic_config

A = "a1" * 8
B = "b2" * 8


def _access(jti: str, tag: str | None, **kw: object) -> AccessTokenRecord:
    base: dict[str, object] = {
        "jti": jti,
        "client_id": "app",
        "subject": "m1",
        "scope": "read",
        "issued_at": 100.0,
        "expires_at": 7300.0,
        "token_hash": f"{jti:x>64}",
        "issuer_tag": tag,
    }
    base.update(kw)
    return AccessTokenRecord(**base)  # type: ignore[arg-type]


async def test_access_tokens_keep_their_issuer_tag(store: Store) -> None:
    records = [_access(f"j{i}", (A, B, None)[i % 3]) for i in range(12)]
    await asyncio.gather(*(store.add_access_token(r) for r in records))  # batched writes
    for r in records:
        assert await store.find_access_token(r.token_hash or "") == r
        assert await store.find_access_token_by_jti(r.jti) == r
    tombstone = _access("jwt", A, token_hash=None)
    await store.revoke_access_token(tombstone, 150.0)
    assert await store.find_access_token_by_jti("jwt") == dataclasses.replace(
        tombstone, revoked_at=150.0
    )


async def test_codes_and_the_tokens_of_their_redemption_keep_their_issuer_tag(
    store: Store,
) -> None:
    await _seed(store)
    await store.add_code(_code(issuer_tag=A))
    await store.add_code(_code("d" * 64, family_id="f2"))
    assert (await store.find_code("c" * 64)) == _code(issuer_tag=A)
    assert (await store.find_code("d" * 64)) == _code("d" * 64, family_id="f2")
    first, access = _rt("r1" * 32, issuer_tag=A), _access("ja", A, family_id="f1")
    assert await store.redeem_code("c" * 64, 150.0, _family(), first, access)
    assert await store.find_refresh_token("r1" * 32) == first
    assert await store.find_access_token_by_jti("ja") == access
    grant = await store.find_refresh_grant("r1" * 32)
    assert grant is not None and grant.token == first


async def test_rotated_and_replayed_refresh_tokens_keep_their_issuer_tag(store: Store) -> None:
    await _seed(store)
    for i in range(6):
        await store.add_code(_code(f"{i:063d}c", family_id=f"f{i}", issuer_tag=A))
        first = _rt(f"{i:064d}", f"f{i}", issuer_tag=A)
        assert await store.redeem_code(f"{i:063d}c", 150.0, _family(f"f{i}"), first)
    successors = [_rt(f"{i:063d}n", f"f{i}", issuer_tag=(A, B)[i % 2]) for i in range(6)]
    accesses = [_access(f"j{i}", (A, B)[i % 2], family_id=f"f{i}") for i in range(6)]
    rotations = (
        store.rotate_refresh_token(f"{i:064d}", successors[i], 200.0, accesses[i]) for i in range(6)
    )
    assert await asyncio.gather(*rotations) == [True] * 6  # one batch
    for new, access in zip(successors, accesses, strict=True):
        assert await store.find_refresh_token(new.token_hash) == new
        assert await store.find_access_token_by_jti(access.jti) == access
    again = _rt("r" * 64, "f0", issuer_tag=B)
    assert await store.replay_refresh_token(f"{0:064d}", f"{0:063d}n", again, 210.0)
    assert await store.find_refresh_token("r" * 64) == again


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


#: One row of each token table, as revision 0005 writes them (no issuer).
ROWS_OF_0005 = [
    "INSERT INTO access_tokens (jti, token_hash, client_id, subject, scope, issued_at, "
    "expires_at) VALUES ('j-old', 'h-old', 'app', 'm1', 'read', 100, 7300)",
    "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, redirect_uri_sent, "
    "merchant_id, user_id, scope, family_id, issued_at, expires_at) "
    "VALUES ('c-old', 'app', 'https://a.example/cb', true, 'm1', 'u1', 'read', 'f-old', 100, 700)",
    "INSERT INTO token_families (family_id, client_id, merchant_id, user_id, scope, created_at, "
    "expires_at, absolute_expires_at) VALUES ('f-old', 'app', 'm1', 'u1', 'read', 100, 900, 900)",
    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, scope, issued_at, expires_at) "
    "VALUES ('r-old', 'f-old', 'app', 'read', 100, 900)",
]


async def test_rows_written_before_migration_0006_have_no_issuer_tag(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, "0005")
            for row in ROWS_OF_0005:
                await conn.execute(text(row))
        await migrate(engine)
        async with engine.connect() as conn:
            tags = {
                table: (await conn.execute(text(f"SELECT issuer_tag FROM {table}"))).all()
                for table in ("access_tokens", "authorization_codes", "refresh_tokens")
            }
    finally:
        await engine.dispose()
    assert tags == {table: [(None,)] for table in tags}
