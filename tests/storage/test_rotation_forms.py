"""The two forms of the refresh-token rotation rule (``tokensmith.storage.sql.rotation``:
portable statements; ``rotation_pg``: one PostgreSQL statement) held to the same outcomes.

- Which form each engine gets (``write_paths_for``).
- Batch by batch: generated batches of rotations, run whole through every rotation path
  of the database, must give the outcomes and rows the in-memory store gives when it runs
  the same rotations one after another (RFC 9700 §4.14.2: a token is spent once, the
  first rotation presenting it wins, a revoked family rotates nothing).
- Through the refresh grant, on every form (``ROTATION_FORMS``): rotation, the replay the
  grace window allows, reuse revoking the family, expiry, concurrent refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import BACKENDS, fresh_database, migrated_store
from tests.core_flow import REUSE_IDS, REUSES, Flow, Reuse, lost_answer, make_flow
from tests.storage.conftest import ROTATION_FORMS, store_of
from tokensmith.core import errors
from tokensmith.core.clock import FrozenClock
from tokensmith.core.credentials import token_key
from tokensmith.core.models import (
    AccessTokenRecord,
    IssuedToken,
    Merchant,
    RefreshTokenRecord,
    TokenFamily,
)
from tokensmith.core.ports import Store
from tokensmith.storage.memory import MemoryStore
from tokensmith.storage.sql import SqlStore
from tokensmith.storage.sql.rotation import Rotation, replay_each, rotate
from tokensmith.storage.sql.rotation_pg import rotate_in_one_statement
from tokensmith.storage.sql.sqlite_writer import sqlite_writer
from tokensmith.storage.sql.store import write_paths_for
from tokensmith.storage.sql.tables import (
    access_tokens,
    merchants,
    refresh_tokens,
    row_of,
    token_families,
)
from tokensmith.storage.sql.write_paths import (
    AutocommitStatement,
    EngineWrites,
    SqliteThreadInserts,
    SqliteThreadWrites,
    WritePath,
)

# -- which form each engine gets ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("portable", [False, True], ids=["default", "portable_rotation"])
async def test_each_database_gets_its_form_of_the_rotation_rule(
    backend: str, portable: bool, tmp_path: Path
) -> None:
    """A SQLite file rotates with the portable statements on its writer's thread;
    PostgreSQL in one statement on an autocommit connection, unless ``portable_rotation``
    asks for the portable statements in a transaction of the engine."""
    async with fresh_database(backend, tmp_path) as url, migrated_store(url) as store:
        paths = write_paths_for(store.engine, portable)
        try:
            rotations, replays = paths.rotations, paths.replays
            if backend == "sqlite":
                assert isinstance(paths.access_tokens, SqliteThreadInserts)
                assert isinstance(rotations, SqliteThreadWrites) and rotations.batch is rotate
                assert isinstance(replays, SqliteThreadWrites) and replays.batch is replay_each
                assert paths.lanes == 1
            elif portable:
                assert isinstance(rotations, EngineWrites) and rotations.batch is rotate
            else:
                assert isinstance(rotations, AutocommitStatement)
                assert rotations.batch is rotate_in_one_statement
            if backend != "sqlite":
                assert isinstance(replays, EngineWrites) and replays.batch is replay_each
                assert isinstance(paths.access_tokens, EngineWrites) and paths.lanes == 2
        finally:
            await paths.close()


async def test_an_in_memory_sqlite_database_writes_on_the_engine() -> None:
    """A second connection to ``:memory:`` would open another, empty database."""
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    try:
        paths = write_paths_for(engine)
        assert paths.writer is None and paths.lanes == 1
        assert isinstance(paths.rotations, EngineWrites) and paths.rotations.batch is rotate
        assert isinstance(paths.access_tokens, EngineWrites)
    finally:
        await engine.dispose()


# -- batch by batch, against the in-memory store -------------------------------------------------

_MERCHANT = Merchant("m1", "Shop", 1.0)


def _family(i: int, revoked: bool) -> TokenFamily:
    return TokenFamily(
        f"f{i}", "app", "m1", "u1", "read", 100.0, 1000.0, 5000.0, 150.0 if revoked else None
    )


def _token(i: int, k: int, **kw: Any) -> RefreshTokenRecord:
    h = f"f{i}t{k}".ljust(64, "x")
    return RefreshTokenRecord(h, f"f{i}", "app", "read", 100.0, 1000.0, **kw)


@st.composite
def _states(draw: st.DrawFn) -> list[Any]:
    """Families as the grants leave them: a chain of spent tokens ending in the one the
    family may still use (unspent, or revoked, or spent by a replay's ``superseded``), so
    never two unspent tokens (one live chain); a revoked family has every token revoked."""
    rows: list[Any] = []
    for i in range(draw(st.integers(1, 3))):
        revoked = draw(st.booleans())
        rows.append(_family(i, revoked))
        length = draw(st.integers(1, 3))
        last = draw(st.sampled_from(["unspent", "revoked", "superseded"]))
        for k in range(length):
            spent: dict[str, Any] = {}
            if k < length - 1 or last == "superseded":
                reason = "rotated" if k < length - 1 else "superseded"
                spent = {"spent_at": 120.0 + k, "spent_reason": reason, "replaced_by": "x" * 64}
            gone = revoked or (k == length - 1 and last == "revoked")
            rows.append(_token(i, k, revoked_at=150.0 if gone else None, **spent))
    return rows


@st.composite
def _batches(draw: st.DrawFn, state: list[Any]) -> list[Rotation]:
    """Rotations in flight together: of the same token or another of its family, with or
    without an access token, or of a token never stored; the new token in the presented
    one's family, as the refresh grant makes it (see ``Rotation``)."""
    olds = [r for r in state if isinstance(r, RefreshTokenRecord)]
    batch = []
    for j in range(draw(st.integers(1, 6))):
        old = draw(st.sampled_from([*olds, None]))
        family = old.family_id if old is not None else draw(st.sampled_from(["f0", "f1"]))
        old_hash = old.token_hash if old is not None else "unknown".ljust(64, "x")
        at = 200.0 + j
        expires = draw(st.sampled_from([1100.0, 1200.0 + j]))
        new = RefreshTokenRecord(f"n{j}".ljust(64, "y"), family, "app", "read", at, expires)
        access = None
        if draw(st.booleans()):
            access = AccessTokenRecord(f"j{j}", "app", "m1", "read", at, 7400.0, family_id=family)
        batch.append(Rotation(old_hash, new, at, access))
    return batch


def _seed(conn: Connection, state: list[Any]) -> None:
    for table in (access_tokens, refresh_tokens, token_families, merchants):
        conn.execute(delete(table))
    conn.execute(insert(merchants).values(**row_of(_MERCHANT)))
    for table, kind in ((token_families, TokenFamily), (refresh_tokens, RefreshTokenRecord)):
        conn.execute(insert(table), [row_of(r) for r in state if isinstance(r, kind)])


def _rows(conn: Connection) -> dict[str, list[Any]]:
    def every(table: Any, record: Any) -> list[Any]:
        rows = conn.execute(select(table)).all()
        return sorted((record(**r._mapping) for r in rows), key=repr)

    return {
        "families": every(token_families, TokenFamily),
        "refresh tokens": every(refresh_tokens, RefreshTokenRecord),
        "access tokens": every(access_tokens, AccessTokenRecord),
    }


async def _one_after_another(state: list[Any], batch: list[Rotation]) -> tuple[list[bool], Any]:
    """The in-memory store's outcomes and rows: each rotation in a transaction of its own."""
    mem = MemoryStore()
    mem.merchants["m1"] = _MERCHANT
    for r in state:
        if isinstance(r, TokenFamily):
            mem.families[r.family_id] = r
        else:
            mem.refresh_tokens[r.token_hash] = r
    won = [await mem.rotate_refresh_token(r.old_hash, r.new, r.at, r.access) for r in batch]
    rows = {
        "families": sorted(mem.families.values(), key=repr),
        "refresh tokens": sorted(mem.refresh_tokens.values(), key=repr),
        "access tokens": sorted(mem.tokens.values(), key=repr),
    }
    return won, rows


@contextlib.asynccontextmanager
async def _rotation_paths(engine: AsyncEngine) -> AsyncIterator[dict[str, WritePath[Any, bool]]]:
    """Every way this database can run a batch of rotations."""
    paths: dict[str, WritePath[Any, bool]] = {"portable, engine": EngineWrites(engine, rotate)}
    if engine.dialect.name == "postgresql":
        paths["one statement"] = AutocommitStatement(engine, rotate_in_one_statement)
    writer = sqlite_writer(engine)
    if writer is not None:
        paths["portable, writer thread"] = SqliteThreadWrites(writer, rotate)
    try:
        yield paths
    finally:
        if writer is not None:
            await writer.close()


@pytest.fixture(params=BACKENDS)
async def sql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with fresh_database(request.param, tmp_path) as url, migrated_store(url) as store:
        yield store


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.data())
async def test_every_form_rotates_a_batch_as_one_rotation_after_another(
    sql: SqlStore, data: st.DataObject
) -> None:
    state = data.draw(_states(), label="state")
    batch = data.draw(_batches(state), label="batch")
    expected = await _one_after_another(state, batch)
    async with _rotation_paths(sql.engine) as paths:
        for name, path in paths.items():
            async with sql.engine.begin() as conn:
                await conn.run_sync(_seed, state)
            won = list(await path.write(batch))
            async with sql.engine.connect() as conn:
                rows = await conn.run_sync(_rows)
            assert (won, rows) == expected, name


