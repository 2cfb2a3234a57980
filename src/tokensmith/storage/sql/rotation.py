"""Refresh-token rotation in batches (RFC 6749 §6, RFC 9700 §4.14.2).

:class:`~tokensmith.storage.sql.batch.GroupCommit` hands these functions every rotation
in flight; each decides which of them win and stores the winners' successors.

- :func:`rotate` (SQLite, and PostgreSQL with ``SqlStore(portable_rotation=True)``): a
  fixed number of statements in one transaction for the whole batch.
- :func:`rotate_in_one_statement` (PostgreSQL): the same work as one statement, which is
  its own transaction, with the batch passed as arrays: one round trip instead of eight
  (``BEGIN``, six statements of which four run a row at a time, ``COMMIT``).
- :func:`replay` (both databases): the grace-window replay of the token a family spent
  last (:mod:`tokensmith.core.families`), one at a time and outside the batches: it
  happens only when an answer was lost.

All three lock the live families first; no other transaction can then spend or revoke their
tokens until this one ends (every such write locks the family first), so spending the
old tokens decides each rotation.  A token presented twice in one batch is spent by the
first, and the second loses as it would in a later transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncConnection

from tokensmith.core.models import AccessTokenRecord, RefreshTokenRecord
from tokensmith.storage.sql.tables import access_tokens, refresh_tokens, row_of, token_families

__all__ = [
    "ReplayRefused",
    "Rotation",
    "lock_families",
    "replay",
    "rotate",
    "rotate_in_one_statement",
    "store_successors",
]


@dataclass(frozen=True, slots=True)
class Rotation:
    """One refresh-token rotation waiting for its transaction."""

    old_hash: str = field(repr=False)
    new: RefreshTokenRecord
    at: float
    access: AccessTokenRecord | None


def _first_of_each(batch: Sequence[Rotation], live: set[str] | None = None) -> list[Rotation]:
    """The first rotation presenting each old token (of a live family, if ``live``)."""
    first: dict[str, Rotation] = {}
    for r in batch:
        if live is None or r.new.family_id in live:
            first.setdefault(r.old_hash, r)
    return list(first.values())


def _outcomes(batch: Sequence[Rotation], won: set[int]) -> list[bool]:
    return [id(r) in won for r in batch]


# -- portable: a few statements in one transaction ----------------------------------------

_LOCK_FAMILIES = (
    update(token_families)
    .where(
        token_families.c.family_id.in_(bindparam("fids", expanding=True)),
        token_families.c.revoked_at.is_(None),
    )
    .values(revoked_at=None)
    .returning(token_families.c.family_id)
)

_LOCK_FAMILIES_FOR_UPDATE = (
    select(token_families.c.family_id)
    .where(
        token_families.c.family_id.in_(bindparam("fids", expanding=True)),
        token_families.c.revoked_at.is_(None),
    )
    .order_by(token_families.c.family_id)
    .with_for_update(key_share=True)
)

_ADVANCE = (
    update(token_families)
    .where(token_families.c.family_id == bindparam("fid"))
    .values(expires_at=bindparam("idle_until"))
)


def lock_families(conn: Connection, batch: Sequence[Rotation]) -> set[str]:
    """Lock the live families of ``batch`` before anything else; return the live ones.
    Rotation and revocation serialize on the family row: a revocation that commits first
    makes a family drop out here, one that comes later waits, then sees the new refresh
    token.  PostgreSQL: ``SELECT ... FOR NO KEY UPDATE`` in family-id order, the same in
    every batch, so two processes' batches do not deadlock on each other.  It is the lock
    an ``UPDATE`` takes (the foreign-key checks of new refresh tokens still pass it) but
    writes no new row version.  SQLite: a write that changes nothing, which takes its
    write lock at the start of the transaction."""
    fids = sorted({r.new.family_id for r in batch})
    lock = _LOCK_FAMILIES if conn.dialect.name == "sqlite" else _LOCK_FAMILIES_FOR_UPDATE
    return set(conn.execute(lock, {"fids": fids}).scalars())


_UNSPENT = select(refresh_tokens.c.token_hash).where(
    refresh_tokens.c.token_hash.in_(bindparam("olds", expanding=True)),
    refresh_tokens.c.family_id.in_(bindparam("fids", expanding=True)),
    refresh_tokens.c.spent_at.is_(None),
    refresh_tokens.c.revoked_at.is_(None),
)

_SPEND = (
    update(refresh_tokens)
    .where(refresh_tokens.c.token_hash == bindparam("old"))
    .values(spent_at=bindparam("at"), spent_reason="rotated", replaced_by=bindparam("new"))
)


def _spend(conn: Connection, batch: Sequence[Rotation]) -> set[str]:
    """Spend every old token of ``batch`` that is unspent and unrevoked; return those.
    Their families are locked by this transaction, so what the ``SELECT`` finds cannot
    change before the ``UPDATE``."""
    params = {
        "olds": sorted(r.old_hash for r in batch),
        "fids": sorted({r.new.family_id for r in batch}),
    }
    unspent = set(conn.execute(_UNSPENT, params).scalars())
    if unspent:
        conn.execute(
            _SPEND,
            [
                {"old": r.old_hash, "at": r.at, "new": r.new.token_hash}
                for r in batch
                if r.old_hash in unspent
            ],
        )
    return unspent


def store_successors(conn: Connection, won: Sequence[Rotation]) -> None:
    """The new refresh tokens, their access tokens and the families' new idle expiry."""
    conn.execute(insert(refresh_tokens), [row_of(r.new) for r in won])
    access = [row_of(r.access) for r in won if r.access is not None]
    if access:
        conn.execute(insert(access_tokens), access)
    conn.execute(_ADVANCE, [{"fid": r.new.family_id, "idle_until": r.new.expires_at} for r in won])


