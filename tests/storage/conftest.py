"""A store of each kind: in memory, SQLite, PostgreSQL (when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, fresh_database
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.protocols import Store
from tokensmith.storage.sql import SqlStore, make_engine, migrate


@pytest.fixture(params=[pytest.param("memory", id="memory"), *BACKENDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    async with fresh_database(request.param, tmp_path) as url:
        engine = make_engine(url)
        await migrate(engine)
        sql = SqlStore(engine)
        try:
            yield sql
        finally:
            await sql.close()
