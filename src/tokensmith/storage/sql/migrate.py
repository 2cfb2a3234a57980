"""Schema creation and upgrade with Alembic, run on start (safe with many instances).

Alembic is imported only when a migration runs: ``tokensmith serve`` migrates once before
its workers start, and the workers, which do not migrate, stay 11 MB smaller."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "SchemaState",
    "alembic_config",
    "expected_revisions",
    "migrate",
    "schema_state",
]

VERSIONS = Path(__file__).parent / "migrations" / "versions"

_LOCK_ID = 0x746F6B656E73  # "tokens": one PostgreSQL advisory lock for migrations


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision. Concurrent callers on PostgreSQL serialize on
    an advisory lock; on SQLite the write lock does the same."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The revisions a database is at, against those this version of the code expects."""

    applied: tuple[str, ...]
    expected: tuple[str, ...]
    known: frozenset[str] = field(repr=False, default=frozenset())

    @property
    def state(self) -> str:
        """``current``; ``behind`` (a migration of this version is not applied);
        ``ahead`` (a newer version migrated: every migration this one knows is applied);
        ``missing`` (never migrated)."""
        applied = set(self.applied)
        if not applied:
            return "missing"
        if applied == set(self.expected):
            return "current"
        return "behind" if applied <= self.known else "ahead"

    @property
    def ready(self) -> bool:
        """Whether the schema has everything this version needs."""
        return self.state in ("current", "ahead")


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Read ``alembic_version`` (two small queries; no Alembic import)."""
    async with engine.connect() as conn:
        applied = await conn.run_sync(_applied)
    expected = tuple(sorted(expected_revisions()))
    return SchemaState(tuple(sorted(applied)), expected, known_revisions())


def _applied(conn: Connection) -> list[str]:
    if not inspect(conn).has_table("alembic_version"):
        return []
    return [str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()]


def expected_revisions() -> frozenset[str]:
    """The head revisions of the migrations shipped with this code: what ``migrate`` brings
    a database to. Read from the scripts' ``revision``/``down_revision`` assignments, so
    that a worker need not load Alembic to know them."""
    graph = _revision_graph()
    parents = {p for downs in graph.values() for p in downs}
    return frozenset(graph) - parents


def known_revisions() -> frozenset[str]:
    return frozenset(_revision_graph())


@functools.cache
def _revision_graph() -> dict[str, tuple[str, ...]]:
    """revision -> the revisions it follows, for every migration script."""
    graph: dict[str, tuple[str, ...]] = {}
    for path in sorted(VERSIONS.glob("*.py")):
        values = _assignments(path, ("revision", "down_revision"))
        revision, down = values.get("revision"), values.get("down_revision")
        if isinstance(revision, str):
            graph[revision] = _names(down)
    return graph


def _names(down: object) -> tuple[str, ...]:
    """A ``down_revision``: none, one, or several (a merge)."""
    if down is None:
        return ()
    if isinstance(down, str):
        return (down,)
    assert isinstance(down, tuple | list), down
    return tuple(str(d) for d in down)


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values assigned to ``names`` at the top level of a module."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            found[target.id] = ast.literal_eval(value)
    return found
