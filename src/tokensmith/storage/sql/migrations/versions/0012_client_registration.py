"""Dynamic client registration (RFC 7591) and management (RFC 7592).

``clients.registration_token_hash`` holds the SHA-256 of a registered client's
registration access token, ``clients.registration_metadata`` the RFC 7591 §2 metadata kept
only to be read back (a JSON object); both nullable, so no existing row is rewritten.
``initial_access_tokens`` holds the hashes of the tokens that allow registration
(RFC 7591 §3), each optionally naming the merchant its clients belong to.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("registration_token_hash", sa.String(64)))
    op.add_column("clients", sa.Column("registration_metadata", sa.Text))
    op.create_table(
        "initial_access_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.String(64)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double),
        sa.Column("revoked_at", sa.Double),
        sa.UniqueConstraint("token_hash", name="uq_initial_access_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.merchant_id"],
            name="fk_initial_access_tokens_merchant_id_merchants",
        ),
    )


def downgrade() -> None:
    op.drop_table("initial_access_tokens")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("registration_metadata")
        batch.drop_column("registration_token_hash")
