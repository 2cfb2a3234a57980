"""Pushed authorization requests (RFC 9126), and clients that must push.

``pushed_requests`` keeps each pushed request under the hash of its ``request_uri``'s
random part, until it is used once or expires (the purge deletes it then).
``clients.require_par`` marks a client whose authorization requests must be pushed
(RFC 9126 §6); existing clients get ``false``, a default that changes the catalogue only on
PostgreSQL and SQLite, rewriting no row.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pushed_requests",
        sa.Column("request_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("issuer_tag", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("used_at", sa.Double),
    )
    op.create_index("ix_pushed_requests_expires_at", "pushed_requests", ["expires_at"])
    op.add_column(
        "clients",
        sa.Column("require_par", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_par")
    op.drop_index("ix_pushed_requests_expires_at", table_name="pushed_requests")
    op.drop_table("pushed_requests")
