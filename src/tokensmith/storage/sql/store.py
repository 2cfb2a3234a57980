"""SQLAlchemy Core implementation of :class:`tokensmith.core.ports.Store`.

:class:`SqlStore` is composed of one part per storage protocol (``clients``, ``tokens``,
``keys``, ``accounts``, ``codes``, ``families``, ``purge``, ``panel``, ``audit``), and
:func:`write_paths_for` chooses, for its engine, the write path
(:mod:`tokensmith.storage.sql.write_paths`) of each kind of batched write.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.core.models import AccessTokenRecord
from tokensmith.storage.sql.accounts import ConsentsSql, MerchantsSql, SessionsSql, UsersSql
from tokensmith.storage.sql.audit import AuditSql
from tokensmith.storage.sql.authorizations import AuthorizationSqlMixin
from tokensmith.storage.sql.batch import GroupCommit
from tokensmith.storage.sql.clients import ClientsSql
from tokensmith.storage.sql.codes import CodesSql
from tokensmith.storage.sql.consent_resources import ConsentResourcesSqlMixin
from tokensmith.storage.sql.details import DetailsTypesSqlMixin
from tokensmith.storage.sql.families import FamiliesSql, find_grants
from tokensmith.storage.sql.keys import ApiKeysSql, SigningKeysSql
from tokensmith.storage.sql.panel import PanelSqlMixin
from tokensmith.storage.sql.purge import PurgeSql
from tokensmith.storage.sql.pushed import PushedSqlMixin
from tokensmith.storage.sql.registration import InitialTokensSql
from tokensmith.storage.sql.resources import ResourcesSqlMixin
from tokensmith.storage.sql.rotation import (
    Replay,
    Rotation,
    replay_each,
    rotate,
)
from tokensmith.storage.sql.rotation_pg import rotate_in_one_statement
from tokensmith.storage.sql.sqlite_writer import SqliteWriter, sqlite_writer
from tokensmith.storage.sql.tables import access_tokens
from tokensmith.storage.sql.tokens import AccessTokensSql, insert_access_tokens, token_values
from tokensmith.storage.sql.write_paths import (
    AutocommitStatement,
    EngineWrites,
    SqliteThreadInserts,
    SqliteThreadWrites,
    WritePath,
)

__all__ = ["SqlStore", "WritePaths", "write_paths_for"]


@dataclass(frozen=True, slots=True)
class WritePaths:
    """The write path of each kind of batched write on one engine."""

    access_tokens: WritePath[AccessTokenRecord, None]
    rotations: WritePath[Rotation, bool]
    replays: WritePath[Replay, bool]
    #: Batches of one kind in flight at once (:class:`GroupCommit` lanes).
    lanes: int
    #: The SQLite writer the paths share, closed with them.
    writer: SqliteWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()


def write_paths_for(engine: AsyncEngine, portable_rotation: bool = False) -> WritePaths:
    """The write paths of ``engine``'s database, and why:

    - A SQLite file (one :func:`~tokensmith.storage.sql.sqlite_writer.sqlite_writer`
      gives a writer): every batch runs whole on the writer's thread, access tokens by
      :class:`SqliteThreadInserts`, rotations (:func:`rotate`) and replays by
      :class:`SqliteThreadWrites`. Through the async driver each statement of a
      transaction would cross to the driver's thread and back while the lock that
      serializes the worker processes is held. One lane: SQLite has one writer.
    - PostgreSQL: rotations in one statement (:func:`rotate_in_one_statement`), its own
      transaction on an :class:`AutocommitStatement`: one round trip instead of eight.
      ``portable_rotation`` rotates with the statements every database runs
      (:func:`rotate`, in :class:`EngineWrites`) instead, so that the storage contract
      holds both forms of the rule to the same outcomes. Access tokens and replays in
      transactions of the engine. Two lanes: two transactions in flight keep the
      connection busy while the next batch gathers (more measured no faster).
    - SQLite with no writer (an in-memory database, whose second connection would open
      another, empty database; or no ``flock``): everything in transactions of the
      engine, one lane.
    """
    writer = sqlite_writer(engine)
    if writer is not None:
        return WritePaths(
            access_tokens=SqliteThreadInserts(writer, access_tokens, token_values),
            rotations=SqliteThreadWrites(writer, rotate),
            replays=SqliteThreadWrites(writer, replay_each),
            lanes=1,
            writer=writer,
        )
    sqlite = engine.dialect.name == "sqlite"
    rotations: WritePath[Rotation, bool] = (
        EngineWrites(engine, rotate)
        if sqlite or portable_rotation
        else AutocommitStatement(engine, rotate_in_one_statement)
    )
    return WritePaths(
        access_tokens=EngineWrites(engine, insert_access_tokens),
        rotations=rotations,
        replays=EngineWrites(engine, replay_each),
        lanes=1 if sqlite else 2,
    )


class SqlStore(
    ClientsSql,
    AccessTokensSql,
    SigningKeysSql,
    ApiKeysSql,
    MerchantsSql,
    UsersSql,
    CodesSql,
    FamiliesSql,
    ConsentsSql,
    SessionsSql,
    PurgeSql,
    PanelSqlMixin,
    AuthorizationSqlMixin,
    PushedSqlMixin,
    DetailsTypesSqlMixin,
    InitialTokensSql,
    ResourcesSqlMixin,
    AuditSql,
    ConsentResourcesSqlMixin,
):
    """Every storage protocol over one :class:`AsyncEngine`.

    PostgreSQL rotates refresh tokens in one statement
    (:func:`~tokensmith.storage.sql.rotation_pg.rotate_in_one_statement`);
    ``portable_rotation`` makes it use the statements every database runs
    (:func:`~tokensmith.storage.sql.rotation.rotate`) instead, so that the storage contract
    holds both forms of the rule to the same outcomes."""

    def __init__(self, engine: AsyncEngine, *, portable_rotation: bool = False) -> None:
        self.engine = engine
        self.portable_rotation = portable_rotation
        self._read = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._revocations = 0
        #: Where each kind of batched write goes (:func:`write_paths_for`).
        self.write_paths = paths = write_paths_for(engine, portable_rotation)
        self._token_writes = GroupCommit(paths.access_tokens, lanes=paths.lanes)
        self._rotations = GroupCommit(paths.rotations, lanes=paths.lanes)
        self._replays = paths.replays
        self._grant_reads = GroupCommit(AutocommitStatement(engine, find_grants), lanes=4)

    async def close(self) -> None:
        await self.write_paths.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self._read.connect() as conn:
            await conn.execute(select(1))
