"""Group commit (``tokensmith.storage.sql.batch``) on SQLite and PostgreSQL: concurrent
writes share transactions, yet each caller learns its own outcome, and only after its
row is committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from tests.conftest import BACKENDS, fresh_database, migrated_store
from tokensmith.core.models import AccessTokenRecord
from tokensmith.storage.sql import SqlStore


@pytest.fixture(params=BACKENDS)
async def sql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with fresh_database(request.param, tmp_path) as url, migrated_store(url) as store:
        yield store


def _token(jti: str, token_hash: str | None = None) -> AccessTokenRecord:
    return AccessTokenRecord(jti, "c1", "c1", "read", 100.0, 3700.0, token_hash=token_hash)


async def test_parallel_token_writes_are_all_stored(sql: SqlStore) -> None:
    await asyncio.gather(*(sql.add_access_token(_token(f"j{i}", f"h{i}")) for i in range(300)))
    found = await asyncio.gather(*(sql.find_access_token(f"h{i}") for i in range(300)))
    assert [t.jti if t else None for t in found] == [f"j{i}" for i in range(300)]


async def test_a_duplicate_fails_only_its_own_write(sql: SqlStore) -> None:
    """The shared transaction fails; each write is retried alone, so only the duplicate's
    caller sees the error."""
    records = [_token(f"j{i}", f"h{i}") for i in range(8)] + [_token("j3", "other")]
    results = await asyncio.gather(
        *(sql.add_access_token(r) for r in records), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    for i in range(8):
        assert await sql.find_access_token_by_jti(f"j{i}") is not None


async def test_a_write_queued_just_as_a_batch_ends_is_not_stranded(sql: SqlStore) -> None:
    """Each caller writes again the moment its previous write returns: the lane that
    committed the last batch must not be counted as busy."""

    async def writer(n: int) -> None:
        for k in range(20):
            await sql.add_access_token(_token(f"w{n}-{k}"))

    await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(3))), timeout=30)
    assert await sql.find_access_token_by_jti("w2-19") is not None