def rotate(conn: Connection, batch: Sequence[Rotation]) -> list[bool]:
    """Rotations in one transaction, a fixed number of statements for the whole batch
    (synchronous: on the SQLite writer's thread, or through ``AsyncConnection.run_sync``)."""
    first = _first_of_each(batch, lock_families(conn, batch))
    spent = _spend(conn, first) if first else set()
    won = [r for r in first if r.old_hash in spent]
    if won:
        store_successors(conn, won)
    return _outcomes(batch, {id(r) for r in won})


# -- the grace-window replay ----------------------------------------------------------------

#: The replayed token: rotated into the successor and never replayed.
_MARK_REPLAYED = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.token_hash == bindparam("old"),
        refresh_tokens.c.family_id == bindparam("fid"),
        refresh_tokens.c.spent_reason == "rotated",
        refresh_tokens.c.replaced_by == bindparam("successor"),
        refresh_tokens.c.replayed_at.is_(None),
        refresh_tokens.c.revoked_at.is_(None),
    )
    .values(replayed_at=bindparam("at"))
)

#: The successor, if it is still the family's usable token (unspent, unrevoked).
_SUPERSEDE = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.token_hash == bindparam("successor"),
        refresh_tokens.c.family_id == bindparam("fid"),
        refresh_tokens.c.spent_at.is_(None),
        refresh_tokens.c.revoked_at.is_(None),
    )
    .values(spent_at=bindparam("at"), spent_reason="superseded", replaced_by=bindparam("new"))
)

#: The access token answered with the successor (which nobody received).
_WITHDRAW = (
    update(access_tokens)
    .where(
        access_tokens.c.jti
        == select(refresh_tokens.c.access_jti)
        .where(refresh_tokens.c.token_hash == bindparam("successor"))
        .scalar_subquery(),
        access_tokens.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("at"))
)


class ReplayRefused(Exception):
    """Rolls back a replay whose successor is no longer the family's usable token."""


def replay(conn: Connection, r: Rotation, successor_hash: str) -> bool:
    """The one replay the grace window allows, in one transaction: lock the family (as
    :func:`rotate` does, so it serializes with rotations and revocations), mark
    ``r.old_hash`` replayed if it was rotated into ``successor_hash`` and never replayed,
    spend ``successor_hash`` as ``superseded`` if it is unspent and unrevoked, revoke the
    access token issued with it, and store ``r.new`` and ``r.access`` (RFC 9700 §4.14.2:
    one live chain per family).  False if the token may not be replayed (nothing written);
    :class:`ReplayRefused` if the successor was spent (the transaction must roll back).
    Of two replays of one token the second finds it replayed, or its successor spent."""
    if not lock_families(conn, [r]):
        return False
    params = {
        "old": r.old_hash,
        "fid": r.new.family_id,
        "successor": successor_hash,
        "new": r.new.token_hash,
        "at": r.at,
    }
    if conn.execute(_MARK_REPLAYED, params).rowcount != 1:
        return False
    if conn.execute(_SUPERSEDE, params).rowcount != 1:
        raise ReplayRefused
    conn.execute(_WITHDRAW, params)
    store_successors(conn, [r])
    return True


# -- PostgreSQL: one statement --------------------------------------------------------------