# -- through the refresh grant, on every form ------------------------------------------------------


@pytest.fixture(params=ROTATION_FORMS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with store_of(request.param, tmp_path) as made:
        yield made


async def _record(flow: Flow, token: str | None) -> RefreshTokenRecord:
    assert token is not None
    record = await flow.store.find_refresh_token(token_key(token))
    assert record is not None
    return record


async def _all_revoked(flow: Flow, *issued: IssuedToken) -> None:
    """The family of ``issued`` is revoked, with every refresh and access token of them."""
    family = await flow.store.get_family((await _record(flow, issued[0].refresh_token)).family_id)
    assert family is not None and family.revoked_at is not None
    for pair in issued:
        assert (await _record(flow, pair.refresh_token)).revoked_at is not None
        access = await flow.store.find_access_token_by_jti(pair.jti)
        assert access is not None and access.revoked_at is not None
        assert not await flow.active(pair.access_token)


async def test_a_refresh_spends_the_token_and_issues_the_next(
    store: Store, clock: FrozenClock
) -> None:
    flow = await make_flow(clock, store)
    first = await flow.exchange(await flow.code())
    clock.advance(10)
    second = await flow.refresh(first.refresh_token)
    old, new = await _record(flow, first.refresh_token), await _record(flow, second.refresh_token)
    assert old.spent_at == clock.now() and old.spent_reason == "rotated"
    assert old.replaced_by == new.token_hash and new.spent_at is None
    family = await flow.store.get_family(new.family_id)
    assert family is not None and family.expires_at == new.expires_at
    assert not await flow.active(first.refresh_token) and await flow.active(second.refresh_token)


@pytest.mark.parametrize("after", [0, 1, 30], ids=["at-once", "1s", "at-the-edge"])
async def test_the_token_spent_last_replays_once_within_the_grace(
    store: Store, clock: FrozenClock, after: float
) -> None:
    s = await lost_answer(clock, store)
    clock.advance(after)
    retried = await s.flow.refresh(s.held.refresh_token)
    lost = await _record(s.flow, s.lost.refresh_token)
    assert lost.spent_reason == "superseded" and lost.replaced_by == token_key(
        retried.refresh_token or ""
    )
    assert (await _record(s.flow, s.held.refresh_token)).replayed_at == clock.now()
    assert not await s.flow.active(s.lost.access_token)
    again = await s.flow.refresh(retried.refresh_token)
    assert await s.flow.active(again.refresh_token) and await s.flow.active(again.access_token)


@pytest.mark.parametrize(("grace", "reuse"), REUSES, ids=REUSE_IDS)
async def test_reuse_revokes_the_whole_family(
    store: Store, clock: FrozenClock, grace: int, reuse: Reuse
) -> None:
    s = await lost_answer(clock, store, refresh_grace=grace)
    presented = await reuse(s, clock)
    with pytest.raises(errors.InvalidGrant, match="already used"):
        await s.flow.refresh(presented)
    await _all_revoked(s.flow, s.older, s.held, s.lost)


@pytest.mark.parametrize(
    ("idle", "absolute", "wait"),
    [(3600, 7200, 3600), (3600, 5000, 2000)],
    ids=["idle", "absolute"],
)
async def test_an_expired_refresh_token_is_refused_and_spends_nothing(
    store: Store, clock: FrozenClock, idle: int, absolute: int, wait: int
) -> None:
    flow = await make_flow(clock, store, refresh_idle_ttl=idle, refresh_absolute_ttl=absolute)
    token = (await flow.exchange(await flow.code())).refresh_token
    clock.advance(3000)
    token = (await flow.refresh(token)).refresh_token
    clock.advance(wait)
    with pytest.raises(errors.InvalidGrant, match="expired"):
        await flow.refresh(token)
    record = await _record(flow, token)
    assert record.spent_at is None and record.revoked_at is None


@pytest.mark.parametrize("grace", [0, 30])
async def test_concurrent_refreshes_of_one_token_issue_at_most_one_replay(
    store: Store, clock: FrozenClock, grace: int
) -> None:
    """One exchange wins; with a grace window one loser may replay the token it spent;
    every other is reuse, so the family ends revoked."""
    flow = await make_flow(clock, store, refresh_grace=grace)
    first = await flow.exchange(await flow.code())
    results = await asyncio.gather(
        *(flow.refresh(first.refresh_token) for _ in range(8)), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, IssuedToken)]
    assert 1 <= len(won) <= (2 if grace else 1), results
    assert all(isinstance(r, errors.InvalidGrant) for r in results if r not in won)
    await _all_revoked(flow, first, *won)
