"""A store of each kind: in memory, SQLite, PostgreSQL (when configured); and for the
refresh-token rotation, a store of each form of the rotation rule."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, PG_URL, fresh_database, migrated_store
from tokensmith.core.ports import Store
from tokensmith.storage.memory import MemoryStore

#: PostgreSQL once more, rotating refresh tokens with the portable statements
#: (``SqlStore(portable_rotation=True)``) instead of its one statement.
PORTABLE_ON_POSTGRES = pytest.param(
    "postgres-portable",
    id="postgres-portable",
    marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set"),
    ],
)

#: Every store, and on PostgreSQL each form of the rotation rule
#: (:mod:`tokensmith.storage.sql.rotation`): portable on SQLite and ``postgres-portable``,
#: one statement on ``postgres``.
ROTATION_FORMS = [pytest.param("memory", id="memory"), *BACKENDS, PORTABLE_ON_POSTGRES]


@contextlib.asynccontextmanager
async def store_of(kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A new, empty store of ``kind`` (a param of :data:`ROTATION_FORMS`), closed after."""
    if kind == "memory":
        yield MemoryStore()
        return
    backend, _, form = kind.partition("-")
    async with (
        fresh_database(backend, tmp_path) as url,
        migrated_store(url, portable_rotation=form == "portable") as sql,
    ):
        yield sql


@pytest.fixture(params=[pytest.param("memory", id="memory"), *BACKENDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_of(request.param, tmp_path) as made:
        yield made
