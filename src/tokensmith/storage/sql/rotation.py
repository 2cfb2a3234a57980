"""Refresh-token rotation in batches (RFC 6749 §6, RFC 9700 §4.14.2).

:class:`~tokensmith.storage.sql.batch.GroupCommit` hands these functions every rotation
in flight, through the write path :func:`~tokensmith.storage.sql.store.write_paths_for`
chose; each decides which of them win and stores the winners' successors.

- :func:`rotate` (SQLite, and PostgreSQL with ``SqlStore(portable_rotation=True)``): a
  fixed number of statements in one transaction for the whole batch.
- :func:`~tokensmith.storage.sql.rotation_pg.rotate_in_one_statement` (PostgreSQL,
  :mod:`~tokensmith.storage.sql.rotation_pg`): the same work as one statement, which is
  its own transaction, with the batch passed as arrays: one round trip instead of eight
  (``BEGIN``, six statements of which four run a row at a time, ``COMMIT``).
- :func:`replay` (both databases; :func:`replay_each` as a batch function): the
  grace-window replay of the token a family spent last (:mod:`tokensmith.core.families`),
  one at a time and outside the batches: it happens only when an answer was lost.

All three lock the live families first; no other transaction can then spend or revoke their
tokens until this one ends (every such write locks the family first), so spending the
old tokens decides each rotation.  A token presented twice in one batch is spent by the
first, and the second loses as it would in a later transaction.

The two forms of the rule are held to the same outcomes by the storage tests
(``tests/storage/test_rotation_forms.py``): batch by batch against each other and the
in-memory store, and through the refresh grant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, insert, select, update

from tokensmith.core.models import AccessTokenRecord, RefreshTokenRecord
from tokensmith.storage.sql.tables import access_tokens, refresh_tokens, row_of, token_families

__all__ = [
    "Replay",
    "ReplayRefused",
    "Rotation",
    "first_of_each",
    "lock_families",
    "outcomes",
    "replay",
    "replay_each",
    "rotate",
    "store_successors",
]


@dataclass(frozen=True, slots=True)
class Rotation:
    """One refresh-token rotation waiting for its transaction.

    ``new`` is in the family of the token ``old_hash`` names, and a family has one
    unspent token at a time (RFC 9700 §4.14.2: one live chain): the refresh grant keeps
    both, and the two forms of the rule agree only on what keeps them (two unspent tokens
    of one family rotated in one batch would leave PostgreSQL's one statement to choose
    the family's idle expiry from either)."""

    old_hash: str = field(repr=False)
    new: RefreshTokenRecord
    at: float
    access: AccessTokenRecord | None


def first_of_each(batch: Sequence[Rotation], live: set[str] | None = None) -> list[Rotation]:
    """The first rotation presenting each old token (of a live family, if ``live``)."""
    first: dict[str, Rotation] = {}
    for r in batch:
        if live is None or r.new.family_id in live:
            first.setdefault(r.old_hash, r)
    return list(first.values())


def outcomes(batch: Sequence[Rotation], won: set[int]) -> list[bool]:
    """Each rotation of ``batch``: whether it is one of ``won`` (by identity)."""
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
    first = first_of_each(batch, lock_families(conn, batch))
    spent = _spend(conn, first) if first else set()
    won = [r for r in first if r.old_hash in spent]
    if won:
        store_successors(conn, won)
    return outcomes(batch, {id(r) for r in won})


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


@dataclass(frozen=True, slots=True)
class Replay:
    """One grace-window replay: ``rotation`` presents the token rotated into
    ``successor_hash``."""

    rotation: Rotation
    successor_hash: str = field(repr=False)


def replay_each(conn: Connection, replays: Sequence[Replay]) -> list[bool]:
    """:func:`replay` as a batch function of a write path; the store passes one replay a
    batch, since :class:`ReplayRefused` rolls back the whole transaction."""
    return [replay(conn, r.rotation, r.successor_hash) for r in replays]
