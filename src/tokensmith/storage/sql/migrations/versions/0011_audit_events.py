"""Audit events (``audit_events``) and the outbox of their webhook deliveries
(``audit_outbox``): new tables, no row of another rewritten.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("merchant_id", sa.String(64)),
        sa.Column("source", sa.String(64)),
        sa.Column("subject", sa.String(200)),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_merchant_id_at", "audit_events", ["merchant_id", "at"])
    op.create_index("ix_audit_events_actor_at", "audit_events", ["actor", "at"])
    op.create_table(
        "audit_outbox",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("next_at", sa.Double, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(200)),
        sa.Column("dead_at", sa.Double),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Double),
    )
    op.create_index("ix_audit_outbox_next_at", "audit_outbox", ["next_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_outbox_next_at", table_name="audit_outbox")
    op.drop_table("audit_outbox")
    op.drop_index("ix_audit_events_actor_at", table_name="audit_events")
    op.drop_index("ix_audit_events_merchant_id_at", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
