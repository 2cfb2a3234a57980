"""A second instance on the same data: what it revokes, this one's caches do not hear of."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tokensmith.core.ports import Store
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.sql import SqlStore, make_engine


def memory_twin(store: MemoryStore) -> MemoryStore:
    """A :class:`MemoryStore` sharing ``store``'s records but counting its own
    revocations, as a store object of another worker or instance does."""
    twin = MemoryStore()
    shared = {k: v for k, v in vars(store).items() if k != "_revocations"}
    vars(twin).update(shared)
    return twin


@contextlib.asynccontextmanager
async def another_instance(store: Store) -> AsyncIterator[Store]:
    """A store of another instance on ``store``'s data: its own engine on the same
    database, or a :func:`memory_twin`."""
    if isinstance(store, MemoryStore):
        yield memory_twin(store)
        return
    assert isinstance(store, SqlStore)
    other = SqlStore(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        yield other
    finally:
        await other.close()
