"""Refresh rotations rewrite no index entries: families lose the index on their idle expiry,
and PostgreSQL keeps room in the pages of the rows rotations update.

A rotation moves its family's ``expires_at`` (the idle expiry). With that column indexed,
every rotation wrote a new entry into each of the family's indexes, which grew without bound
between vacuums and made every later rotation costlier. Unindexed, the update is a heap-only
tuple (HOT) update on PostgreSQL. The purge finds idle-expired families by a scan instead.

Revision ID: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Free space per page for the in-place (HOT) updates: a family is rewritten at every
#: rotation, a refresh token once, when it is spent.
_FILLFACTOR = {"token_families": 70, "refresh_tokens": 85}


def upgrade() -> None:
    op.drop_index("ix_token_families_expires_at", table_name="token_families")
    if op.get_context().dialect.name == "postgresql":
        for table, fill in _FILLFACTOR.items():
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {fill})")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in _FILLFACTOR:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.create_index("ix_token_families_expires_at", "token_families", ["expires_at"])
