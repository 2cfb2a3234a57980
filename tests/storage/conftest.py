"""A store of each kind: in memory, SQLite, PostgreSQL (when configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, fresh_database, migrated_store
from tokensmith.core.ports import Store
from tokensmith.storage.memory import MemoryStore


@pytest.fixture(params=[pytest.param("memory", id="memory"), *BACKENDS])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    async with fresh_database(request.param, tmp_path) as url, migrated_store(url) as sql:
        yield sql