_PG = PGDialect()  # type: ignore[no-untyped-call]


def _array_type(table: Table, name: str) -> str:
    return f"{table.c[name].type.compile(dialect=_PG)}[]"


def _from_arrays(table: Table, prefix: str) -> str:
    """``INSERT ... SELECT`` of a table's rows given one array a column, plus ``after``:
    the old token each row belongs to, so that only the winners' rows are stored."""
    cols = [c.name for c in table.columns]
    arrays = [f"CAST(:{prefix}_{c} AS {_array_type(table, c)})" for c in cols]
    arrays.append(f"CAST(:{prefix}_after AS {_array_type(refresh_tokens, 'token_hash')})")
    names = ", ".join(cols)
    source = f"unnest({', '.join(arrays)}) AS n({names}, after)"
    where = "n.after IN (SELECT old FROM spent)"
    return f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {source} WHERE {where}"  # noqa: S608


#: The family lock is taken first (the ``UPDATE`` reads ``locked``), in family-id order
#: like :func:`lock_families`.  ``spent`` reaches each old token by its primary key; the
#: inserts and the idle-expiry move keep only the rows of rotations that spent a token.
_ROTATE = text(f"""
WITH locked AS (
    SELECT family_id FROM token_families
    WHERE family_id = ANY(CAST(:fids AS {_array_type(token_families, "family_id")}))
        AND revoked_at IS NULL
    ORDER BY family_id
    FOR NO KEY UPDATE
),
spent AS (
    UPDATE refresh_tokens AS r
    SET spent_at = v.at, spent_reason = 'rotated', replaced_by = v.new
    FROM unnest(
        CAST(:olds AS {_array_type(refresh_tokens, "token_hash")}),
        CAST(:news AS {_array_type(refresh_tokens, "token_hash")}),
        CAST(:ats AS {_array_type(refresh_tokens, "spent_at")}),
        CAST(:fams AS {_array_type(refresh_tokens, "family_id")})
    ) AS v(old, new, at, fid)
    JOIN locked ON locked.family_id = v.fid
    WHERE r.token_hash = v.old AND r.family_id = v.fid
        AND r.spent_at IS NULL AND r.revoked_at IS NULL
    RETURNING r.token_hash AS old
),
new_refresh AS (
    {_from_arrays(refresh_tokens, "rt")}
),
new_access AS (
    {_from_arrays(access_tokens, "at")}
),
advanced AS (
    UPDATE token_families AS f SET expires_at = x.idle_until
    FROM unnest(
        CAST(:fams AS {_array_type(token_families, "family_id")}),
        CAST(:idle AS {_array_type(token_families, "expires_at")}),
        CAST(:olds AS {_array_type(refresh_tokens, "token_hash")})
    ) AS x(fid, idle_until, after)
    WHERE f.family_id = x.fid AND x.after IN (SELECT old FROM spent)
)
SELECT old FROM spent
""")  # noqa: S608 - table and column names from the schema; every value is bound


def _arrays(table: Table, prefix: str, rows: Sequence[Any], after: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {f"{prefix}_after": after}
    for c in table.columns:
        params[f"{prefix}_{c.name}"] = [getattr(row, c.name) for row in rows]
    return params


def _rotate_params(first: Sequence[Rotation]) -> dict[str, Any]:
    with_access = [r for r in first if r.access is not None]
    return {
        "fids": sorted({r.new.family_id for r in first}),
        "olds": [r.old_hash for r in first],
        "news": [r.new.token_hash for r in first],
        "ats": [r.at for r in first],
        "fams": [r.new.family_id for r in first],
        "idle": [r.new.expires_at for r in first],
        **_arrays(refresh_tokens, "rt", [r.new for r in first], [r.old_hash for r in first]),
        **_arrays(
            access_tokens,
            "at",
            [r.access for r in with_access],
            [r.old_hash for r in with_access],
        ),
    }


async def rotate_in_one_statement(conn: AsyncConnection, batch: Sequence[Rotation]) -> list[bool]:
    """PostgreSQL: :func:`rotate` as one statement, run on an autocommit connection.

    All of a statement's parts see one snapshot, but a row that another transaction
    changed and committed meanwhile is read again before it is locked or updated
    (READ COMMITTED), so a family revoked or a token spent by a transaction that
    committed first drops out here exactly as in :func:`rotate`."""
    first = _first_of_each(batch)
    spent = set((await conn.execute(_ROTATE, _rotate_params(first))).scalars())
    return _outcomes(batch, {id(r) for r in first if r.old_hash in spent})
