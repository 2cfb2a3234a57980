"""Access tokens are written to three indexes instead of six.

Every stored access token went into six indexes, three of which a client_credentials token
never needs: ``client_id``, which no query reads (a revoked client's tokens fail through
the client's own status), and ``family_id`` and ``revoked_at``, which only the tokens of a
refresh token family and revoked tokens have. The first is dropped; the other two become
partial indexes of the rows where the column is set, which serve the same lookups (a
comparison on the column implies it is set, on SQLite and on PostgreSQL).

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PARTIAL = ("family_id", "revoked_at")


def upgrade() -> None:
    op.drop_index("ix_access_tokens_client_id", table_name="access_tokens")
    for column in _PARTIAL:
        name = f"ix_access_tokens_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="access_tokens")
        op.create_index(name, "access_tokens", [column], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for column in _PARTIAL:
        name = f"ix_access_tokens_{column}"
        op.drop_index(name, table_name="access_tokens")
        op.create_index(name, "access_tokens", [column])
    op.create_index("ix_access_tokens_client_id", "access_tokens", ["client_id"])
