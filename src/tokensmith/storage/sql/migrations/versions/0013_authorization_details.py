"""Rich authorization requests (RFC 9396).

``authorization_details`` (canonical JSON text, nullable) on authorization codes, token
families and access tokens: what the user approved, carried into the tokens (§7, §9.1)
and kept for refreshes (§6.2). ``clients.authorization_details_types`` (a JSON array,
nullable: every type) restricts a client to some types (§10). The table
``authorization_details_types`` holds the types registered with the CLI, each with its
JSON Schema. Every new column is nullable: no row is rewritten.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_DETAILS = ("authorization_codes", "token_families", "access_tokens")


def upgrade() -> None:
    for table in _DETAILS:
        op.add_column(table, sa.Column("authorization_details", sa.Text))
    op.add_column("clients", sa.Column("authorization_details_types", sa.Text))
    op.create_table(
        "authorization_details_types",
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("schema", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("type", name="pk_authorization_details_types"),
    )


def downgrade() -> None:
    op.drop_table("authorization_details_types")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("authorization_details_types")
    for table in _DETAILS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("authorization_details")
