"""PostgreSQL's form of the refresh-token rotation rule: :func:`rotate_in_one_statement`.

:func:`~tokensmith.storage.sql.rotation.rotate` as one statement, which is its own
transaction, with the batch passed as arrays: one round trip instead of eight (``BEGIN``,
six statements of which four run a row at a time, ``COMMIT``). The rule, the locking
order and the outcomes are those of :mod:`tokensmith.storage.sql.rotation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects.postgresql.base import PGDialect

from tokensmith.storage.sql.rotation import Rotation, first_of_each, outcomes
from tokensmith.storage.sql.tables import access_tokens, refresh_tokens, token_families

__all__ = ["rotate_in_one_statement"]

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


def rotate_in_one_statement(conn: Connection, batch: Sequence[Rotation]) -> list[bool]:
    """PostgreSQL: :func:`rotate` as one statement, run on an autocommit connection
    (:class:`~tokensmith.storage.sql.write_paths.AutocommitStatement`).

    All of a statement's parts see one snapshot, but a row that another transaction
    changed and committed meanwhile is read again before it is locked or updated
    (READ COMMITTED), so a family revoked or a token spent by a transaction that
    committed first drops out here exactly as in :func:`rotate`."""
    first = first_of_each(batch)
    spent = set(conn.execute(_ROTATE, _rotate_params(first)).scalars())
    return outcomes(batch, {id(r) for r in first if r.old_hash in spent})
