"""Consent resources (the lodged "intent" of open banking; see
:mod:`tokensmith.core.consent_resources`).

The table ``consent_resources``: what a partner lodged (RFC 9396 ``authorization_details``
as canonical JSON text), its status, when it expires, and who authorized it for which
token family. ``consent_id`` (nullable) on authorization codes and token families: the
consent they carry into the tokens. Every new column is nullable: no row is rewritten.

Revision ID: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_CARRIERS = ("authorization_codes", "token_families")


def upgrade() -> None:
    op.create_table(
        "consent_resources",
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("authorization_details", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("status_updated_at", sa.Double, nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("merchant_id", sa.String(64)),
        sa.Column("approved_at", sa.Double),
        sa.Column("family_id", sa.String(64)),
        sa.PrimaryKeyConstraint("consent_id", name="pk_consent_resources"),
    )
    op.create_index("ix_consent_resources_client_id", "consent_resources", ["client_id"])
    op.create_index("ix_consent_resources_merchant_id", "consent_resources", ["merchant_id"])
    op.create_index("ix_consent_resources_expires_at", "consent_resources", ["expires_at"])
    for table in _CARRIERS:
        op.add_column(table, sa.Column("consent_id", sa.String(64)))


def downgrade() -> None:
    for table in _CARRIERS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("consent_id")
    op.drop_table("consent_resources")
