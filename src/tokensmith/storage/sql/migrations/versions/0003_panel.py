"""Merchant panel: hourly token counts, failed authentications, one-time secret reveals.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_stats",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("issued", sa.BigInteger, nullable=False),
        sa.Column("refused", sa.BigInteger, nullable=False),
        sa.Column("last_issued_at", sa.Double),
    )
    op.create_index("ix_token_stats_hour", "token_stats", ["hour"])
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("client_id", sa.String(64)),
        sa.Column("merchant_id", sa.String(64)),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("dialect", sa.String(16), nullable=False),
    )
    op.create_index("ix_auth_failures_at", "auth_failures", ["at"])
    op.create_index("ix_auth_failures_merchant_id_at", "auth_failures", ["merchant_id", "at"])
    op.create_table(
        "panel_reveals",
        sa.Column("reveal_hash", sa.String(64), primary_key=True),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_panel_reveals_expires_at", "panel_reveals", ["expires_at"])


def downgrade() -> None:
    for table in ("panel_reveals", "auth_failures", "token_stats"):
        op.drop_table(table)
